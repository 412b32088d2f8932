"""A subset of ClickHouse's HTTP interface in front of the streamtriage store.

Why: the embedded chDB store has no network endpoint, so Grafana's ClickHouse data source and the
official clients cannot reach it. This module speaks enough of the HTTP protocol for them
(``query`` in the URL and/or body, ``default_format`` and ``FORMAT``, ``database``, settings as URL
parameters, ``param_*`` bound parameters, ``X-ClickHouse-*`` headers and ``Code: N. DB::Exception``
errors) and passes the engine's output bytes through unchanged, so every ClickHouse output format
works without re-encoding.

One protocol implementation serves two roles:
- ``read_only=True`` (the collector's ``--clickhouse-port``): statements are checked by
  ``sql_guard`` and run with ``readonly=1`` and limits appended as a ``SETTINGS`` clause;
  URL settings go through an allowlist.
- ``read_only=False`` (the test stand-in for a ClickHouse server, ``tests/support``): any statement
  runs, including ``INSERT ... FORMAT`` with a (compressed) data body, as clickhouse-connect sends.
"""
from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import gzip
import hmac
import json
import logging
import os
import re
import threading
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

from streamtriage.collector import sql_guard
from streamtriage.collector.sql_guard import GuardError, ReadOnlyPolicy

log = logging.getLogger(__name__)

__all__ = [
    "ClickHouseError",
    "Limits",
    "Engine",
    "ChdbEngine",
    "HttpEngine",
    "ClickHouseHTTP",
    "asgi_app",
    "start_server",
    "engine_for_store",
]

# ClickHouse error names for the codes this module reports itself (others come from the engine).
ERROR_NAMES = {
    36: "BAD_ARGUMENTS",
    46: "UNKNOWN_FUNCTION",
    48: "NOT_IMPLEMENTED",
    60: "UNKNOWN_TABLE",
    62: "SYNTAX_ERROR",
    73: "UNKNOWN_FORMAT",
    81: "UNKNOWN_DATABASE",
    115: "UNKNOWN_SETTING",
    159: "TIMEOUT_EXCEEDED",
    164: "READONLY",
    194: "REQUIRED_PASSWORD",
    210: "NETWORK_ERROR",
    241: "MEMORY_LIMIT_EXCEEDED",
    396: "TOO_MANY_ROWS_OR_BYTES",
    497: "ACCESS_DENIED",
    516: "AUTHENTICATION_FAILED",
    1001: "STD_EXCEPTION",
}
# HTTP status per error code, following ClickHouse's HTTP handler; anything else is 500.
_HTTP_STATUS = {
    194: 401, 516: 401,
    164: 403, 497: 403, 192: 403, 193: 403, 195: 403,
    60: 404, 81: 404, 46: 404, 47: 404, 50: 404, 73: 404, 115: 404,
    62: 400, 6: 400, 26: 400, 27: 400, 36: 400, 41: 400, 42: 400, 43: 400, 44: 400, 53: 400,
    70: 400, 72: 400, 117: 400, 456: 400, 457: 400, 69: 400,
    48: 501, 210: 503,
}
_CODE_RE = re.compile(r"Code: (\d+)\. ")
_NAME_RE = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*(?:\(version [^)]*\))?\s*$")


