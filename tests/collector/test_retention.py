"""An acknowledged span is a span that stays: spans the store would drop again (no start time,
older than the retention, starting on/after 2106) are refused through OTLP partial success and
counted in /metrics, and the TTL expression itself no longer wraps past 2106."""
from __future__ import annotations

import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import clickhouse_connect
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from streamtriage.collector.migrate import apply_migrations
from streamtriage.collector.otlp_decode import PROTOBUF
from streamtriage.collector.span_rows import DATETIME_END_NS, RETENTION_MARGIN_S, convert, retention_floor_ns
from tests.collector.conftest import stored_span_ids
from tests.collector.otlp_payloads import make_request, make_span
from tests.support.collector_proc import CollectorProcess

DAY_NS = 86400 * 1_000_000_000
Y2107_NS = int(datetime(2107, 1, 1, tzinfo=timezone.utc).timestamp()) * 1_000_000_000
Y2100_NS = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp()) * 1_000_000_000


def _span_at(trace: bytes, start_ns: int):
    span = make_span(trace)
    span.start_time_unix_nano = start_ns
    span.end_time_unix_nano = start_ns + 1_000_000
    for ev in span.events:
        ev.time_unix_nano = start_ns + 10
    return span


def _metric(svc: CollectorProcess, name: str) -> float:
    _, _, body = svc.request("GET", "/metrics")
    m = re.search(rf"^{name} ([0-9.e+]+)$", body.decode(), re.M)
    assert m, body.decode()[:500]
    return float(m.group(1))


def test_spans_the_store_would_drop_are_rejected_not_acknowledged(collector: CollectorProcess) -> None:
    trace = os.urandom(16)
    now = time.time_ns()
    good = [_span_at(trace, now), _span_at(trace, now - 29 * DAY_NS), _span_at(trace, Y2100_NS)]
    bad = [_span_at(trace, 0), _span_at(trace, now - 31 * DAY_NS), _span_at(trace, Y2107_NS),
           _span_at(trace, DATETIME_END_NS)]
    before = _metric(collector, "streamtriage_spans_rejected_total")
    status, _, resp = collector.request("POST", "/v1/traces", make_request(good + bad).SerializeToString(),
                                        {"Content-Type": PROTOBUF})
    assert status == 200
    partial = ExportTraceServiceResponse.FromString(resp).partial_success
    assert partial.rejected_spans == len(bad)
    assert "unset (0)" in partial.error_message and "older than the store's retention" in partial.error_message
    assert "2106-02-07" in partial.error_message
    assert _metric(collector, "streamtriage_spans_rejected_total") == before + len(bad)
    expected = {s.span_id.hex() for s in good}
    assert stored_span_ids(collector, trace.hex()) == expected
    time.sleep(2)  # the acknowledged ones stay (the TTL no longer wraps: see the test below)
    assert stored_span_ids(collector, trace.hex()) == expected


def test_retention_floor_keeps_a_margin() -> None:
    now = time.time_ns()
    floor = retention_floor_ns(30, now)
    assert floor == now - (30 * 86400 - RETENTION_MARGIN_S) * 1_000_000_000
    trace = os.urandom(16)
    inside = _span_at(trace, floor + 1_000_000_000)
    edge = _span_at(trace, floor - 1)
    out = convert(make_request([inside, edge]), floor)
    assert (len(out.rows), out.rejected) == (1, 1)
    assert convert(make_request([_span_at(trace, 0)])).rejected == 1  # default: never the epoch


@pytest.fixture
def client(chdb_path: Path, fresh_database: str):
    c = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    c.command(f"CREATE DATABASE IF NOT EXISTS {fresh_database}")
    yield c
    c.command(f"DROP DATABASE IF EXISTS {fresh_database}")


def test_ttl_expressions_do_not_wrap_past_2106(client, fresh_database: str) -> None:
    apply_migrations(client, fresh_database, 30, 90)
    ddl = dict(client.query("SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
                            parameters={"db": fresh_database}).result_rows)
    assert "TTL Timestamp + toIntervalDay(30)" in ddl["otel_traces"]
    assert "TTL Timestamp + toIntervalDay(90)" in ddl["streamtriage_labels"]
    assert "toDateTime(Timestamp) +" not in ddl["otel_traces"] + ddl["streamtriage_labels"]
    # A row dated 2107 (inserted directly, past every ingest check) is not expired by the TTL.
    client.command(f"INSERT INTO {fresh_database}.otel_traces (Timestamp, TraceId, SpanId) VALUES "
                   f"(fromUnixTimestamp64Nano({Y2107_NS}), 'a', 'b'), (now64(9), 'a', 'c')")
    client.command(f"OPTIMIZE TABLE {fresh_database}.otel_traces FINAL")
    assert client.command(f"SELECT count() FROM {fresh_database}.otel_traces") == 2
    # Re-applying (a restart) keeps the non-wrapping expression; changing the retention too.
    apply_migrations(client, fresh_database, 7, 14)
    ddl = client.command(f"SELECT create_table_query FROM system.tables WHERE database = '{fresh_database}' "
                         "AND name = 'otel_traces'")
    assert "TTL Timestamp + toIntervalDay(7)" in ddl
