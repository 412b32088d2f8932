"""The write mode of the ClickHouse HTTP protocol, for the test stand-in only.

The collector's endpoint (``collector/sqlendpoint``) is read-only and has no code path that
writes. The stand-in for a ClickHouse server (``clickhouse_standin.py``) must accept what
clickhouse-connect sends a real server: DDL, ``INSERT ... FORMAT Native`` with a (compressed)
data body, settings as URL parameters. This module adds exactly that on top of the same protocol
code, on a writable chDB connection of the stand-in's own directory. A request that carries
``readonly`` (as the collector's read-only ``HttpEngine`` sends) runs on a read-only chDB handle
with its settings in the connection string, as a server would apply them before the statement.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from streamtriage.collector.sqlendpoint import ClickHouseError, ClickHouseHTTP, HttpQuery, Output
from streamtriage.collector.sqlendpoint.engines import (
    ChdbHandle,
    chdb_summary,
    engine_error,
    quote_identifier,
)
from streamtriage.collector.sqlendpoint.guard import first_keyword, single_statement
from streamtriage.collector.sqlendpoint.lexer import tokens

_READ_KEYWORDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def setting_literal(value: str) -> str:
    """A setting value as SQL: numbers as they are, anything else as a quoted string."""
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def split_insert_data(text: str) -> tuple[str, str | None, int | None]:
    """Split ``INSERT ... FORMAT <fmt><data>`` into (statement, format, data offset).

    ``text`` is the request decoded as latin-1 so offsets equal byte offsets. As in ClickHouse,
    the data starts after the first newline following the format name, or after the whitespace
    when there is no newline. Returns (text, None, None) when the statement has no FORMAT clause.
    The lexer is lazy, so it stops at the format name before the binary data.
    """
    depth = 0
    it = tokens(text)
    for tok in it:
        if tok.kind == "symbol" and tok.text == "(":
            depth += 1
        elif tok.kind == "symbol" and tok.text == ")":
            depth -= 1
        elif tok.kind == "word" and depth == 0 and tok.text.upper() in ("SELECT", "WITH", "VALUES"):
            return text, None, None
        elif tok.kind == "word" and depth == 0 and tok.text.upper() == "FORMAT":
            name = next(it, None)
            if name is None or name.kind not in ("word", "quoted"):
                raise ClickHouseError(62, "Expected a format name after FORMAT")
            i = name.end
            n = len(text)
            while i < n and text[i] in " \t\r\n\f\v":
                if text[i] == "\n":
                    i += 1
                    break
                i += 1
            return text[: tok.start], name.text.strip("`\""), i
    return text, None, None


def format_clause(sql: str) -> str | None:
    """The name after a top-level trailing ``FORMAT`` keyword, if any."""
    depth = 0
    toks = list(tokens(sql))
    found: str | None = None
    for i, tok in enumerate(toks):
        if tok.kind == "symbol" and tok.text == "(":
            depth += 1
        elif tok.kind == "symbol" and tok.text == ")":
            depth -= 1
        elif depth == 0 and tok.kind == "word" and tok.text.upper() == "FORMAT" and i + 1 < len(toks):
            found = toks[i + 1].text.strip("`\"")
    return found


class WritableChdbEngine:
    """A chDB directory with writes: one writable connection, settings applied with SET per call."""

    def __init__(self, path: str) -> None:
        import chdb

        self.path = os.path.realpath(path)
        self._conn = chdb.connect(self.path)
        self._lock = threading.Lock()
        self._db: str | None = None
        self._read_only: dict[tuple[tuple[str, str], ...], ChdbHandle] = {}
        row = self._conn.query("SELECT version(), timezone()", "TabSeparated").bytes().decode()
        self.version, self.timezone = row.rstrip("\n").split("\t")

    def _use(self, database: str | None) -> None:
        target = database or "default"
        if target != self._db:
            self._conn.query(f"USE {quote_identifier(target)}", "TabSeparated")
            self._db = target

    def _with_settings(self, settings: Mapping[str, str] | None, fn: Callable[[], Any]) -> Any:
        applied: list[str] = []
        try:
            for name, value in (settings or {}).items():
                if not _IDENT_RE.match(name):
                    raise ClickHouseError(115, f"Invalid setting name {name!r}")
                self._conn.query(f"SET {name} = {setting_literal(value)}", "TabSeparated")
                applied.append(name)
            return fn()
        finally:
            for name in applied:
                self._conn.query(f"SET {name} = DEFAULT", "TabSeparated")

    def query(self, sql: str, fmt: str, params: Mapping[str, str], database: str | None,
              settings: Mapping[str, str] | None = None) -> Output:
        if settings and "readonly" in settings:
            key = tuple((k, v) for k, v in settings.items() if k != "readonly") + (("readonly", settings["readonly"]),)
            handle = self._read_only.get(key)
            if handle is None:
                handle = self._read_only[key] = ChdbHandle(self.path, key)
            return handle.run(sql, fmt, params, database)
        with self._lock:
            try:
                self._use(database)
                result = self._with_settings(settings, lambda: self._conn.query(sql, fmt, params=dict(params)))
            except Exception as exc:
                raise engine_error(exc) from exc
            body = result.bytes() or b""
            return Output(body, chdb_summary(result, body))

    def insert(self, statement: str, fmt: str, data: bytes, database: str | None,
               settings: Mapping[str, str] | None = None) -> Output:
        def call() -> Any:
            with self._conn.send_insert(statement, fmt) as inserter:
                if data:
                    inserter.append(data)
                return inserter.finish()

        with self._lock:
            try:
                self._use(database)
                res = self._with_settings(settings, call)
            except Exception as exc:
                raise engine_error(exc) from exc
        return Output(b"", {"written_rows": int(getattr(res, "rows_written", 0) or 0),
                            "written_bytes": int(getattr(res, "bytes_written", 0) or 0)})

    def explain_ast(self, sql: str, params: Mapping[str, str], database: str | None) -> str:
        return self.query("EXPLAIN AST " + sql, "TabSeparatedRaw", params, database).body.decode()

    def function_names(self) -> tuple[set[str], set[str]]:
        tfs = self.query("SELECT name FROM system.table_functions", "TabSeparatedRaw", {}, None).body
        fns = self.query("SELECT name FROM system.functions", "TabSeparatedRaw", {}, None).body
        return set(tfs.decode().split()), set(fns.decode().split())

    def close(self) -> None:
        for handle in self._read_only.values():
            handle.close()
        with self._lock:
            self._conn.close()


class WritableClickHouseHTTP(ClickHouseHTTP):
    """Every statement runs, INSERT data bodies included (up to 512 MiB of data)."""

    max_body_bytes = 512 << 20
    engine: WritableChdbEngine

    def run(self, req: HttpQuery) -> tuple[str | None, Output]:
        text = req.text.decode("latin-1")
        database = req.database or self.database
        settings = dict(req.settings)
        keyword = first_keyword(text)
        if keyword == "INSERT":
            statement, fmt, offset = split_insert_data(text)
            if fmt is not None and offset is not None:
                data = req.text[offset:]
                return None, self.engine.insert(statement.encode("latin-1").decode("utf-8"), fmt, data,
                                                database, settings)
        sql = single_statement(req.text.decode("utf-8"))
        fmt = req.default_format if keyword in _READ_KEYWORDS else None
        try:
            clause = format_clause(sql) if fmt else None
        except ClickHouseError:
            clause = None
        output = self.engine.query(sql, req.default_format, req.params, database, settings)
        return (clause or fmt), output
