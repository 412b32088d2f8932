"""Fixtures for the ClickHouse HTTP endpoint tests: the endpoint runs in-process on the session's
chDB directory (``chdb_path``), on a database of its own filled through the store client."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest

from streamtriage.collector.sqlendpoint import (
    ChdbEngine,
    ClickHouseHTTP,
    Credentials,
    Limits,
    start_server,
)

SAMPLE_DDL = """
CREATE TABLE {db}.sample (
    id UInt64, delta Int64, ratio Float64, name String, model LowCardinality(String),
    ts DateTime64(9, 'UTC'), day Date, attrs Map(LowCardinality(String), String),
    tags Array(String), maybe Nullable(Int32)
) ENGINE = MergeTree ORDER BY id
"""


def sample_rows(n: int = 50) -> list[list]:
    base = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.timezone.utc)
    return [[i, -i * 7, i / 8, f"name-{i}", f"gpt-{i % 3}", base + dt.timedelta(seconds=i, microseconds=i),
             dt.date(2026, 11, 1 + i % 20), {"k": str(i), "model": f"gpt-{i % 3}"}, [f"t{j}" for j in range(i % 4)],
             None if i % 5 == 0 else i] for i in range(n)]


@pytest.fixture(scope="session")
def store_db(chdb_path: Path) -> tuple[object, str]:
    """(store client on the embedded engine, database) with the ``sample`` table filled."""
    db = "ch_http_" + uuid.uuid4().hex[:8]
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    client.command(f"CREATE DATABASE {db}")
    client.command(SAMPLE_DDL.format(db=db))
    client.insert(f"{db}.sample", sample_rows(), column_names=[
        "id", "delta", "ratio", "name", "model", "ts", "day", "attrs", "tags", "maybe"])
    client.database = db
    return client, db


@pytest.fixture(scope="session")
def engine(chdb_path: Path) -> Iterator[ChdbEngine]:
    eng = ChdbEngine(str(chdb_path))
    yield eng
    eng.close()


def serve(engine: ChdbEngine, db: str, **kwargs) -> Endpoint:
    core = ClickHouseHTTP(engine, database=db, **kwargs)
    return Endpoint(core, start_server(core))


class Endpoint:
    def __init__(self, core: ClickHouseHTTP, running) -> None:
        self.core = core
        self.running = running
        self.port = running.port
        self.url = f"http://127.0.0.1:{running.port}"

    def stop(self) -> None:
        self.running.stop()


@pytest.fixture(scope="session")
def endpoint(engine: ChdbEngine, store_db) -> Iterator[Endpoint]:
    """The read-only endpoint with default limits and no credentials."""
    ep = serve(engine, store_db[1])
    yield ep
    ep.stop()


@pytest.fixture
def make_endpoint(engine: ChdbEngine, store_db):
    """Factory for endpoints with other limits or credentials; all stopped after the test."""
    started: list[Endpoint] = []

    def make(limits: Limits | None = None, credentials: Credentials | None = None) -> Endpoint:
        ep = serve(engine, store_db[1], limits=limits, credentials=credentials)
        started.append(ep)
        return ep

    yield make
    for ep in started:
        ep.stop()
