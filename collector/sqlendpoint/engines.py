"""Where statements run: the embedded chDB engine or a ClickHouse server, always read-only.

Why here and not only in the checks: the engine is the last wall. Every statement of this
package runs on an engine handle that is read-only *before* the text arrives, so a statement the
checks misjudged still cannot write, and cannot lift its own limits:

- **chDB** (``ChdbEngine``): each handle is its own ``chdb.connect("DIR?...&readonly=1")``
  connection (chDB 4.x keeps settings per connection). The request's settings and the limits are
  part of the connection string and applied before ``readonly=1``; with ``readonly=1`` the session
  refuses ``INSERT``, DDL, ``INSERT INTO FUNCTION``, table functions that reach files or the
  network, ``SET`` and any ``SETTINGS`` clause (code 164), for every statement of a text, not only
  the last. Handles are kept per distinct settings (a small LRU), so a dashboard's repeated
  requests reuse one. The collector's writer uses its own connections and is unaffected.
- **ClickHouse server** (``HttpEngine``): one statement per HTTP request (the server's HTTP
  interface never runs two), with the settings and then ``readonly=1`` as URL parameters: the
  server applies them before parsing the statement, and the statement cannot change them.
"""
from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode, urlparse

from .errors import ClickHouseError
from .lexer import Token, tokens

__all__ = ["Output", "Engine", "ChdbEngine", "HttpEngine", "quote_identifier"]

READ_ONLY = ("readonly", "1")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE = re.compile(r"[A-Za-z0-9_./:+-]*")


@dataclass
class Output:
    body: bytes
    summary: dict[str, int] = field(default_factory=dict)


class Engine(Protocol):
    """What the protocol needs of a store; every call runs read-only."""

    @property
    def version(self) -> str: ...

    @property
    def timezone(self) -> str: ...

    def query(self, sql: str, fmt: str, params: Mapping[str, str], database: str | None,
              settings: Mapping[str, str] | None = None) -> Output: ...

    def explain_ast(self, sql: str, params: Mapping[str, str], database: str | None) -> str: ...

    def function_names(self) -> tuple[set[str], set[str]]: ...

    def close(self) -> None: ...


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def chdb_summary(result: Any, body: bytes) -> dict[str, int]:
    return {
        "read_rows": int(result.storage_rows_read()),
        "read_bytes": int(result.storage_bytes_read()),
        "written_rows": int(result.rows_written()),
        "written_bytes": int(result.bytes_written()),
        "result_rows": int(result.rows_read()),
        "result_bytes": len(body),
        "elapsed_ns": int(result.elapsed() * 1e9),
    }


def engine_error(exc: Exception) -> ClickHouseError:
    """chDB raises its own error types carrying ClickHouse's text."""
    return exc if isinstance(exc, ClickHouseError) else ClickHouseError.from_engine_message(str(exc))


class ChdbHandle:
    """One chDB connection and its session (current database); one statement at a time."""

    def __init__(self, path: str, settings: tuple[tuple[str, str], ...]) -> None:
        import chdb

        if any(c in path for c in "?&#"):
            raise ClickHouseError(36, f"chDB data directory {path!r} may not contain ?, & or #")
        for name, value in settings:  # the connection string has no escaping: plain values only
            if not (_NAME.fullmatch(name) and _VALUE.fullmatch(value)):
                raise ClickHouseError(36, f"Setting {name} has a value that cannot be passed to the engine")
        self._dsn = path + ("?" + "&".join(f"{k}={v}" for k, v in settings) if settings else "")
        self._connect = chdb.connect
        self.conn = self._open()
        self.lock = threading.Lock()
        self._db: str | None = None

    def _open(self) -> Any:
        try:
            return self._connect(self._dsn)
        except Exception as exc:
            raise engine_error(exc) from exc

    def run(self, sql: str, fmt: str, params: Mapping[str, str], database: str | None) -> Output:
        with self.lock:
            try:
                target = database or "default"
                if target != self._db:
                    self.conn.query(f"USE {quote_identifier(target)}", "TabSeparated")
                    self._db = target
                result = self.conn.query(sql, fmt, params=dict(params))
            except Exception as exc:
                # chDB keeps the output of the statements that ran before the one that failed and
                # prepends it to the next result on this connection: never reuse it after an error.
                self.conn.close()
                self.conn = self._open()
                self._db = None
                raise engine_error(exc) from exc
            body = result.bytes() or b""
            return Output(body, chdb_summary(result, body))

    def close(self) -> None:
        with self.lock:
            self.conn.close()


# What ``readonly=1`` does not stop on chDB (found by tests/clickhouse_http/test_adversarial.py):
# chDB is clickhouse-local, whose ``default`` user holds every grant, so a read-only session still
# runs ``KILL QUERY`` (the collector's own inserts run as that user), ``SYSTEM STOP MERGES`` and
# similar, ``BACKUP ... TO Memory()``; it runs ``INTO OUTFILE`` in-process as a client would (it
# writes the file); its scalar ``file()`` reads any path, ``DESCRIBE`` of a table function reads the
# file for schema inference, and chDB's ``python()`` table function reads objects of the host
# process. So the chDB engine admits only one statement whose first word is a read, and refuses
# these calls, before its session sees the text: a check of its own, independent of ``guard``
# (it shares only the exact lexer).
_CHDB_READS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})
_CHDB_REFUSED_CALLS = frozenset({"file", "python", "pythontablefunction"})


