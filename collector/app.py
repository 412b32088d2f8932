"""``create_app(settings)``: the collector's FastAPI application.

The lifespan owns everything with a lifetime: the state-directory lock, the store client (chDB or
server), the spool and the background writer; they live on ``app.state.collector``
(``CollectorState``) and reach handlers through the ``Annotated`` aliases in ``deps.py``.

Extending it (the classifier does this):
- **Routers**: ``ROUTERS`` is the API map. Add yours to ``EXTENSIONS`` instead of importing it here:
  each listed module is imported at app creation and may expose ``router`` (an ``APIRouter``),
  ``startup(state)`` and ``shutdown(state)`` (sync or async). Startup hooks run after the store and
  writer are up (in list order); shutdown hooks run first on the way down (reverse order), so a
  background task can still use the store while it stops. Keep task handles in ``state.extras``.
- **Hooks without a router**: append callables to ``STARTUP_HOOKS`` / ``SHUTDOWN_HOOKS``.
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from streamtriage import __version__

from . import service_lock
from .decode_worker import warm_up
from .metrics import Metrics
from .routes import incidents, ops, otlp, streams
from .settings import Settings, is_loopback
from .spool import Spool
from .state import CollectorState, decoder_workers, make_decoder
from .store import Store, StoreError, StoreLocked, redact
from .writer import Writer

log = logging.getLogger("streamtriage.collector")

Hook = Callable[[CollectorState], "Awaitable[None] | None"]

ROUTERS: list[APIRouter] = [otlp.router, ops.router, streams.router, incidents.router]
# Modules exposing ``router`` and/or ``startup``/``shutdown``; one line per component.
EXTENSIONS: list[str] = [
    "streamtriage.collector.clickhouse_http",  # read-only ClickHouse HTTP endpoint (--clickhouse-port)
    "streamtriage.collector.routes_classifier",  # /api/classify, /api/kb, background classify loop
    "streamtriage.collector.routes.feedback",  # /api/labels/{trace_id}/feedback, /api/mutes, /api/feedback
    "streamtriage.collector.gauges",  # refreshes the store-derived /metrics gauges in the background
]
STARTUP_HOOKS: list[Hook] = []
SHUTDOWN_HOOKS: list[Hook] = []


async def _call(hook: Hook, state: CollectorState) -> None:
    result = hook(state)
    if inspect.isawaitable(result):
        await result


def _extensions() -> tuple[list[APIRouter], list[Hook], list[Hook]]:
    routers: list[APIRouter] = []
    starts: list[Hook] = []
    stops: list[Hook] = []
    for name in EXTENSIONS:
        module = importlib.import_module(name)
        if getattr(module, "router", None) is not None:
            routers.append(module.router)
        if callable(getattr(module, "startup", None)):
            starts.append(module.startup)
        if callable(getattr(module, "shutdown", None)):
            stops.append(module.shutdown)
    return routers, starts, stops


def service_url(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"


async def open_state(settings: Settings) -> CollectorState:
    """Lock the state dir, connect the store (migrating it), start the writer."""
    lock = service_lock.acquire(settings.state_path)
    store: Store | None = None
    try:
        store = Store(settings)
        try:
            await asyncio.to_thread(store.connect)
        except StoreLocked:
            raise
        except StoreError as exc:
            if settings.is_embedded:
                raise
            log.warning("store %s is unreachable (%s): spooling to %s until it is back",
                        redact(settings.store), exc, settings.spool_path)
        metrics = Metrics()
        spool = Spool(settings.spool_path, settings.segment_max_bytes)
        writer = Writer(settings, store, spool, metrics)
        await writer.start()
        state = CollectorState(settings, store, spool, writer, metrics, lock)
        state.decoder = make_decoder(settings)
        # Workers import protobuf & co. now, not on the first request.
        await asyncio.gather(*(state.decode(warm_up) for _ in range(max(1, decoder_workers(settings)))))
        lock.publish(url=service_url(settings), store=redact(settings.store), database=store.database)
        return state
    except BaseException:
        if store is not None:
            store.close()
        lock.release()
        raise


async def close_state(state: CollectorState) -> None:
    try:
        await state.writer.stop()
    finally:
        state.close_decoder()
        state.store.close()
        if state.lock is not None:
            state.lock.release()


def create_app(settings: Settings) -> FastAPI:
    ext_routers, ext_starts, ext_stops = _extensions()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await open_state(settings)
        app.state.collector = state
        started: list[Hook] = []
        try:
            for hook in [*STARTUP_HOOKS, *ext_starts]:
                await _call(hook, state)
                started.append(hook)
            yield
        finally:
            for hook in reversed([*SHUTDOWN_HOOKS, *ext_stops]):
                try:
                    await _call(hook, state)
                except Exception:  # noqa: BLE001 - keep shutting down; the writer must still flush
                    log.exception("shutdown hook %r failed", hook)
            await close_state(state)

    app = FastAPI(
        title="streamtriage collector",
        version=__version__,
        description="OTLP/HTTP trace ingest into ClickHouse (otel_traces), and the streamtriage read API.",
        lifespan=lifespan,
    )
    for router in [*ROUTERS, *ext_routers]:
        app.include_router(router)
    return app


def describe(settings: Settings) -> list[str]:
    """Start-up lines for the console: where data goes and who may send it."""
    lines = [f"streamtriage collector {__version__} on {settings.display_url()}",
             f"store: {redact(settings.store)} (database {Store(settings).database})",
             f"spool: {settings.spool_path}  durability: {settings.durability}"]
    if not settings.token and not settings.reader_token:
        if is_loopback(settings.host):
            lines.append(f"no --token: ingest and API are open, so the service listens on {settings.host} only")
        else:
            lines.append(f"WARNING: no token and listening on {settings.display_url()} "
                         "(--allow-unauthenticated): anyone who can reach it can send spans and read every span")
    else:
        lines.append("ingest (/v1/traces): " + ("bearer --token" if settings.token else "open"))
        reads = ("bearer --read-token" if settings.read_token else
                 "bearer --token (no --read-token: every app that can send spans can also read them)")
        lines.append("reads (/api/*, SQL endpoint): " + reads)
    lines.append("/docs and /openapi.json: open (they describe the API; they hold no data)")
    lines.append(threshold_line(settings))
    return lines


def threshold_line(settings: Settings) -> str:
    """How long a poll loop or a stream may wait before it is an incident: a first try should know."""
    from streamtriage.classifier.thresholds import Thresholds

    th = Thresholds.from_env(flags=settings.thresholds)
    return (f"incidents: a run polled in queued/in_progress is a hang after {th.get('poll_hang_ms', 'assistants.runs') / 1000:g} s, "
            f"a stream stalls after {th.get('stall_ms', 'chat.completions') / 1000:g} s "
            "(--threshold poll_hang_ms=MS, stall_ms=MS; `streamtriage serve --help`)")