class ClickHouseError(Exception):
    """An error reported the way ClickHouse reports it over HTTP."""

    def __init__(self, code: int, message: str, name: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name or ERROR_NAMES.get(code, "UNKNOWN_EXCEPTION")
        self.status = status or _HTTP_STATUS.get(code, 500)

    @classmethod
    def from_engine_message(cls, text: str) -> ClickHouseError:
        """Wrap an engine exception text such as ``Code: 60. DB::Exception: ... (UNKNOWN_TABLE)``."""
        text = text.strip()
        codes = _CODE_RE.findall(text)
        code = int(codes[-1]) if codes else 1001
        name_match = _NAME_RE.search(text)
        message = text
        # chDB nests "Code: N. DB::Exception: Code: N. DB::Exception: msg"; keep the innermost.
        marker = "DB::Exception: "
        if marker in message:
            message = message[message.rfind(marker) + len(marker):]
        message = _NAME_RE.sub("", message).rstrip().rstrip(".")
        return cls(code, message, name_match.group(1) if name_match else None)

    def body(self, version: str) -> bytes:
        return f"Code: {self.code}. DB::Exception: {self}. ({self.name}) (version {version})\n".encode()


# ---------------------------------------------------------------------------------------------
# Engines: where statements run. Both return the engine's output bytes untouched.
# ---------------------------------------------------------------------------------------------


@dataclass
class Output:
    body: bytes
    summary: dict[str, int] = field(default_factory=dict)


class Engine(Protocol):
    version: str
    timezone: str

    def query(self, sql: str, fmt: str, params: Mapping[str, str], database: str | None,
              settings: Mapping[str, str] | None = None) -> Output: ...

    def insert(self, statement: str, fmt: str, data: bytes, database: str | None,
               settings: Mapping[str, str] | None = None) -> Output: ...

    def explain_ast(self, sql: str, params: Mapping[str, str], database: str | None) -> str: ...

    def function_names(self) -> tuple[set[str], set[str]]: ...


_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def setting_literal(value: str) -> str:
    """A setting value as SQL: numbers as they are, anything else as a quoted string."""
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def settings_clause(settings: Mapping[str, str]) -> str:
    for name in settings:
        if not _IDENT_RE.match(name):
            raise ClickHouseError(115, f"Invalid setting name {name!r}")
    return ", ".join(f"{k} = {setting_literal(v)}" for k, v in settings.items())


class _SchemaQueries:
    """What the SQL guard asks of any engine, answered through the engine's own ``query``."""

    def explain_ast(self, sql: str, params: Mapping[str, str], database: str | None) -> str:
        return self.query("EXPLAIN AST " + sql, "TabSeparatedRaw", params, database).body.decode()  # type: ignore[attr-defined]

    def function_names(self) -> tuple[set[str], set[str]]:
        tfs = self.query("SELECT name FROM system.table_functions", "TabSeparatedRaw", {}, None).body  # type: ignore[attr-defined]
        fns = self.query("SELECT name FROM system.functions", "TabSeparatedRaw", {}, None).body  # type: ignore[attr-defined]
        return set(tfs.decode().split()), set(fns.decode().split())


class ChdbEngine(_SchemaQueries):
    """Runs statements on the embedded engine through its own chDB connection handle.

    A handle of its own (not the store's clickhouse-connect client) keeps the endpoint's database
    switches and settings away from the collector's writer; chDB allows several handles on the one
    data directory a process may open. Calls are serialised: one handle runs one statement.
    """

    def __init__(self, path: str) -> None:
        import os

        import chdb

        self._conn = chdb.connect(os.path.realpath(path))
        self._lock = threading.Lock()
        self._current_db: str | None = None
        self.version, self.timezone = self._scalar_row("SELECT version(), timezone()")

    def _scalar_row(self, sql: str) -> list[str]:
        with self._lock:
            return self._conn.query(sql, "TabSeparated").bytes().decode().rstrip("\n").split("\t")

    def _use(self, database: str | None) -> None:
        target = database or "default"
        if target != self._current_db:
            self._conn.query(f"USE {quote_identifier(target)}", "TabSeparated")
            self._current_db = target

    def _run(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ClickHouseError:
            raise
        except Exception as exc:  # chDB raises its own error types with ClickHouse text
            raise ClickHouseError.from_engine_message(str(exc)) from exc

    @staticmethod
    def _summary(result: Any, body: bytes) -> dict[str, int]:
        return {
            "read_rows": int(result.storage_rows_read()),
            "read_bytes": int(result.storage_bytes_read()),
            "written_rows": int(result.rows_written()),
            "written_bytes": int(result.bytes_written()),
            "result_rows": int(result.rows_read()),
            "result_bytes": len(body),
            "elapsed_ns": int(result.elapsed() * 1e9),
        }

    def _with_settings(self, settings: Mapping[str, str] | None, fn: Callable[[], Any]) -> Any:
        """Apply session settings with SET for one call and return them to their defaults after."""
        if not settings:
            return fn()
        applied: list[str] = []
        try:
            for name, value in settings.items():
                self._conn.query(f"SET {settings_clause({name: value})}", "TabSeparated")
                applied.append(name)
            return fn()
        finally:
            for name in applied:
                try:
                    self._conn.query(f"SET {name} = DEFAULT", "TabSeparated")
                except Exception:  # pragma: no cover - a setting that cannot be reset stays
                    log.warning("could not reset setting %s", name)

    def query(self, sql: str, fmt: str, params: Mapping[str, str], database: str | None,
              settings: Mapping[str, str] | None = None) -> Output:
        def run() -> Output:
            with self._lock:
                self._use(database)

                def call() -> Any:
                    return self._conn.query(sql, fmt, params=dict(params))

                result = self._with_settings(settings, call)
                body = result.bytes() or b""
                return Output(body, self._summary(result, body))

        return self._run(run)

    def insert(self, statement: str, fmt: str, data: bytes, database: str | None,
               settings: Mapping[str, str] | None = None) -> Output:
        def run() -> Output:
            with self._lock:
                self._use(database)

                def call() -> Any:
                    with self._conn.send_insert(statement, fmt) as inserter:
                        if data:
                            inserter.append(data)
                        return inserter.finish()

                res = self._with_settings(settings, call)
                rows = int(getattr(res, "rows_written", 0) or 0)
                written = int(getattr(res, "bytes_written", 0) or 0)
                return Output(b"", {"written_rows": rows, "written_bytes": written})

        return self._run(run)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class HttpEngine(_SchemaQueries):
    """Forwards statements to a ClickHouse server's HTTP interface (the production store)."""

    def __init__(self, url: str, user: str | None = None, password: str | None = None,
                 timeout_s: float = 60.0) -> None:
        from urllib.parse import urlparse

        import urllib3

        parsed = urlparse(url)
        self._base = f"{parsed.scheme}://{parsed.hostname}:{parsed.port or (8443 if parsed.scheme == 'https' else 8123)}/"
        self._headers: dict[str, str] = {}
        user = user or parsed.username
        password = password if password is not None else parsed.password
        if user:
            self._headers["X-ClickHouse-User"] = user
        if password:
            self._headers["X-ClickHouse-Key"] = password
        self._pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5.0, read=timeout_s), retries=False)
        self._identity: tuple[str, str] | None = None

    def _server_identity(self) -> tuple[str, str]:
        """Version and timezone, asked once the server answers (it may be down at start-up)."""
        if self._identity is None:
            try:
                row = self.query("SELECT version(), timezone()", "TabSeparated", {}, None).body.decode()
                version, tz = row.rstrip("\n").split("\t")
                self._identity = (version, tz)
            except ClickHouseError:
                return ("unknown", "UTC")
        return self._identity

    @property
    def version(self) -> str:
        return self._server_identity()[0]

    @property
    def timezone(self) -> str:
        return self._server_identity()[1]

    def _post(self, params: dict[str, str], body: bytes, headers: Mapping[str, str] | None = None) -> Output:
        try:
            resp = self._pool.urlopen(
                "POST", self._base + "?" + _urlencode(params), body=body,
                headers={**self._headers, **(headers or {})}, preload_content=True,
            )
        except Exception as exc:
            raise ClickHouseError(210, f"Cannot reach the ClickHouse server at {self._base}: {exc}") from exc
        if resp.status != 200:
            code = resp.headers.get("X-ClickHouse-Exception-Code")
            err = ClickHouseError.from_engine_message(resp.data.decode(errors="replace"))
            if code and code.isdigit():
                err.code = int(code)
            err.status = resp.status
            raise err
        summary: dict[str, int] = {}
        try:
            summary = {k: int(v) for k, v in json.loads(resp.headers.get("X-ClickHouse-Summary", "{}")).items()}
        except (ValueError, TypeError):
            pass
        return Output(resp.data, summary)

    def query(self, sql: str, fmt: str, params: Mapping[str, str], database: str | None,
              settings: Mapping[str, str] | None = None) -> Output:
        url_params = {**(settings or {}), "default_format": fmt}
        if database:
            url_params["database"] = database
        url_params.update({f"param_{k}": v for k, v in params.items()})
        return self._post(url_params, sql.encode())

    def insert(self, statement: str, fmt: str, data: bytes, database: str | None,
               settings: Mapping[str, str] | None = None) -> Output:
        url_params = dict(settings or {})
        if database:
            url_params["database"] = database
        url_params["query"] = f"{statement} FORMAT {fmt}"
        return self._post(url_params, data)

    def close(self) -> None:
        self._pool.clear()


