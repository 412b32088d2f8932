"""Each derived fact of the span contract has a SQL form and a Python form; on the same records,
stored by the collector's own schema in chDB, both must give the same answer (and each fact must be
both true and false somewhere in the records, so agreement is not vacuous)."""
from __future__ import annotations

import time
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from streamtriage.contract import facts
from tests.dashboards.schema import apply_schema

S = 1_000_000_000

T0 = (time.time_ns() // S - 3600) * S  # an hour ago, inside the tables' TTL

# (span id, attributes) of call spans: every branch of truncated / incomplete / terminal seen.
CALLS: list[tuple[str, dict[str, str]]] = [
    ("c-ok", {"streamtriage.call.mode": "stream", "streamtriage.terminal.seen": "true",
              "streamtriage.outcome": "completed", "gen_ai.response.finish_reasons": '["stop"]'}),
    ("c-length", {"streamtriage.call.mode": "stream", "streamtriage.terminal.seen": "true",
                  "streamtriage.outcome": "completed", "gen_ai.response.finish_reasons": '["length"]'}),
    ("c-length-spaced", {"streamtriage.call.mode": "request", "gen_ai.response.finish_reasons": '[ "length", "stop"]'}),
    ("c-length-second", {"streamtriage.call.mode": "request", "gen_ai.response.finish_reasons": '["stop","length"]'}),
    ("c-length-empty-first", {"streamtriage.call.mode": "request", "gen_ai.response.finish_reasons": '["","length"]'}),
    ("c-not-json", {"streamtriage.call.mode": "request", "gen_ai.response.finish_reasons": "length"}),
    ("c-budget", {"streamtriage.call.mode": "stream", "streamtriage.terminal.seen": "true",
                  "streamtriage.outcome": "completed", "streamtriage.incomplete_reason": "max_output_tokens"}),
    ("c-filter", {"streamtriage.call.mode": "stream", "streamtriage.terminal.seen": "true",
                  "streamtriage.incomplete_reason": "content_filter"}),
    ("c-cut", {"streamtriage.call.mode": "stream", "streamtriage.terminal.seen": "false",
               "streamtriage.outcome": "transport_error"}),
    ("c-no-terminal", {"streamtriage.call.mode": "stream", "streamtriage.outcome": "no_terminal"}),
    ("c-no-outcome", {"streamtriage.call.mode": "stream"}),
    ("c-cancelled", {"streamtriage.call.mode": "stream", "streamtriage.terminal.seen": "false",
                     "streamtriage.outcome": "cancelled"}),
    ("c-app-error", {"streamtriage.call.mode": "stream", "streamtriage.outcome": "app_error"}),
    ("c-http-error", {"streamtriage.call.mode": "stream", "streamtriage.outcome": "http_error"}),
    ("c-request-no-terminal", {"streamtriage.call.mode": "request", "streamtriage.outcome": "transport_error"}),
    ("c-seen-upper", {"streamtriage.call.mode": "stream", "streamtriage.terminal.seen": "True",
                      "streamtriage.outcome": "completed"}),
]

# (object id, [(seconds after T0, status, first_seen_ms, error.type)]) of polled objects.
OBJECTS: list[tuple[str, list[tuple[float, str, str, str]]]] = [
    ("o-done", [(0, "queued", "0", ""), (30, "in_progress", "30000", ""), (60, "completed", "60000", "")]),
    ("o-hung-by-span", [(0, "queued", "", ""), (400, "in_progress", "", ""), (700, "in_progress", "", "")]),
    ("o-hung-by-clock", [(0, "in_progress", "650000", "")]),
    ("o-young", [(0, "queued", "1000", ""), (30, "queued", "31000", "")]),
    ("o-failed-last-read", [(0, "in_progress", "0", ""), (900, "error", "900000", "httpx.ReadTimeout")]),
    ("o-only-failed", [(0, "error", "0", "httpx.ReadTimeout"), (700, "error", "700000", "httpx.ReadTimeout")]),
    ("o-requires-action", [(0, "queued", "0", ""), (20, "requires_action", "20000", ""),
                           (620, "requires_action", "620000", "")]),
    ("o-cancelling", [(0, "cancelling", "not-a-number", ""), (601, "cancelling", "", "")]),
    ("o-unknown-last", [(0, "in_progress", "0", ""), (800, "unknown", "800000", "")]),
    ("o-expired", [(0, "in_progress", "0", ""), (900, "expired", "900000", "")]),
]
HANG_AFTER_S = 600

# trace -> span kinds in it (one call group per trace).
GROUPS: dict[str, list[str]] = {
    "g-closed": ["call", "event", "event"],
    "g-open-stream": ["event", "event"],
    "g-open-poll": ["poll"],
    "g-call-only": ["call"],
}


def _rows() -> list[list[Any]]:
    rows: list[list[Any]] = []

    def add(ts_ns: int, trace: str, span: str, attrs: dict[str, str]) -> None:
        ts = datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc)
        rows.append([ts, trace, span, attrs])

    for i, (span, attrs) in enumerate(CALLS):
        add(T0 + i * S, "calls", span, {"streamtriage.span": "call", **attrs})
    for obj, polls in OBJECTS:
        for t, status, first_seen, err in polls:
            attrs = {"streamtriage.span": "poll", "streamtriage.object.id": obj, "streamtriage.status": status}
            if first_seen:
                attrs["streamtriage.poll.first_seen_ms"] = first_seen
            if err:
                attrs["error.type"] = err
            add(T0 + int(t * S), "polls-" + obj, uuid.uuid4().hex[:16], attrs)
    for trace, kinds in GROUPS.items():
        for j, kind in enumerate(kinds):
            add(T0 + j * S, trace, f"{trace}-{j}", {"streamtriage.span": kind})
    return rows


