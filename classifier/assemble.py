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

from collections.abc import Iterator, Sequence
from typing import Any

from streamtriage.contract.facts import OPEN_CALL_SQL

from .record import ChildPoll, EventAgg, Record, RecordSource, build_record

TRACES = "otel_traces"

_A = "SpanAttributes['{}']"
G_EXPR = "if(LlmSpan = 'poll' AND ParentSpanId = '', '', TraceId)"
K_EXPR = ("multiIf(LlmSpan = 'call', SpanId, LlmSpan = 'poll' AND ParentSpanId = '', "
          "concat('obj:', SpanAttributes['streamtriage.object.id']), ParentSpanId)")
END_NS = "(toUnixTimestamp64Nano(Timestamp) + toInt64(Duration))"
IS_CALL, IS_EV, IS_POLL = "LlmSpan = 'call'", "LlmSpan = 'event'", "LlmSpan = 'poll'"


def _ev(attr: str, conv: str = "") -> str:
    """An event attribute, looked up only on event rows (``if`` short-circuits the map lookup)."""
    look = _A.format(attr)
    return f"if({IS_EV}, {conv}({look}), {'0' if conv.startswith('toUInt') else ('0.' if conv else chr(39) * 2)})"


def _poll(attr: str) -> str:
    return f"if({IS_POLL}, {_A.format(attr)}, '')"


# Inner query: one row per span with the few child attributes pulled out once (event/poll rows only);
# the call span's attributes travel as the whole map (cheaper than dozens of lookups per row).
INNER = (
    f"SELECT {G_EXPR} AS g, {K_EXPR} AS k, LlmSpan AS ls, TraceId, SpanId, ServiceName, SpanName, Duration, "
    "toUnixTimestamp64Nano(Timestamp) AS ts, " + END_NS + " AS te, "
    f"if({IS_CALL}, SpanAttributes, map()) AS cattrs, "
    f"{_ev('streamtriage.event.index', 'toUInt32OrZero')} AS e_idx, "
    f"greatest({_ev('streamtriage.event.count', 'toUInt32OrZero')}, 1) AS e_cnt, "
    f"{_ev('streamtriage.event.gap_ms', 'toFloat64OrZero')} AS e_gap, "
    f"{_ev('streamtriage.event.max_gap_ms', 'toFloat64OrZero')} AS e_maxgap, "
    f"{_ev('streamtriage.status')} AS e_status, {_ev('streamtriage.finish_reason')} AS e_fr, "
    f"{_ev('streamtriage.error.code')} AS e_code, {_ev('streamtriage.terminal')} = 'true' AS e_term, "
    f"{_ev('streamtriage.api')} AS e_api, {_ev('gen_ai.request.model')} AS e_model, "
    f"{_ev('streamtriage.request.fingerprint')} AS e_fp, "
    f"{_poll('streamtriage.status')} AS p_status, {_poll('streamtriage.poll.status_since_ms')} AS p_since, "
    f"toUInt32OrZero({_poll('streamtriage.poll.attempt')}) AS p_attempt, {_poll('streamtriage.error.code')} AS p_code, "
    f"{_poll('error.type')} AS p_err, {_poll('streamtriage.api')} AS p_api, "
    f"{_poll('streamtriage.object.id')} AS p_obj, {_poll('gen_ai.request.model')} AS p_model "
    "FROM `{db}`.otel_traces "
    "WHERE Timestamp >= fromUnixTimestamp64Nano({lo:Int64}) AND LlmSpan IN ('call', 'event', 'poll')"
)