def _urlencode(params: Mapping[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(list(params.items()))


def engine_for_store(store: str) -> ChdbEngine | HttpEngine:
    """The engine for a collector ``store`` DSN (``chdb://DIR`` or ``http(s)://...``)."""
    if store.startswith("chdb://"):
        import os

        return ChdbEngine(os.path.realpath(store[len("chdb://"):] or "./streamtriage-data"))
    return HttpEngine(store)


# ---------------------------------------------------------------------------------------------
# Request parsing and settings policy
# ---------------------------------------------------------------------------------------------

# URL parameters that steer the HTTP exchange itself rather than the query.
_TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "query_id", "user", "password", "quota_key", "role",
    "session_id", "session_timeout", "session_check", "compress", "decompress",
    "enable_http_compression", "http_zlib_compression_level", "wait_end_of_query",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms", "buffer_size",
    "add_http_cors_header", "http_native_compression_disable_checksumming_on_decompress",
    "http_response_buffer_size", "http_wait_end_of_query", "client_protocol_version",
    "cancel_http_readonly_queries_on_client_close", "http_write_exception_in_output_format",
})


@dataclass(frozen=True)
class Limits:
    """Caps for every read-only query; a client may ask for less, never for more."""

    max_execution_time: int = 30
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 256 * 1024 * 1024
    max_memory_usage: int = 1024 * 1024 * 1024
    # Half the cores: a heavy dashboard query must leave room for ingest in the same process.
    max_threads: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))

    def as_settings(self) -> dict[str, str]:
        return {
            "max_threads": str(self.max_threads),
            "max_execution_time": str(self.max_execution_time),
            "max_result_rows": str(self.max_result_rows),
            "max_result_bytes": str(self.max_result_bytes),
            "max_memory_usage": str(self.max_memory_usage),
            "result_overflow_mode": "throw",
            "timeout_overflow_mode": "throw",
        }


