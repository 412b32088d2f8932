"""A read-only subset of ClickHouse's HTTP interface in front of the streamtriage store.

Why: the embedded chDB store has no network endpoint, so Grafana's ClickHouse data source and the
official clients cannot reach it. Modules, in the order a request meets them:

- ``server``: ASGI app and uvicorn server on its own port; bodies capped as they arrive.
- ``protocol``: ClickHouse's HTTP request/response shapes, credentials, the order of checks.
- ``codecs``: request/response Content-Encodings, bounded decompression.
- ``client_settings``: which settings a client may send (typed), the limits (lowered only).
- ``formats``: the output formats allowed.
- ``lexer`` and ``guard``: the statement checks (tokens before any engine call, then the parse).
- ``engines``: chDB or a ClickHouse server, through handles that are read-only before any text.
- ``errors``: ``Code: N. DB::Exception`` errors and their HTTP statuses.

The collector starts it from ``collector/clickhouse_http.py`` (``serve --clickhouse-port``).
"""
from __future__ import annotations

from .client_settings import Limits, read_only_settings
from .engines import ChdbEngine, Engine, HttpEngine, Output
from .errors import ClickHouseError, GuardError
from .protocol import ClickHouseHTTP, Credentials, HttpQuery, Response
from .server import RunningServer, asgi_app, listening_socket, start_server

__all__ = [
    "ChdbEngine", "ClickHouseError", "ClickHouseHTTP", "Credentials", "Engine", "GuardError", "HttpEngine",
    "HttpQuery", "Limits", "Output", "Response", "RunningServer", "asgi_app",
    "listening_socket", "read_only_settings", "start_server",
]