SELECT_LIST = ",\n       ".join([
    "g", "k",
    "countIf(ls = 'call') AS has_call",
    "argMin(TraceId, ts) AS any_trace",
    "any(ServiceName) AS service",
    "min(ts) AS first_ns",
    "minIf(ts, ls = 'call') AS call_start",
    "maxIf(Duration, ls = 'call') AS call_dur",
    "anyIf(cattrs, ls = 'call') AS call_attrs",
    "arraySort(x -> x.1, groupArrayIf((e_idx, SpanName, e_status), ls = 'event')) AS ev_seq",
    "countIf(ls = 'event') AS ev_spans",
    "sumIf(e_cnt, ls = 'event') AS ev_count",
    "sumIf(e_cnt, ls = 'event' AND endsWith(SpanName, 'delta')) AS ev_delta",
    "maxIf(greatest(e_gap, e_maxgap), ls = 'event') AS ev_max_gap",
    "maxIf(greatest(if(e_idx > 0, e_gap, 0.), e_maxgap), ls = 'event') AS ev_later_gap",
    "maxIf(te, ls = 'event') AS ev_last_end",
    "argMaxIf(SpanName, e_idx, ls = 'event') AS ev_last_type",
    "argMaxIf(SpanName, e_idx, ls = 'event' AND e_term) AS ev_term_type",
    "countIf(ls = 'event' AND e_term) AS ev_term",
    "argMaxIf(e_fr, e_idx, ls = 'event' AND e_fr != '') AS ev_fr",
    "argMaxIf(e_code, e_idx, ls = 'event' AND e_code != '') AS ev_code",
    "anyIf(e_api, e_api != '') AS ev_api",
    "anyIf(e_model, e_model != '') AS ev_model",
    "anyIf(e_fp, e_fp != '') AS ev_fp",
    "arraySort(x -> x.1, groupArrayIf((ts, te, p_status, p_since, p_attempt, p_code, p_err), ls = 'poll')) AS polls",
    "anyIf(p_api, ls = 'poll') AS poll_api",
    "anyIf(p_obj, ls = 'poll') AS poll_obj",
    "anyIf(p_model, ls = 'poll') AS poll_model",
])


def records_sql(db: str, where_keys: str = "", mask_sql: str | None = None) -> str:
    """The grouping query; ``where_keys`` narrows which spans/groups (over G_EXPR/K_EXPR, params bound);
    ``mask_sql`` (``Engine.rule_mask_sql``) adds each call's bitmask of rules that could match."""
    mask = f"if(LlmSpan = 'call', {mask_sql}, toUInt64(0))" if mask_sql else "toUInt64(0)"
    inner = INNER.replace("{db}", db).replace(" FROM `", f", {mask} AS cmask FROM `", 1) + (
        f" AND {where_keys}" if where_keys else "")
    return f"SELECT {SELECT_LIST},\n       maxIf(cmask, ls = 'call') AS rule_mask\nFROM ({inner})\nGROUP BY g, k"


def dirty_keys_clause(db: str) -> str:
    """Groups with any span that ended at or after ``{since:Int64}`` (the incremental watermark)."""
    return (
        f"({G_EXPR}, {K_EXPR}) IN (SELECT {G_EXPR}, {K_EXPR} FROM `{db}`.otel_traces "
        "WHERE Timestamp >= fromUnixTimestamp64Nano({lo:Int64}) AND LlmSpan IN ('call', 'event', 'poll') "
        f"AND {END_NS} >= {{since:Int64}})"
    )


def ruled_out_clause(db: str, prefilter: str) -> str:
    """For incremental passes: leave out calls that ended since ``{since:Int64}`` and that no rule can
    match (the pushdown ``prefilter`` is false) unless they hold a live label that may need withdrawing."""
    base = "WHERE Timestamp >= fromUnixTimestamp64Nano({lo:Int64})"
    return (
        f"({G_EXPR}, {K_EXPR}) NOT IN (SELECT TraceId, SpanId FROM `{db}`.otel_traces {base} AND LlmSpan = 'call' "
        f"AND {END_NS} >= {{since:Int64}} AND NOT {prefilter} AND (TraceId, SpanId) NOT IN "
        f"(SELECT TraceId, SpanId FROM `{db}`.streamtriage_labels FINAL {base} AND IsDeleted = 0))"
    )