@pytest.fixture(scope="module")
def client(chdb_path: Path) -> Any:
    import clickhouse_connect

    db = "facts_" + uuid.uuid4().hex[:10]
    admin = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    apply_schema(admin, db)
    c = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database=db)
    c.insert("otel_traces", _rows(), column_names=["Timestamp", "TraceId", "SpanId", "SpanAttributes"])
    yield c
    admin.command(f"DROP DATABASE IF EXISTS {db}")


def _query(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(sql).result_rows]


def _both_ways(pairs: dict[str, tuple[Any, Any]]) -> None:
    disagree = {k: v for k, v in pairs.items() if v[0] != v[1]}
    assert not disagree, f"SQL and Python forms disagree (sql, python): {disagree}"


@pytest.mark.parametrize("name, sql, python", [
    ("terminal_seen", facts.TERMINAL_SEEN_SQL, facts.terminal_seen),
    ("incomplete", facts.INCOMPLETE_SQL, facts.is_incomplete),
    ("truncated", facts.TRUNCATED_SQL, facts.is_truncated),
])
def test_call_span_facts_agree(client: Any, name: str, sql: str, python: Any) -> None:
    got = dict(_query(client, f"SELECT SpanId, toBool({sql}) FROM otel_traces WHERE LlmSpan = 'call' AND TraceId = 'calls'"))
    assert set(got) == {span for span, _ in CALLS}
    pairs = {span: (bool(got[span]), python({"streamtriage.span": "call", **attrs})) for span, attrs in CALLS}
    _both_ways(pairs)
    assert {v for v, _ in pairs.values()} == {True, False}, f"{name}: every record gives the same answer"


def test_truncation_reads_the_first_finish_reason_exactly() -> None:
    """The decoder used a prefix test on the JSON text; the contract's fact is the first element."""
    assert facts.first_finish_reason('[ "length"]') == "length"
    assert facts.first_finish_reason('["stop","length"]') == "stop"
    assert facts.first_finish_reason(["length"]) == "length"
    assert facts.first_finish_reason("[1]") == "" and facts.first_finish_reason("") == ""


def test_polled_object_facts_agree(client: Any) -> None:
    status_open = f"""
SELECT SpanAttributes['streamtriage.object.id'] AS object_id, {facts.OBJECT_STATUS_SQL} AS status,
       {facts.OBJECT_OPEN_S_SQL} AS open_for_s
FROM otel_traces WHERE LlmSpan = 'poll' AND startsWith(TraceId, 'polls-') GROUP BY object_id"""
    rows = _query(client, f"SELECT object_id, status, open_for_s, toBool("
                          f"{facts.open_hang_sql('status', 'open_for_s', str(HANG_AFTER_S))}) FROM ({status_open})")
    got = {r[0]: r[1:] for r in rows}
    assert set(got) == {obj for obj, _ in OBJECTS}
    for obj, polls in OBJECTS:
        reads = [facts.PollRead(T0 + int(t * S), status, first_seen, err) for t, status, first_seen, err in polls]
        python = (facts.object_status(reads), facts.object_open_s(reads), facts.is_open_hang(reads, HANG_AFTER_S))
        sql = got[obj]
        assert (sql[0], bool(sql[2])) == (python[0], python[2]), obj
        assert sql[1] == pytest.approx(python[1]), obj
    hung = {obj for obj, (_, _, h) in got.items() if h}
    assert hung == {"o-hung-by-span", "o-hung-by-clock", "o-failed-last-read", "o-requires-action", "o-cancelling",
                    "o-unknown-last"}  # an unread status says nothing: the last read one counts


def test_poll_read_from_stored_attributes() -> None:
    p = facts.PollRead.from_attrs(5, {"streamtriage.status": "queued", "streamtriage.poll.first_seen_ms": "12.5",
                                      "error.type": ""})
    assert p == facts.PollRead(5, "queued", "12.5", "") and facts.poll_read_ok(p)


def test_open_call_facts_agree(client: Any) -> None:
    rows = _query(client, f"SELECT TraceId, toBool({facts.OPEN_CALL_SQL}) FROM otel_traces "
                          f"WHERE TraceId IN {tuple(GROUPS)} GROUP BY TraceId")
    by_trace = defaultdict(list)
    for trace, kinds in GROUPS.items():
        by_trace[trace] = kinds
    pairs = {trace: (bool(is_open), facts.is_open_call(by_trace[trace])) for trace, is_open in rows}
    assert set(pairs) == set(GROUPS)
    _both_ways(pairs)
    assert {v for v, _ in pairs.values()} == {True, False}

