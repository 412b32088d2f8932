"""Runs and polling: long-lived objects (Assistants runs, background responses, vector-store files).

Built from poll spans (one per status read, contract §3): how long objects sit in each status, how
many polls a run takes, how long ``requires_action`` waits, and which objects are hung right now.
"""
from __future__ import annotations

from streamtriage.contract.facts import open_hang_sql

from ..builder import Json, bargauge, by_name, dashboard, stat, table, thresholds, timeseries
from .common import (
    CALLS,
    LABEL_FILTERS,
    LABELS,
    LATEST_STATUS,
    LIVE_LABELS,
    NON_TERMINAL,
    OPEN_FOR_S,
    POLL_READ_OK,
    POLLS,
    SPAN_FILTERS,
    collector_variables,
    filter_variables,
    hang_variable,
)
from .incidents import trace_link

UID = "streamtriage-runs-polling"

_WHERE_POLLS = f"$__timeFilter(Timestamp) AND {POLLS}\n  AND {SPAN_FILTERS}"
_COUNT_TH = thresholds(("green", None), ("red", 1))
_WAIT_TH = thresholds(("green", None), ("yellow", 60), ("red", 600))

# One row per polled object: its latest status and how long it has been open.
OBJECTS = f"""
SELECT SpanAttributes['streamtriage.object.id'] AS object_id,
       any(LlmApi) AS api,
       any(ServiceName) AS service,
       {LATEST_STATUS} AS status,
       argMax(TraceId, Timestamp) AS TraceId,
       min(Timestamp) AS first_poll,
       max(Timestamp) AS last_poll,
       count() AS polls,
       argMax(toFloat64OrZero(SpanAttributes['streamtriage.poll.status_since_ms']), Timestamp) / 1000 AS status_age_s,
       {OPEN_FOR_S} AS open_for_s
FROM otel_traces
WHERE {_WHERE_POLLS}
GROUP BY object_id"""

# One row per (object, status): the longest time the object was seen in that status.
STATUS_SPANS = f"""
SELECT LlmApi AS api, SpanAttributes['streamtriage.object.id'] AS object_id, LlmStatus AS status,
       greatest(max(toFloat64OrZero(SpanAttributes['streamtriage.poll.status_since_ms'])),
                toFloat64(toUnixTimestamp64Milli(max(Timestamp)) - toUnixTimestamp64Milli(min(Timestamp)))) / 1000
         AS in_status_s
FROM otel_traces
WHERE {_WHERE_POLLS} AND {POLL_READ_OK}
GROUP BY api, object_id, status"""


