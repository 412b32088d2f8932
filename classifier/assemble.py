"""Stream records from ``otel_traces``: one GROUP BY in ClickHouse, one small loop in Python.

A call is the group ``(G, K)``: a call span is keyed by its own SpanId, its event and poll spans by
their ParentSpanId, so children and call meet in one group even when the call span arrives minutes
later (until then the group has no call span: an *open* record). A poll span with no parent (an
object retrieved in another process than the one that created it) is grouped by the object id.

Everything that can be reduced in SQL is: the call span's attributes become plain columns, event
spans become folded type/status sequences and a few maxima, poll spans become short arrays sorted by
time. Python only converts types and derives what depends on "now" (``record.build_record``).
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

from .record import CALL_ATTRS, ChildPoll, EventAgg, Record, RecordSource, build_record

TRACES = "otel_traces"

_A = "SpanAttributes['{}']"
G_EXPR = "if(LlmSpan = 'poll' AND ParentSpanId = '', '', TraceId)"
K_EXPR = ("multiIf(LlmSpan = 'call', SpanId, LlmSpan = 'poll' AND ParentSpanId = '', "
          "concat('obj:', SpanAttributes['streamtriage.object.id']), ParentSpanId)")
END_NS = "(toUnixTimestamp64Nano(Timestamp) + toInt64(Duration))"
IS_CALL, IS_EV, IS_POLL = "LlmSpan = 'call'", "LlmSpan = 'event'", "LlmSpan = 'poll'"
EV_IDX = "toUInt32OrZero(SpanAttributes['streamtriage.event.index'])"
EV_CNT = "greatest(toUInt32OrZero(SpanAttributes['streamtriage.event.count']), 1)"
EV_GAP = "toFloat64OrZero(SpanAttributes['streamtriage.event.gap_ms'])"
EV_MAXGAP = "toFloat64OrZero(SpanAttributes['streamtriage.event.max_gap_ms'])"


def _select_list() -> str:
    cols = [
        f"{G_EXPR} AS g", f"{K_EXPR} AS k",
        f"countIf({IS_CALL}) AS has_call",
        f"argMinIf(TraceId, Timestamp, LlmSpan != '') AS any_trace",
        f"argMinIf(SpanId, Timestamp, LlmSpan != '') AS any_span",
        "any(ServiceName) AS service",
        "min(toUnixTimestamp64Nano(Timestamp)) AS first_ns",
        f"minIf(toUnixTimestamp64Nano(Timestamp), {IS_CALL}) AS call_start",
        f"maxIf(Duration, {IS_CALL}) AS call_dur",
    ]
    for i, (attr, _name, _kind) in enumerate(CALL_ATTRS):
        cols.append(f"anyIf({_A.format(attr)}, {IS_CALL}) AS c{i}")
    cols += [
        f"arraySort(x -> x.1, groupArrayIf(({EV_IDX}, SpanName, {_A.format('streamtriage.status')}), {IS_EV})) AS ev_seq",
        f"countIf({IS_EV}) AS ev_spans",
        f"sumIf({EV_CNT}, {IS_EV}) AS ev_count",
        f"sumIf({EV_CNT}, {IS_EV} AND endsWith(SpanName, 'delta')) AS ev_delta",
        f"maxIf(greatest({EV_GAP}, {EV_MAXGAP}), {IS_EV}) AS ev_max_gap",
        f"maxIf(greatest(if({EV_IDX} > 0, {EV_GAP}, 0.), {EV_MAXGAP}), {IS_EV}) AS ev_later_gap",
        f"sumIf({EV_CNT}, {IS_EV}) AS ev_total",
        f"maxIf({END_NS}, {IS_EV}) AS ev_last_end",
        f"argMaxIf(SpanName, {EV_IDX}, {IS_EV}) AS ev_last_type",
        f"argMaxIf(SpanName, {EV_IDX}, {IS_EV} AND {_A.format('streamtriage.terminal')} = 'true') AS ev_term_type",
        f"countIf({IS_EV} AND {_A.format('streamtriage.terminal')} = 'true') AS ev_term",
        f"argMaxIf({_A.format('streamtriage.finish_reason')}, {EV_IDX}, {IS_EV} AND {_A.format('streamtriage.finish_reason')} != '') AS ev_fr",
        f"argMaxIf({_A.format('streamtriage.error.code')}, {EV_IDX}, {IS_EV} AND {_A.format('streamtriage.error.code')} != '') AS ev_code",
        f"anyIf({_A.format('streamtriage.api')}, {IS_EV} AND {_A.format('streamtriage.api')} != '') AS ev_api",
        f"anyIf({_A.format('gen_ai.request.model')}, {IS_EV} AND {_A.format('gen_ai.request.model')} != '') AS ev_model",
        f"anyIf({_A.format('streamtriage.request.fingerprint')}, {IS_EV} AND {_A.format('streamtriage.request.fingerprint')} != '') AS ev_fp",
        "arraySort(x -> x.1, groupArrayIf((toUnixTimestamp64Nano(Timestamp), " + END_NS + ", "
        f"{_A.format('streamtriage.status')}, {_A.format('streamtriage.poll.status_since_ms')}, "
        f"toUInt32OrZero({_A.format('streamtriage.poll.attempt')}), {_A.format('streamtriage.error.code')}, "
        f"{_A.format('error.type')}), {IS_POLL})) AS polls",
        f"anyIf({_A.format('streamtriage.api')}, {IS_POLL}) AS poll_api",
        f"anyIf({_A.format('streamtriage.object.id')}, {IS_POLL}) AS poll_obj",
        f"anyIf({_A.format('gen_ai.request.model')}, {IS_POLL}) AS poll_model",
    ]
    return ",\n       ".join(cols)


SELECT_LIST = _select_list()


def records_sql(db: str, where_keys: str = "") -> str:
    """The grouping query; ``where_keys`` narrows which groups (SQL over g/k, parameters bound)."""
    return (
        f"SELECT {SELECT_LIST}\n"
        f"FROM `{db}`.{TRACES}\n"
        "WHERE Timestamp >= fromUnixTimestamp64Nano({lo:Int64}) AND LlmSpan IN ('call', 'event', 'poll')"
        f"{(' AND ' + where_keys) if where_keys else ''}\n"
        "GROUP BY g, k"
    )


def dirty_keys_clause(db: str) -> str:
    """Groups with any span that ended at or after ``{since:Int64}`` (the incremental watermark)."""
    return (
        f"(g, k) IN (SELECT {G_EXPR}, {K_EXPR} FROM `{db}`.{TRACES} "
        "WHERE Timestamp >= fromUnixTimestamp64Nano({lo:Int64}) AND LlmSpan IN ('call', 'event', 'poll') "
        f"AND {END_NS} >= {{since:Int64}})"
    )


def key_list_clause() -> str:
    """Groups named in ``{keys:Array(String)}`` as ``g/k`` (the open-call sweep)."""
    return "concat(g, '/', k) IN {keys:Array(String)}"


def open_keys_sql(db: str) -> str:
    """Groups with children but no call span, since ``{lo:Int64}`` (rebuilds the open set on start)."""
    return (
        f"SELECT {G_EXPR} AS g, {K_EXPR} AS k FROM `{db}`.{TRACES} "
        "WHERE Timestamp >= fromUnixTimestamp64Nano({lo:Int64}) AND LlmSpan IN ('call', 'event', 'poll') "
        "GROUP BY g, k HAVING countIf(LlmSpan = 'call') = 0"
    )


def _polls(raw: Sequence[tuple], api: str, obj: str, model: str) -> list[ChildPoll]:
    out = []
    for start, end, status, since, attempt, code, err in raw:
        try:
            since_ms = float(since) if since else None
        except ValueError:
            since_ms = None
        out.append(ChildPoll(status=status, attempt=int(attempt), status_since_ms=since_ms,
                             start_ns=int(start), end_ns=int(end), error_code=code, api=api,
                             object_id=obj, model=model, read_failed=bool(err)))
    return out


def _fold(seq: Sequence[str]) -> list[str]:
    out: list[str] = []
    for t in seq:
        if t and (not out or out[-1] != t):
            out.append(t)
    return out


def row_to_source(row: dict[str, Any]) -> RecordSource:
    """One grouped row -> ``RecordSource`` (no derived facts yet)."""
    has_call = row["has_call"] > 0
    g, k = row["g"], row["k"]
    trace_id = g or row["any_trace"]
    span_id = k  # an object-keyed group ("obj:<id>") keeps that key as its label's SpanId
    attrs = None
    if has_call:
        attrs = {attr: row[f"c{i}"] for i, (attr, _n, _k) in enumerate(CALL_ATTRS)}
    agg = None
    if row["ev_spans"]:
        seq = row["ev_seq"]
        agg = EventAgg(
            types=_fold([x[1] for x in seq]), statuses=_fold([x[2] for x in seq]),
            count=int(row["ev_count"]), delta_count=int(row["ev_delta"]),
            max_gap_ms=float(row["ev_max_gap"]),
            later_gap_ms=float(row["ev_later_gap"]) if row["ev_total"] > 1 else None,
            last_end_ns=int(row["ev_last_end"]), last_type=row["ev_last_type"],
            terminal_type=row["ev_term_type"] if row["ev_term"] else "", terminal=row["ev_term"] > 0,
            finish_reason=row["ev_fr"], error_code=row["ev_code"], api=row["ev_api"],
            model=row["ev_model"], fingerprint=row["ev_fp"],
        )
    polls = _polls(row["polls"], row["poll_api"], row["poll_obj"], row["poll_model"]) if row["polls"] else []
    return RecordSource(
        trace_id=trace_id, span_id=span_id, service=row["service"],
        start_ns=int(row["call_start"] if has_call else row["first_ns"]),
        duration_ns=int(row["call_dur"]) if has_call else 0,
        call_attrs=attrs, agg=agg, polls=polls,
    )


def iter_records(client: Any, db: str, lo_ns: int, now_ns: int, where_keys: str = "",
                 params: dict[str, Any] | None = None, block_rows: int = 65_536) -> Iterator[Record]:
    """Stream records from the store (``client`` is a clickhouse-connect client)."""
    p = {"lo": int(lo_ns)}
    p.update(params or {})
    sql = records_sql(db, where_keys)
    with client.query_row_block_stream(sql, parameters=p, settings={"max_block_size": block_rows}) as stream:
        names = stream.source.column_names
        for block in stream:
            for raw in block:
                yield build_record(row_to_source(dict(zip(names, raw))), now_ns)