# Settings a read-only client may pass: they change how results are computed or printed, never
# what may be read or written. Anything else is refused like ClickHouse does in readonly mode.
# Format settings that name server files (templates, schemas; ``output_format_schema`` even writes
# one) are excluded from the prefixes by name.
_SAFE_SETTING_PREFIXES = ("output_format_", "date_time_", "cast_", "join_", "optimize_",
                          "aggregate_functions_", "interval_output_", "format_csv_", "format_tsv_")
_UNSAFE_SETTINGS = frozenset({"output_format_schema", "format_schema", "format_template_row",
                              "format_template_resultset", "format_template_rows_between_delimiter",
                              "format_display_secrets_in_show_and_select", "output_format_parquet_write_bloom_filter"})
_SAFE_SETTINGS = frozenset({
    "max_block_size", "extremes", "log_comment", "session_timezone",
    "prefer_column_name_to_alias", "transform_null_in", "join_use_nulls", "enable_analyzer",
    "max_rows_to_read", "max_bytes_to_read", "read_overflow_mode", "max_rows_to_group_by",
    "group_by_overflow_mode", "max_query_size", "totals_mode", "use_index_for_in_with_subqueries",
    "query_plan_enable_optimizations", "count_distinct_implementation",
    "precise_float_parsing", "allow_experimental_analyzer",
    "limit", "offset",  # the Grafana plugin's row limit (enableRowLimit) arrives as ``limit``
})


def read_only_settings(requested: Mapping[str, str], limits: Limits) -> dict[str, str]:
    """Merge a client's URL settings with the endpoint's limits; refuse widening ones.

    ``readonly`` may only be tightened (1 or 2 is accepted and ignored: the query runs with 1);
    a limit may be lowered, never raised or switched off.
    """
    out: dict[str, str] = {}
    caps = limits.as_settings()
    for name, value in requested.items():
        if name == "readonly":
            if value not in ("1", "2"):
                raise ClickHouseError(164, f"Cannot modify 'readonly' setting in readonly mode (asked for {value!r})")
            continue
        if name == "allow_ddl":
            if value != "0":
                raise ClickHouseError(164, "Cannot modify 'allow_ddl' setting in readonly mode")
            continue
        if name in ("max_execution_time", "max_result_rows", "max_result_bytes", "max_memory_usage", "max_threads"):
            try:
                asked = float(value)
            except ValueError:
                raise ClickHouseError(36, f"Bad value {value!r} for setting {name}") from None
            cap = float(caps[name])
            if 0 < asked < cap:
                caps[name] = value
            continue
        if name in ("result_overflow_mode", "timeout_overflow_mode"):
            if value not in ("throw", "break"):
                raise ClickHouseError(36, f"Bad value {value!r} for setting {name}")
            caps[name] = value
            continue
        if name not in _UNSAFE_SETTINGS and (name in _SAFE_SETTINGS or name.startswith(_SAFE_SETTING_PREFIXES)):
            out[name] = value
            continue
        raise ClickHouseError(164, f"Cannot modify '{name}' setting in readonly mode")
    out.update(caps)
    out["readonly"] = "1"  # last: applied after every other setting of the clause
    return out