def build() -> Json:
    hung = open_hang_sql("status", "open_for_s", "${hang_after_s}")
    stats = [
        stat("Hangs open now", "Polled objects whose latest status is still non-terminal after 'Hang after'.",
             f"SELECT countIf({hung}) AS hangs FROM ({OBJECTS}\n)", "short", _COUNT_TH, w=5),
        stat("Open hangs (classifier)", "Calls the classifier labelled as open polling hangs.",
             f"SELECT count() AS open_hangs FROM {LABELS} WHERE {LIVE_LABELS} AND IsOpen = 1 "
             f"AND Category = 'polling_hang' AND $__timeFilter(Timestamp)\n  AND {LABEL_FILTERS}", "short",
             _COUNT_TH, w=5),
        stat("Objects polled", "Distinct runs / responses / files polled in the time range.",
             f"SELECT uniqExact(SpanAttributes['streamtriage.object.id']) AS objects FROM otel_traces "
             f"WHERE {_WHERE_POLLS}", "short", w=4),
        stat("Polls per object (p95)", "95th percentile of status reads per object.",
             f"SELECT quantile(0.95)(polls) AS p95_polls FROM ({OBJECTS}\n)", "short",
             thresholds(("green", None), ("yellow", 30), ("red", 120)), w=5),
        stat("requires_action wait (max)", "Longest time a run waited in requires_action for tool outputs.",
             f"SELECT max(in_status_s) AS max_wait_s FROM ({STATUS_SPANS}\n) WHERE status = 'requires_action'",
             "s", _WAIT_TH, w=5),
    ]
    open_table = table(
        "Hangs currently open", "Objects whose latest status is queued / in_progress / requires_action / "
        "cancelling and that have been open longer than 'Hang after'. TraceId opens the trace.",
        f"SELECT object_id, api, service, status, TraceId, first_poll, last_poll, polls, status_age_s, open_for_s\n"
        f"FROM ({OBJECTS}\n)\nWHERE {hung}\nORDER BY open_for_s DESC LIMIT 200", "short", h=8,
        overrides=[by_name("TraceId", links=[trace_link()]), by_name("status_age_s", unit="s", thresholds=_WAIT_TH),
                   by_name("open_for_s", unit="s", thresholds=_WAIT_TH,
                           custom__cellOptions={"type": "color-background"})])
    row3 = [
        table("Time in status", "Per API kind and status: how long objects stayed in it (p50 / p95 / max), "
              "from the poll spans' status_since_ms.", f"""
SELECT api, status, count() AS objects, quantile(0.5)(in_status_s) AS p50_s, quantile(0.95)(in_status_s) AS p95_s,
       max(in_status_s) AS max_s
FROM ({STATUS_SPANS}
)
GROUP BY api, status ORDER BY api, max_s DESC""", "s", _WAIT_TH, w=12, h=8,
              overrides=[by_name("objects", unit="short")]),
        timeseries("Run and job duration", "Duration of polling-helper loops and background creates "
                   "(call spans with call.mode poll / background): p50 / p95 / max.", f"""
SELECT $__timeInterval(Timestamp) AS time, quantile(0.5)(Duration / 1e9) AS p50,
       quantile(0.95)(Duration / 1e9) AS p95, max(Duration / 1e9) AS max
FROM otel_traces
WHERE $__timeFilter(Timestamp) AND {CALLS} AND SpanAttributes['streamtriage.call.mode'] IN ('poll', 'background')
  AND {SPAN_FILTERS}
GROUP BY time ORDER BY time""", "s", w=12),
    ]
    row4 = [
        timeseries("Polls per minute", "Status reads per minute by API kind; a flat high line with no completed "
                   "runs is a poll loop without a deadline.", f"""
SELECT $__timeInterval(Timestamp) AS time, LlmApi AS api, count() * 60 / $__interval_s AS polls_per_min
FROM otel_traces WHERE {_WHERE_POLLS}
GROUP BY time, api ORDER BY time""", "reqpm", w=12),
        timeseries("requires_action waiting time", "How long runs have been waiting in requires_action at each "
                   "poll (status_since_ms); runs expire after about 10 minutes.", f"""
SELECT $__timeInterval(Timestamp) AS time,
       max(toFloat64OrZero(SpanAttributes['streamtriage.poll.status_since_ms']) / 1000) AS max_wait,
       quantile(0.95)(toFloat64OrZero(SpanAttributes['streamtriage.poll.status_since_ms']) / 1000) AS p95_wait
FROM otel_traces WHERE {_WHERE_POLLS} AND LlmStatus = 'requires_action'
GROUP BY time ORDER BY time""", "s", _WAIT_TH, w=12),
        table("Polls per run", "Status reads per polled object, by API kind: a high p95 with few completions "
              "means loops that poll until something else stops them.", f"""
SELECT api, count() AS objects, avg(polls) AS avg_polls, quantile(0.95)(polls) AS p95_polls, max(polls) AS max_polls,
       countIf(status IN {NON_TERMINAL}) AS still_open
FROM ({OBJECTS}
)
GROUP BY api ORDER BY p95_polls DESC""", "short", thresholds(("green", None), ("yellow", 30), ("red", 120)),
              w=12, h=8, overrides=[by_name("still_open", thresholds=_COUNT_TH)]),
        bargauge("Final status of runs and jobs", "Last status seen per polled object (completed, failed, "
                 "expired, incomplete, cancelled, or still open).",
                 f"SELECT status, count() AS objects FROM ({OBJECTS}\n) GROUP BY status ORDER BY objects DESC",
                 "short", w=12),
    ]
    return dashboard(
        UID, "LLM runs and polling",
        "Assistants runs, background responses and vector-store jobs seen through their polls: time in status, "
        "polls per run, requires_action waits and hangs that are open now (streamtriage).",
        filter_variables() + [hang_variable()] + collector_variables(),
        [stats, [open_table], row3, row4[:2], row4[2:]],
    )
