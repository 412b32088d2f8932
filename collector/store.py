"""The span store: one clickhouse-connect client for chDB (``chdb://DIR``) or a server (``http(s)://``).

Both go through the same ``Client`` API, so the rest of the collector never asks which it is.
A server may be down when the collector starts: ``Store`` then connects lazily (and applies the
migrations) on first use, so ingest can spool meanwhile. chDB runs one engine per process bound to
one directory: its "already in use" failures become ``StoreLocked`` with a message saying what to do.

The public interface is all other modules use (a lint test holds them to it): ``connect`` (which
migrates), ``migrate``, ``query``/``command`` (reads), ``insert_spans``/``insert_payload``,
``write_labels``, ``ping``, ``close``, and ``open_client`` for a component that wants a client of
its own (the classifier) so it never waits behind the writer or the API.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from .migrate import apply_migrations
from .settings import Settings
from .span_rows import INSERT_COLUMNS


def payload_to_rows(payload: bytes) -> list[list[Any]]:
    """Rows back from a JSONCompactEachRow payload (for a server store, inserted as Native)."""
    import json

    return json.loads(b"[" + payload + b"]") if payload.strip() else []

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from clickhouse_connect.driver.common import StreamContext
    from clickhouse_connect.driver.query import QueryResult
    from clickhouse_connect.driver.summary import QuerySummary

log = logging.getLogger("streamtriage.collector")
R = TypeVar("R")

TRACES_TABLE = "otel_traces"
LABELS_TABLE = "streamtriage_labels"


# JSONCompactEachRow insert of exporter rows whose timestamps are integer nanoseconds: ClickHouse
# reads a bare integer for DateTime64 as seconds, so the SELECT converts them.
_JSON_TYPES = ("Int64", "String", "String", "String", "String", "String", "String", "String", "Map(String, String)",
               "String", "String", "Map(String, String)", "UInt64", "String", "String", "Array(Int64)",
               "Array(String)", "Array(Map(String, String))", "Array(String)", "Array(String)", "Array(String)",
               "Array(Map(String, String))")
JSON_STRUCTURE = ", ".join(f"c{i} {t}" for i, t in enumerate(_JSON_TYPES))
_JSON_SELECT = ", ".join(
    "fromUnixTimestamp64Nano(c0)" if i == 0 else
    "arrayMap(t -> fromUnixTimestamp64Nano(t), c15)" if i == 15 else f"c{i}" for i in range(len(_JSON_TYPES)))
_COLUMNS_SQL = ", ".join(f"`{c}`" for c in INSERT_COLUMNS)


class StoreError(RuntimeError):
    """The store refused or could not be reached."""


class StoreLocked(StoreError):
    """The chDB data directory belongs to another process."""


def redact(dsn: str) -> str:
    """The DSN without its password, for logs and errors."""
    parsed = urlparse(dsn)
    if parsed.password:
        return parsed._replace(netloc=parsed.netloc.replace(":" + parsed.password + "@", ":***@")).geturl()
    return dsn


def database_for(settings: Settings) -> str:
    """The database named in an http(s) DSN path, else the ``database`` setting."""
    if not settings.is_embedded:
        path = urlparse(settings.store).path.strip("/")
        if path:
            return path
    return settings.database


class Store:
    """A (lazily) connected store plus the database the collector's tables live in."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = database_for(settings)
        self.applied_migrations: list[str] = []
        self._client: Client | None = None
        self._reader: Client | None = None
        # clickhouse-connect clients are not safe for concurrent calls: the writer inserts from one
        # thread while API handlers query from the threadpool. Reads get their own client and lock
        # so a long insert never stalls the API (several clients on one chDB path are fine).
        self._lock = threading.RLock()
        self._read_lock = threading.RLock()

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self) -> None:
        """Open the client, create the database and apply the migrations. Idempotent."""
        with self._lock:
            if self._client is not None:
                return
            client = _open_client(self.settings, self.database)
            self._client = client
            try:
                self.migrate()
            except Exception:
                self._client = None
                raise

    def migrate(self) -> list[str]:
        """Apply the migrations not applied yet (``collector/migrations``); returns their names."""
        s = self.settings
        with self._lock:
            applied = apply_migrations(self._c(), self.database, s.ttl_days, s.label_ttl_days, s.cluster)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
            self.applied_migrations += applied
        return applied

    def open_client(self) -> StoreClient:
        """A client of its own on this store, for a component that must not share the writer's or the
        API's client and lock. Lazy: the store is connected and migrated on its first use."""
        return StoreClient(self)

    def write_labels(self, rows: Sequence[Sequence[Any]], column_names: Sequence[str]) -> None:
        """Insert rows into ``streamtriage_labels`` (re-labelling writes a higher ``Version``)."""
        with self._lock:
            try:
                self._c().insert(LABELS_TABLE, rows, column_names=list(column_names), database=self.database)
            except Exception as exc:  # noqa: BLE001 - normalised for callers
                self._drop_if_remote()
                raise StoreError(f"label insert failed: {_first_line(exc)}") from exc

    def _c(self) -> Client:
        if self._client is None:
            self.connect()
        assert self._client is not None
        return self._client

    def insert_spans(self, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            try:
                self._c().insert(TRACES_TABLE, rows, column_names=list(INSERT_COLUMNS), database=self.database)
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - normalised for the writer
                self._drop_if_remote()
                raise StoreError(f"insert failed: {_first_line(exc)}") from exc

    def insert_payload(self, payload: bytes) -> None:
        """Insert a JSONCompactEachRow batch (``decode_worker.Decoded.payload``, batches joined by ``,``).

        chDB reads the lines itself (``file()`` table function; it releases the GIL while parsing), so
        the collector's Python does no per-row insert work.
        """
        if not payload:
            return
        with self._lock:
            try:
                client = self._c()
                if self.settings.is_embedded:
                    tmp_dir = self.settings.state_path / "tmp"
                    tmp_dir.mkdir(parents=True, exist_ok=True)
                    fd, path = tempfile.mkstemp(dir=tmp_dir, suffix=".json")
                    try:
                        with os.fdopen(fd, "wb") as f:
                            f.write(payload)
                        client.command(
                            f"INSERT INTO `{self.database}`.{TRACES_TABLE} ({_COLUMNS_SQL}) SELECT {_JSON_SELECT} "
                            "FROM file({path:String}, 'JSONCompactEachRow', {structure:String})",
                            parameters={"path": path, "structure": JSON_STRUCTURE})
                    finally:
                        Path(path).unlink(missing_ok=True)
                else:
                    # A server gets clickhouse-connect's own Native insert (the tested path).
                    client.insert(TRACES_TABLE, payload_to_rows(payload), column_names=list(INSERT_COLUMNS),
                                  database=self.database)
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - normalised for the writer
                self._drop_if_remote()
                raise StoreError(f"insert failed: {_first_line(exc)}") from exc

    def _r(self) -> Client:
        if self._reader is None:
            self._c()  # connects and migrates first
            self._reader = _open_client(self.settings, self.database)
        return self._reader

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT with bound parameters on the read client; rows as dicts keyed by column name."""
        with self._read_lock:
            try:
                result = self._r().query(sql, parameters=parameters or {})
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001
                if not self.settings.is_embedded:
                    self._reader = None
                    self._drop_if_remote()
                raise StoreError(f"query failed: {_first_line(exc)}") from exc
        names = result.column_names
        return [dict(zip(names, row, strict=False)) for row in result.result_rows]

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        with self._lock:
            return self._c().command(sql, parameters=parameters or {})

    def ping(self) -> bool:
        try:
            with self._read_lock:
                return self._r().command("SELECT 1") == 1
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            if not self.settings.is_embedded:
                self._reader = None
                self._drop_if_remote()
            return False

    def _drop_if_remote(self) -> None:
        # A server connection may be stale after an outage; reconnecting re-checks the schema.
        # The embedded engine cannot be reopened in-process, so it is kept.
        if not self.settings.is_embedded:
            self._client = None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        with self._read_lock:
            reader, self._reader = self._reader, None
        for each in (client, reader):
            if each is None:
                continue
            try:
                each.close()
            except Exception:  # noqa: BLE001 - closing a dead client must not mask the real error
                pass


class StoreClient:
    """A clickhouse-connect client of its own on a ``Store`` (chDB allows several clients on one
    directory in a process), opened lazily; the methods the classifier uses, typed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._client: Client | None = None

    @property
    def database(self) -> str:
        return self._store.database

    def _get(self) -> Client:
        if self._client is None:
            self._store.connect()
            self._client = _open_client(self._store.settings, self._store.database)
        return self._client

    def _using(self, call: Callable[[Client], R]) -> R:
        """Run ``call`` on the client; on a server store a failure drops it so the next call reconnects
        (the embedded engine cannot be reopened in-process, so it is kept)."""
        try:
            return call(self._get())
        except Exception:
            if not self._store.settings.is_embedded:
                self._client = None
            raise

    def query(self, sql: str, parameters: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> QueryResult:
        return self._using(lambda c: c.query(sql, parameters=parameters, settings=settings))

    def query_row_block_stream(self, sql: str, parameters: dict[str, Any] | None = None,
                               settings: dict[str, Any] | None = None) -> StreamContext:
        return self._using(lambda c: c.query_row_block_stream(sql, parameters=parameters, settings=settings))

    def insert(self, table: str, data: Sequence[Sequence[Any]], column_names: Sequence[str],
               database: str | None = None) -> QuerySummary:
        return self._using(lambda c: c.insert(table, data, column_names=column_names, database=database))

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self._using(lambda c: c.command(sql, parameters=parameters))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


def _open_client(settings: Settings, database: str) -> Client:
    import clickhouse_connect

    if settings.is_embedded:
        data_dir = settings.chdb_dir
        assert data_dir is not None
        data_dir.mkdir(parents=True, exist_ok=True)
        dsn = f"chdb://{data_dir}"
    else:
        dsn = urlparse(settings.store)._replace(path="").geturl()
    try:
        client = clickhouse_connect.get_client(dsn=dsn, connect_timeout=3, send_receive_timeout=30) \
            if not settings.is_embedded else clickhouse_connect.get_client(dsn=dsn)
        client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        client.database = database
    except Exception as exc:  # noqa: BLE001 - normalised below
        text = str(exc)
        if "already initialized" in text or "Cannot lock file" in text or "is locked" in text:
            raise StoreLocked(
                f"chDB data directory {settings.chdb_dir} is in use by another process "
                "(a running `streamtriage serve`?): talk to that service, or stop it first"
            ) from exc
        raise StoreError(f"cannot open store {redact(settings.store)}: {_first_line(exc)}") from exc
    return client
