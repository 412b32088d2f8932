"""The test stand-in speaks ClickHouse's HTTP interface well enough for clickhouse-connect's HTTP
client: DDL, compressed Native inserts, typed reads, errors, and a restart on the same port that
keeps the data (what the collector's store-down tests rely on)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from tests.support.clickhouse_standin import ClickHouseStandin

COLUMNS = ["Timestamp", "TraceId", "SpanAttributes", "Duration", "Names"]


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory):
    with ClickHouseStandin(tmp_path_factory.mktemp("standin") / "data") as ch:
        yield ch


def _rows(n: int, offset: int = 0) -> list[list]:
    base = dt.datetime(2026, 11, 21, 12, 0, 0)
    return [[base + dt.timedelta(milliseconds=i), f"{i + offset:032x}", {"gen_ai.request.model": f"m{i % 3}"},
             (i + offset) * 1000, ["a", "b"][: i % 3]] for i in range(n)]


@pytest.mark.parametrize("compress", ["lz4", "zstd", "gzip", False])
def test_insert_and_read_back_with_each_compression(standin: ClickHouseStandin, compress) -> None:
    db = f"s_{compress or 'none'}"
    client = clickhouse_connect.get_client(host="127.0.0.1", port=standin.port, compress=compress)
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(
        f"CREATE TABLE {db}.spans (Timestamp DateTime64(9), TraceId String, "
        "SpanAttributes Map(LowCardinality(String), String), Duration UInt64, Names Array(String)) "
        "ENGINE = MergeTree ORDER BY Timestamp"
    )
    # lz4/zstd: enough rows for several Native blocks, each compressed as its own frame by the client
    n = 40_000 if compress in ("lz4", "zstd") else 2_000
    summary = client.insert(f"{db}.spans", _rows(n), column_names=COLUMNS)
    assert summary.written_rows == n
    result = client.query(f"SELECT count(), sum(Duration), uniqExact(SpanAttributes['gen_ai.request.model']) FROM {db}.spans")
    assert result.result_rows == [(n, sum(i * 1000 for i in range(n)), 3)]
    first = client.query(f"SELECT TraceId, SpanAttributes, Names FROM {db}.spans ORDER BY Duration LIMIT 2").result_rows
    assert first == [(f"{0:032x}", {"gen_ai.request.model": "m0"}, []), (f"{1:032x}", {"gen_ai.request.model": "m1"}, ["a"])]


def test_bound_parameters_and_database_param(standin: ClickHouseStandin) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=standin.port)
    client.command("CREATE DATABASE IF NOT EXISTS s_params")
    client.command("CREATE TABLE IF NOT EXISTS s_params.t (k String, v UInt32) ENGINE = MergeTree ORDER BY k")
    client.insert("s_params.t", [["a", 1], ["b", 2], ["c", 3]], column_names=["k", "v"])
    scoped = clickhouse_connect.get_client(host="127.0.0.1", port=standin.port, database="s_params")
    rows = scoped.query("SELECT k FROM t WHERE v >= {low:UInt32} ORDER BY k", parameters={"low": 2}).result_rows
    assert rows == [("b",), ("c",)]


def test_engine_errors_come_back_as_clickhouse_errors(standin: ClickHouseStandin) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=standin.port)
    with pytest.raises(DatabaseError) as info:
        client.query("SELECT * FROM no_such_table_here")
    assert "UNKNOWN_TABLE" in str(info.value) and "Code: 60" in str(info.value)


def test_restart_on_same_port_keeps_data(tmp_path: Path) -> None:
    with ClickHouseStandin(tmp_path / "data") as ch:
        port = ch.port
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        client.command("CREATE TABLE keep (a UInt8) ENGINE = MergeTree ORDER BY a")
        client.insert("keep", [[1], [2]], column_names=["a"])
        ch.stop()
        assert not ch.ping()
        with pytest.raises(OperationalError):  # connection refused, not a server answer
            client.query("SELECT 1")
        ch.start()
        assert ch.port == port
        assert client.query("SELECT sum(a) FROM keep").result_rows == [(3,)]


@pytest.mark.parametrize("encoding", ["lz4", "zstd", "gzip", "deflate"])
def test_request_bodies_of_concatenated_frames_decode_whole(encoding: str) -> None:
    import gzip
    import zlib

    import lz4.frame

    from streamtriage.collector.sqlendpoint.codecs import decode_body
    from streamtriage.collector.sqlendpoint.codecs import zstd_module as _zstd

    compress = {"lz4": lz4.frame.compress, "zstd": _zstd().compress, "gzip": gzip.compress,
                "deflate": zlib.compress}[encoding]
    parts = [bytes([i]) * (1000 + i) for i in range(5)]
    assert decode_body(b"".join(compress(p) for p in parts), encoding) == b"".join(parts)


def test_standin_with_credentials(tmp_path: Path) -> None:
    with ClickHouseStandin(tmp_path / "data", user="writer", password="pw") as ch:
        assert ch.url == f"http://writer:pw@127.0.0.1:{ch.port}"
        client = clickhouse_connect.get_client(host="127.0.0.1", port=ch.port, username="writer", password="pw")
        assert client.command("SELECT 1") == 1
        with pytest.raises(Exception) as info:
            clickhouse_connect.get_client(host="127.0.0.1", port=ch.port, username="writer", password="nope")
        assert "516" in str(info.value)