@dataclass
class HttpQuery:
    """One request, as ClickHouse reads it."""

    text: bytes  # URL ``query`` + "\n" + body (or the multipart ``query`` field)
    default_format: str = "TabSeparated"
    database: str | None = None
    query_id: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    password: str | None = None
    http_compression: bool = False


def decode_body(body: bytes, encoding: str | None, max_bytes: int = 512 << 20) -> bytes:
    """Undo a request Content-Encoding (what clickhouse-connect and the Node client send).

    The output is bounded by ``max_bytes``: a small compressed body must not expand into memory
    exhaustion (the read-only endpoint allows 1 MiB of SQL, decompressed).
    """
    enc = (encoding or "").strip().lower()
    if not enc or enc == "identity":
        return body
    makers: dict[str, Callable[[], Any]] = {
        "gzip": lambda: zlib.decompressobj(wbits=31),
        "deflate": zlib.decompressobj,
    }
    try:
        if enc == "lz4":
            import lz4.frame

            makers["lz4"] = lz4.frame.LZ4FrameDecompressor
        elif enc == "zstd":
            makers["zstd"] = _zstd().ZstdDecompressor
        elif enc == "br":
            import brotli  # type: ignore[import-not-found]

            out = brotli.decompress(body)
            if len(out) > max_bytes:
                raise ClickHouseError(36, f"Decompressed request body larger than {max_bytes} bytes", status=413)
            return out
        if enc not in makers:
            raise ClickHouseError(36, f"Unknown Content-Encoding of the request body: {enc}")
        return _all_frames(body, makers[enc], max_bytes)
    except ClickHouseError:
        raise
    except Exception as exc:
        raise ClickHouseError(36, f"Cannot decode request body with Content-Encoding {enc}: {exc}") from exc


def _all_frames(body: bytes, decompressor: Callable[[], Any], max_bytes: int) -> bytes:
    """Decompress concatenated frames (a streaming client compresses each block on its own),
    fed in 1 KiB slices so the size bound is checked before a bomb can expand far past it."""
    out: list[bytes] = []
    size = 0
    rest = body
    while rest:
        d = decompressor()
        view = memoryview(rest)
        pos = 0
        while pos < len(view) and not getattr(d, "eof", False):
            chunk = d.decompress(bytes(view[pos:pos + 1024]))
            pos += 1024
            size += len(chunk)
            if size > max_bytes:
                raise ClickHouseError(36, f"Decompressed request body larger than {max_bytes} bytes", status=413)
            out.append(chunk)
        if not getattr(d, "eof", True):
            raise ValueError("truncated compressed body")
        unused = d.unused_data
        # the slice that finished this frame may hold the start of the next one
        rest = unused + bytes(view[pos:]) if pos < len(view) else unused
    return b"".join(out)


def _zstd() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found,no-redef]  # clickhouse-connect's dependency
    return zstd


def encode_body(body: bytes, accept_encoding: str) -> tuple[bytes, str | None]:
    """Compress a response the way the client asked (``enable_http_compression=1``), first match wins."""
    for raw in accept_encoding.split(","):
        enc = raw.split(";")[0].strip().lower()
        if enc == "gzip":
            return gzip.compress(body, compresslevel=3), enc
        if enc == "deflate":
            return zlib.compress(body, 3), enc
        if enc == "lz4":
            import lz4.frame

            return lz4.frame.compress(body), enc
        if enc == "zstd":
            return _zstd().compress(body), enc
    return body, None


def _multipart_fields(body: bytes, content_type: str) -> dict[str, bytes]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    out: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and part.get_filename() is None:
            out[str(name)] = part.get_payload(decode=True) or b""
    return out


def parse_params(query_string: str, headers: Mapping[str, str]) -> HttpQuery:
    """Read format, database, settings, credentials and ``param_*`` from the URL, as ClickHouse does."""
    req = HttpQuery(text=b"")
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        if key == "query":
            req.text = value.encode()
        elif key.startswith("param_"):
            req.params[key[len("param_"):]] = value
        elif key == "database":
            req.database = value or None
        elif key == "default_format":
            req.default_format = value or req.default_format
        elif key == "query_id":
            # echoed in a response header: printable ASCII only
            req.query_id = value if re.fullmatch(r"[\x20-\x7e]{1,256}", value) else ""
        elif key == "user":
            req.user = value
        elif key == "password":
            req.password = value
        elif key == "enable_http_compression":
            req.http_compression = value == "1"
        elif key in ("compress", "decompress") and value == "1":
            raise ClickHouseError(48, f"ClickHouse block compression ({key}=1) is not supported by this endpoint; "
                                  "use HTTP compression (enable_http_compression=1 with Accept-Encoding)")
        elif key in _TRANSPORT_PARAMS:
            continue
        else:
            req.settings[key] = value
    req.database = headers.get("x-clickhouse-database") or req.database
    req.default_format = headers.get("x-clickhouse-format") or req.default_format
    return req