def candidate_keys_clause(db: str, prefilter: str) -> str:
    """Spans worth assembling in a full pass: traces holding a call that the rules' SQL pushdown
    (``prefilter``) keeps, a call whose call span has not arrived, or a live label (it may have to be
    withdrawn), plus object-keyed polls. Every other call is classified "no label" without leaving
    ClickHouse. Filtering on TraceId alone (one hash lookup, and the TraceId bloom index) is cheaper
    than on the (trace, call) pair; a healthy call sharing a trace with a candidate is simply
    evaluated too."""
    base = "WHERE Timestamp >= fromUnixTimestamp64Nano({lo:Int64})"
    return (
        f"(TraceId IN (SELECT TraceId FROM `{db}`.otel_traces {base} AND LlmSpan = 'call' AND {prefilter} "
        f"UNION ALL SELECT TraceId FROM `{db}`.otel_traces {base} "
        "AND LlmSpan IN ('event', 'poll') AND ParentSpanId != '' AND (TraceId, ParentSpanId) NOT IN "
        f"(SELECT TraceId, SpanId FROM `{db}`.otel_traces {base} AND LlmSpan = 'call') "
        f"UNION ALL SELECT TraceId FROM `{db}`.streamtriage_labels FINAL {base} AND IsDeleted = 0"
        ") OR (LlmSpan = 'poll' AND ParentSpanId = ''))"
    )


def key_list_clause(keys: str = "keys", tids: str = "tids") -> str:
    """Groups named in ``{keys:Array(String)}`` as ``g/k`` (the open-call sweep); ``{tids:Array(String)}``
    lets the TraceId bloom filter skip most of the table first. Parameter names are configurable so the
    clause can be combined with another one."""
    return (f"(TraceId IN {{{tids}:Array(String)}} AND concat({G_EXPR}, '/', {K_EXPR}) IN {{{keys}:Array(String)}})")


def object_key_clause() -> str:
    """Object-keyed poll groups (``/obj:<id>``) named in ``{keys:Array(String)}``."""
    return (f"LlmSpan = 'poll' AND ParentSpanId = '' "
            f"AND concat({G_EXPR}, '/', {K_EXPR}) IN {{keys:Array(String)}}")


def open_keys_sql(db: str, where: str = "") -> str:
    """Groups with children but no call span, since ``{lo:Int64}`` (rebuilds the open set on start)."""
    return (
        f"SELECT {G_EXPR} AS g, {K_EXPR} AS k FROM `{db}`.{TRACES} "
        "WHERE Timestamp >= fromUnixTimestamp64Nano({lo:Int64}) AND LlmSpan IN ('call', 'event', 'poll') "
        + (f"AND {where} " if where else "")
        + f"GROUP BY g, k HAVING {OPEN_CALL_SQL}"
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
        attrs = row["call_attrs"]
    agg = None
    if row["ev_spans"]:
        seq = row["ev_seq"]
        agg = EventAgg(
            types=_fold([x[1] for x in seq]), statuses=_fold([x[2] for x in seq]),
            count=int(row["ev_count"]), delta_count=int(row["ev_delta"]),
            max_gap_ms=float(row["ev_max_gap"]),
            later_gap_ms=float(row["ev_later_gap"]) if row["ev_count"] > 1 else None,
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
                 params: dict[str, Any] | None = None, block_rows: int = 65_536,
                 mask_sql: str | None = None) -> Iterator[Record]:
    """Stream records from the store (``client`` is a clickhouse-connect client)."""
    p = {"lo": int(lo_ns)}
    p.update(params or {})
    sql = records_sql(db, where_keys, mask_sql)
    with client.query_row_block_stream(sql, parameters=p, settings={"max_block_size": block_rows}) as stream:
        names = stream.source.column_names
        for block in stream:
            for raw in block:
                row = dict(zip(names, raw, strict=False))
                rec = build_record(row_to_source(row), now_ns)
                if mask_sql and row["has_call"]:
                    rec["_rule_mask"] = int(row["rule_mask"])
                yield rec