def chdb_one_statement(sql: str) -> list[Token]:
    """The tokens of ``sql``; refuse a second statement (chDB runs every statement of a text)."""
    toks = list(tokens(sql))
    seen_semicolon = False
    for tok in toks:
        if tok.kind == "semicolon":
            seen_semicolon = True
        elif seen_semicolon:
            raise ClickHouseError(62, "Multi-statements are not allowed: refused by the engine")
    return toks


def chdb_local_gaps(sql: str) -> None:
    """Refuse what a read-only chDB session would still do (see above)."""
    toks = chdb_one_statement(sql)
    first = next((t.text.upper() for t in toks if t.kind != "symbol" or t.text != "("), "")
    if first not in _CHDB_READS:
        raise ClickHouseError(164, f"Only reads run on the read-only engine, got {first or 'nothing'}")
    for i, tok in enumerate(toks):
        nxt = toks[i + 1].text if i + 1 < len(toks) else ""
        name = tok.text.strip("`\"").lower() if tok.kind in ("word", "quoted") else ""
        if tok.kind == "word" and tok.text.upper() == "OUTFILE":
            raise ClickHouseError(164, "INTO OUTFILE writes a file on the collector's host: refused by the engine")
        if nxt == "(" and name and (name in _CHDB_REFUSED_CALLS or
                                    (first in ("DESCRIBE", "DESC") and name not in ("describe", "desc", "table"))):
            raise ClickHouseError(497, f"'{name}(' reads outside the database in chDB's local mode: refused by the engine")


class ChdbEngine:
    """The embedded store, read-only: every handle is opened with ``readonly=1`` last."""

    MAX_HANDLES = 8

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(path)
        self._handles: OrderedDict[tuple[tuple[str, str], ...], ChdbHandle] = OrderedDict()
        self._lock = threading.Lock()
        self._check = self._handle({})
        row = self._check.run("SELECT version(), timezone()", "TabSeparated", {}, None).body
        self.version, self.timezone = row.decode().rstrip("\n").split("\t")

    def _handle(self, settings: Mapping[str, str]) -> ChdbHandle:
        key = (*((k, v) for k, v in settings.items() if k != "readonly"), READ_ONLY)
        with self._lock:  # opening a chDB connection takes well under a millisecond
            handle = self._handles.get(key)
            if handle is not None:
                self._handles.move_to_end(key)
                return handle
            handle = ChdbHandle(self.path, key)
            self._handles[key] = handle
            evicted = []
            while len(self._handles) > self.MAX_HANDLES:
                evicted.append(self._handles.popitem(last=False)[1])
        for old in evicted:  # outside the lock: close() waits for a statement still running on it
            if old is not self._check:
                old.close()
        return handle

    def query(self, sql: str, fmt: str, params: Mapping[str, str], database: str | None,
              settings: Mapping[str, str] | None = None) -> Output:
        chdb_local_gaps(sql)
        return self._handle(settings or {}).run(sql, fmt, params, database)

    def explain_ast(self, sql: str, params: Mapping[str, str], database: str | None) -> str:
        chdb_one_statement(sql)  # EXPLAIN AST only parses, but chDB would run a second statement
        return self._check.run("EXPLAIN AST " + sql, "TabSeparatedRaw", params, database).body.decode()

    def function_names(self) -> tuple[set[str], set[str]]:
        return _function_names(lambda sql: self._check.run(sql, "TabSeparatedRaw", {}, None).body)

    def close(self) -> None:
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
        for handle in {id(h): h for h in [*handles, self._check]}.values():
            handle.close()


def _function_names(run: Callable[[str], bytes]) -> tuple[set[str], set[str]]:
    tfs = run("SELECT name FROM system.table_functions")
    fns = run("SELECT name FROM system.functions")
    return set(tfs.decode().split()), set(fns.decode().split())


class HttpEngine:
    """A ClickHouse server's HTTP interface (the production store), read-only per request."""

    def __init__(self, url: str, user: str | None = None, password: str | None = None,
                 timeout_s: float = 60.0) -> None:
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

    def post(self, params: Mapping[str, str], body: bytes) -> Output:
        """One request to the server; its errors become ``ClickHouseError`` with the server's code."""
        try:
            resp = self._pool.urlopen("POST", self._base + "?" + urlencode(list(params.items())), body=body,
                                      headers=self._headers, preload_content=True)
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
        url_params = {k: v for k, v in (settings or {}).items() if k != "readonly"}
        url_params["default_format"] = fmt
        if database:
            url_params["database"] = database
        url_params.update({f"param_{k}": v for k, v in params.items()})
        url_params["readonly"] = READ_ONLY[1]  # last: the server applies it before the statement is parsed
        return self.post(url_params, sql.encode())

    def explain_ast(self, sql: str, params: Mapping[str, str], database: str | None) -> str:
        return self.query("EXPLAIN AST " + sql, "TabSeparatedRaw", params, database).body.decode()

    def function_names(self) -> tuple[set[str], set[str]]:
        return _function_names(lambda sql: self.query(sql, "TabSeparatedRaw", {}, None).body)

    def close(self) -> None:
        self._pool.clear()