def read_body(req: HttpQuery, method: str, headers: Mapping[str, str], body: bytes, max_bytes: int) -> None:
    """Add the body to the query text: URL ``query`` + newline + body, or a multipart form's fields."""
    if method != "POST" or not body:
        return
    content_type = headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        form = _multipart_fields(body, content_type)
        for key, raw in form.items():
            if key.startswith("param_"):
                req.params[key[len("param_"):]] = raw.decode()
        req.text = form.get("query", b"") or req.text
        return
    data = decode_body(body, headers.get("content-encoding"), max_bytes)
    req.text = req.text + b"\n" + data if req.text and data else req.text or data


def parse_request(method: str, query_string: str, headers: Mapping[str, str], body: bytes,
                  max_bytes: int = 512 << 20) -> HttpQuery:
    """Both steps at once (no credentials check in between); for tools and tests."""
    req = parse_params(query_string, headers)
    read_body(req, method, headers, body, max_bytes)
    return req


# ---------------------------------------------------------------------------------------------
# The protocol core
# ---------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Credentials:
    """Who may query: the collector's token as password (basic/ClickHouse headers) or bearer."""

    user: str
    password: str


_READ_KEYWORDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN")


class ClickHouseHTTP:
    """Turns HTTP requests into engine calls and engine output into ClickHouse-style responses."""

    def __init__(self, engine: Engine, *, read_only: bool = True, limits: Limits | None = None,
                 credentials: Credentials | None = None, database: str | None = None,
                 display_name: str = "streamtriage") -> None:
        self.engine = engine
        self.read_only = read_only
        self.limits = limits or Limits()
        self.credentials = credentials
        self.database = database
        self.display_name = display_name
        # SQL (read-only) or insert data (stand-in), after decompression; ClickHouse's own
        # max_query_size is 256 KiB.
        self.max_body_bytes = (1 << 20) if read_only else (512 << 20)
        self._policy: ReadOnlyPolicy | None = None

    @property
    def policy(self) -> ReadOnlyPolicy:
        if self._policy is None:
            try:
                self._policy = ReadOnlyPolicy.from_engine_lists(*self.engine.function_names())
            except ClickHouseError as exc:
                # Not cached: the engine's own list is asked for again on the next request.
                log.warning("could not read the engine's function lists (%s); using the built-in list", exc)
                return ReadOnlyPolicy()
        return self._policy

    # -- authentication ----------------------------------------------------------------------

    def _authenticate(self, req: HttpQuery, headers: Mapping[str, str]) -> None:
        if self.credentials is None:
            return
        user, password = req.user, req.password
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except Exception:
                raise ClickHouseError(516, "Malformed basic authorization header") from None
        elif auth.lower().startswith("bearer "):
            user, password = self.credentials.user, auth[7:].strip()
        if "x-clickhouse-user" in headers or "x-clickhouse-key" in headers:
            user = headers.get("x-clickhouse-user", user)
            password = headers.get("x-clickhouse-key", password)
        if password is None:
            raise ClickHouseError(194, f"{user or 'default'}: Authentication failed: password is required")
        user_ok = hmac.compare_digest((user or "default").encode(), self.credentials.user.encode())
        pass_ok = hmac.compare_digest(password.encode(), self.credentials.password.encode())
        if not (user_ok and pass_ok):
            raise ClickHouseError(516, f"{user or 'default'}: Authentication failed: password is incorrect, or there is no user with such name")

    # -- request handling ----------------------------------------------------------------------

    def _headers(self, query_id: str, fmt: str | None = None, summary: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
        out = [
            ("X-ClickHouse-Server-Display-Name", self.display_name),
            ("X-ClickHouse-Query-Id", query_id),
            ("X-ClickHouse-Timezone", self.engine.timezone),
        ]
        if fmt:
            out.append(("X-ClickHouse-Format", fmt))
            out.append(("Content-Type", _content_type(fmt)))
        if summary is not None:
            keys = ("read_rows", "read_bytes", "written_rows", "written_bytes", "total_rows_to_read",
                    "result_rows", "result_bytes", "elapsed_ns")
            out.append(("X-ClickHouse-Summary", json.dumps({k: str(int(summary.get(k, 0))) for k in keys}, separators=(",", ":"))))
        return out

    def handle(self, method: str, path: str, query_string: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Serve one request (blocking: runs the statement)."""
        query_id = ""
        try:
            route = path.rstrip("/") or "/"
            if route in ("/ping", "/replicas_status") and method in ("GET", "HEAD"):
                return Response(200, [("Content-Type", "text/plain; charset=UTF-8")], b"Ok.\n")
            if route != "/":
                raise ClickHouseError(48, f"There is no handler for {path}", status=404)
            if method not in ("GET", "POST"):
                raise ClickHouseError(48, f"Method {method} is not supported", status=405)
            req = parse_params(query_string, headers)
            query_id = req.query_id or str(uuid.uuid4())
            self._authenticate(req, headers)  # before the body is decompressed or parsed
            read_body(req, method, headers, body, self.max_body_bytes)
            if not req.text.strip():
                if method == "GET":
                    return Response(200, [("Content-Type", "text/plain; charset=UTF-8")], b"Ok.\n")
                raise ClickHouseError(62, "Empty query")
            if self.read_only:
                fmt, output = self._run_read_only(req)
            else:
                fmt, output = self._run_any(req)
            hdrs = self._headers(query_id, fmt, output.summary)
            body_out = output.body
            if req.http_compression and body_out:
                body_out, encoding = encode_body(body_out, headers.get("accept-encoding", ""))
                if encoding:
                    hdrs.append(("Content-Encoding", encoding))
            return Response(200, hdrs, body_out)
        except (ClickHouseError, GuardError) as exc:
            err = exc if isinstance(exc, ClickHouseError) else ClickHouseError(exc.code, str(exc), exc.name)
            hdrs = self._headers(query_id or str(uuid.uuid4()))
            hdrs += [("X-ClickHouse-Exception-Code", str(err.code)), ("Content-Type", "text/plain; charset=UTF-8")]
            if err.code == 194:
                hdrs.append(("WWW-Authenticate", 'Basic realm="streamtriage"'))
            return Response(err.status, hdrs, err.body(self.engine.version))

    def _run_read_only(self, req: HttpQuery) -> tuple[str, Output]:
        try:
            sql = req.text.decode("utf-8")
        except UnicodeDecodeError:
            raise ClickHouseError(36, "The query is not valid UTF-8") from None
        settings = read_only_settings(req.settings, self.limits)
        database = req.database or self.database
        stmt, info = sql_guard.check_read_only(
            sql, lambda s: self.engine.explain_ast(s, req.params, database), self.policy
        )
        fmt = info.output_format or req.default_format
        final = f"{stmt}\nSETTINGS {settings_clause(settings)}"
        return fmt, self.engine.query(final, req.default_format, req.params, database)

    def _run_any(self, req: HttpQuery) -> tuple[str | None, Output]:
        """Stand-in mode: everything runs, INSERT data bodies included."""
        text = req.text.decode("latin-1")
        database = req.database or self.database
        settings = dict(req.settings)
        keyword = sql_guard.first_keyword(text)
        if keyword == "INSERT":
            statement, fmt, offset = sql_guard.split_insert_data(text)
            if fmt is not None and offset is not None:
                data = req.text[offset:]
                return None, self.engine.insert(statement.encode("latin-1").decode("utf-8"), fmt, data, database, settings)
        sql = sql_guard.single_statement(req.text.decode("utf-8"))
        fmt = req.default_format if keyword in _READ_KEYWORDS else None
        try:
            info_fmt = _format_clause(sql) if fmt else None
        except GuardError:
            info_fmt = None
        output = self.engine.query(sql, req.default_format, req.params, database, settings)
        return (info_fmt or fmt), output


def _format_clause(sql: str) -> str | None:
    """The name after a top-level trailing ``FORMAT`` keyword, if any (stand-in mode header)."""
    depth = 0
    toks = list(sql_guard.tokens(sql))
    found: str | None = None
    for i, tok in enumerate(toks):
        if tok.kind == "symbol" and tok.text == "(":
            depth += 1
        elif tok.kind == "symbol" and tok.text == ")":
            depth -= 1
        elif depth == 0 and tok.kind == "word" and tok.text.upper() == "FORMAT" and i + 1 < len(toks):
            found = toks[i + 1].text.strip("`\"")
    return found


def _content_type(fmt: str) -> str:
    f = fmt.lower()
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f in ("native", "rowbinary", "rowbinarywithnames", "rowbinarywithnamesandtypes", "parquet", "arrow", "arrowstream", "orc", "avro"):
        return "application/octet-stream"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    return "text/plain; charset=UTF-8"


# ---------------------------------------------------------------------------------------------
# ASGI adapter and server
# ---------------------------------------------------------------------------------------------


def asgi_app(core: ClickHouseHTTP, max_body_bytes: int | None = None) -> Callable[..., Awaitable[None]]:
    """An ASGI app serving ``core``; mount it on a path or serve it on its own port.

    Bodies are capped as received by ``core.max_body_bytes`` (1 MiB of SQL for the read-only
    endpoint, 512 MiB of insert data for the stand-in), and again after decompression.
    """
    if max_body_bytes is None:
        max_body_bytes = core.max_body_bytes

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                  send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        too_big = False
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_body_bytes:
                too_big = True
            elif chunk:
                chunks.append(chunk)
            more = message.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "/")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        if too_big:
            err = ClickHouseError(36, f"Request body larger than {max_body_bytes} bytes", status=413)
            resp = Response(413, [("X-ClickHouse-Exception-Code", "36")], err.body(core.engine.version))
        else:
            loop = asyncio.get_running_loop()
            resp = await loop.run_in_executor(
                None, core.handle, scope["method"], path, scope.get("query_string", b"").decode("latin-1"),
                headers, b"".join(chunks),
            )
        await send({
            "type": "http.response.start",
            "status": resp.status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers]
            + [(b"content-length", str(len(resp.body)).encode())],
        })
        await send({"type": "http.response.body", "body": resp.body if scope["method"] != "HEAD" else b""})

    return app


@dataclass
class RunningServer:
    """A uvicorn server running in a background thread of this process."""

    server: Any
    thread: threading.Thread
    port: int

    def stop(self, timeout_s: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)


def listening_socket(host: str, port: int) -> Any:
    """A bound TCP socket for uvicorn (``sockets=[...]``), port 0 picks a free port."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections: without it the response body (a second small write after
    # the headers) waits for the client's delayed ACK, ~40 ms per query.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


def start_server(core: ClickHouseHTTP, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``core`` on host:port from a daemon thread; port 0 picks a free port."""
    import uvicorn

    sock = listening_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app(core), log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="clickhouse-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError(f"ClickHouse HTTP endpoint did not start on {host}:{bound_port}")
    return RunningServer(server, thread, bound_port)


# ---------------------------------------------------------------------------------------------
# Collector extension: ``streamtriage serve --clickhouse-port 8123``
# ---------------------------------------------------------------------------------------------


async def startup(state: Any) -> None:
    """Serve the read-only endpoint next to the collector when ``clickhouse_port`` is set.

    Backed by the collector's own store: the same chDB directory (through a handle of its own) or
    the same ClickHouse server. Credentials are required when the collector has a token.
    """
    settings = state.settings
    port = getattr(settings, "clickhouse_port", None)
    if port is None:
        return
    engine: ChdbEngine | HttpEngine
    if settings.is_embedded:
        engine = await asyncio.to_thread(ChdbEngine, str(settings.chdb_dir))
    else:
        engine = HttpEngine(settings.store)
    creds = Credentials(getattr(settings, "clickhouse_user", "default") or "default", settings.token) \
        if settings.token else None
    core = ClickHouseHTTP(engine, read_only=True, credentials=creds, database=state.store.database)
    server = await asyncio.to_thread(start_server, core, settings.host, int(port))
    state.extras["clickhouse_http"] = (server, engine)
    if creds is None and settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("read-only ClickHouse endpoint on %s:%d has no credentials: anyone who can reach it can "
                    "read every span; set --token", settings.host, server.port)
    log.info("read-only ClickHouse HTTP endpoint on http://%s:%d (database %s)%s", settings.host,
                server.port, state.store.database, "" if creds else ", no credentials required")


async def shutdown(state: Any) -> None:
    running = state.extras.pop("clickhouse_http", None)
    if running is None:
        return
    server, engine = running
    await asyncio.to_thread(server.stop)
    engine.close()
