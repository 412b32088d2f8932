"""``streamtriage serve --clickhouse-port 8123``: the read-only SQL endpoint next to the collector.

Listed in ``app.EXTENSIONS``. The endpoint itself is the ``sqlendpoint`` package; this module only
starts and stops it on the collector's store: the same chDB directory (through read-only handles
of its own) or the same ClickHouse server. Credentials: the read token (``--read-token``), or the
ingest token when no read token is set; none only on a loopback address (``settings.py``).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from .sqlendpoint import ChdbEngine, ClickHouseHTTP, Credentials, HttpEngine, start_server

log = logging.getLogger(__name__)


async def startup(state: Any) -> None:
    """Serve the read-only endpoint when ``clickhouse_port`` is set."""
    settings = state.settings
    port = settings.clickhouse_port
    if port is None:
        return
    engine: ChdbEngine | HttpEngine
    if settings.is_embedded:
        engine = await asyncio.to_thread(ChdbEngine, str(settings.chdb_dir))
    else:
        engine = HttpEngine(settings.store)
    secret = settings.reader_token
    creds = Credentials(settings.clickhouse_user or "default", secret) if secret else None
    core = ClickHouseHTTP(engine, credentials=creds, database=state.store.database)
    server = await asyncio.to_thread(start_server, core, settings.host, int(port))
    state.extras["clickhouse_http"] = (server, engine)
    log.info("read-only ClickHouse HTTP endpoint on %s (database %s)%s", settings.display_url(server.port),
             state.store.database, "" if creds else ", no credentials required")


async def shutdown(state: Any) -> None:
    running = state.extras.pop("clickhouse_http", None)
    if running is None:
        return
    server, engine = running
    await asyncio.to_thread(server.stop)
    engine.close()
