"""ClickHouse's HTTP protocol, read-only: requests in, engine calls, ClickHouse-style responses out.

Speaks enough for Grafana's data source and the official clients: ``query`` in the URL and/or
body (or a multipart field), ``default_format`` and ``FORMAT``, ``database``, settings as URL
parameters, ``param_*`` bound parameters, credentials (basic, bearer, ``X-ClickHouse-User/Key``,
``user``/``password``), ``X-ClickHouse-*`` headers and ``Code: N. DB::Exception`` errors. The
engine's output bytes pass through unchanged, so every allowed output format works as-is.

Order of work for one request: credentials, body (bounded), settings (``client_settings``),
format (``formats``), statement tokens (``guard.check_tokens``), and only then the engine:
the parse check on the read-only handle, then the statement on a read-only handle.
"""
from __future__ import annotations

import base64
import email.parser
import email.policy
import hmac
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from . import guard
from .client_settings import Limits, read_only_settings
from .codecs import decode_body, encode_body
from .engines import Engine, Output
from .errors import ClickHouseError
from .formats import content_type, output_format
from .guard import ReadOnlyPolicy

log = logging.getLogger("streamtriage.collector.sqlendpoint")

__all__ = ["ClickHouseHTTP", "Credentials", "HttpQuery", "Response", "parse_params", "read_body"]

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


def _multipart_fields(body: bytes, ctype: str) -> dict[str, bytes]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body
    )
    out: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            out[str(name)] = payload if isinstance(payload, bytes) else b""
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


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Credentials:
    """Who may query: the collector's read token as password (basic/ClickHouse headers) or bearer."""

    user: str
    password: str



class ClickHouseHTTP:
    """Turns HTTP requests into engine calls and engine output into ClickHouse-style responses."""

    # SQL, after decompression; ClickHouse's own max_query_size is 256 KiB.
    max_body_bytes = 1 << 20

    def __init__(self, engine: Engine, *, limits: Limits | None = None,
                 credentials: Credentials | None = None, database: str | None = None,
                 display_name: str = "streamtriage") -> None:
        self.engine = engine
        self.limits = limits or Limits()
        self.credentials = credentials
        self.database = database
        self.display_name = display_name
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
            out.append(("Content-Type", content_type(fmt)))
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
            fmt, output = self.run(req)
            hdrs = self._headers(query_id, fmt, output.summary)
            body_out = output.body
            if req.http_compression and body_out:
                body_out, encoding = encode_body(body_out, headers.get("accept-encoding", ""))
                if encoding:
                    hdrs.append(("Content-Encoding", encoding))
            return Response(200, hdrs, body_out)
        except ClickHouseError as err:
            hdrs = self._headers(query_id or str(uuid.uuid4()))
            hdrs += [("X-ClickHouse-Exception-Code", str(err.code)), ("Content-Type", "text/plain; charset=UTF-8")]
            if err.code == 194:
                hdrs.append(("WWW-Authenticate", 'Basic realm="streamtriage"'))
            return Response(err.status, hdrs, err.body(self.engine.version))

    def run(self, req: HttpQuery) -> tuple[str | None, Output]:
        """Check and run one read-only statement; (the output format, the engine's output)."""
        try:
            sql = req.text.decode("utf-8")
        except UnicodeDecodeError:
            raise ClickHouseError(36, "The query is not valid UTF-8") from None
        settings = read_only_settings(req.settings, self.limits)
        default_format = output_format(req.default_format)
        stmt, clause_format = guard.check_tokens(sql)  # before any engine call: the built-in lists
        guard.check_tokens(stmt, self.policy)  # and the engine's own list of table functions
        database = req.database or self.database
        info = guard.check_ast(stmt, lambda s: self.engine.explain_ast(s, req.params, database), self.policy)
        fmt = clause_format or (output_format(info.output_format) if info.output_format else default_format)
        return fmt, self.engine.query(stmt, default_format, req.params, database, settings)
