"""LLM stream health: volume, failures, incomplete streams, truncations, hangs and latency.

Built from the call and poll spans themselves, so it works even before the classifier has labelled
anything; only "failure rate by category" reads the classifier's labels.
"""
from __future__ import annotations

from streamtriage.contract.facts import open_hang_sql

from ..builder import Json, by_name, dashboard, stat, table, thresholds, timeseries
from .common import (
    CALLS,
    IS_ERROR,
    IS_INCOMPLETE,
    IS_TRUNCATED,
    LABEL_FILTERS,
    LABELS,
    LATEST_STATUS,
    LIVE_LABELS,
    NON_TERMINAL,
    OPEN_FOR_S,
    POLLS,
    SPAN_FILTERS,
    filter_variables,
    hang_variable,
)

UID = "streamtriage-stream-health"

_WHERE_CALLS = f"$__timeFilter(Timestamp) AND {CALLS}\n  AND {SPAN_FILTERS}"
_RATE_TH = thresholds(("green", None), ("yellow", 0.01), ("red", 0.05))
_COUNT_TH = thresholds(("green", None), ("red", 1))
_TTFE_TH = thresholds(("green", None), ("yellow", 2000), ("red", 10000))

HUNG_OBJECTS = f"""
SELECT SpanAttributes['streamtriage.object.id'] AS object_id,
       any(LlmApi) AS api,
       {LATEST_STATUS} AS status,
       {OPEN_FOR_S} AS open_for_s
FROM otel_traces
WHERE $__timeFilter(Timestamp) AND {POLLS}
  AND {SPAN_FILTERS}
GROUP BY object_id
HAVING {open_hang_sql("status", "open_for_s", "${hang_after_s}")}"""


def build() -> Json:
    stats = [
        stat("Calls", "LLM calls (call spans) in the time range.",
             f"SELECT count() AS calls FROM otel_traces WHERE {_WHERE_CALLS}", "short"),
        stat("Failure rate", "Share of calls whose span status is ERROR (any outcome but completed/cancelled, "
             "or a failed terminal status).",
             f"SELECT countIf({IS_ERROR}) / greatest(count(), 1) AS failure_rate FROM otel_traces WHERE {_WHERE_CALLS}",
             "percentunit", _RATE_TH),
        stat("Incomplete streams", "Streams that started but never received the protocol's terminal marker "
             "([DONE], response.completed, thread.run.*), excluding the app's own cancels and HTTP errors.",
             f"SELECT countIf({IS_INCOMPLETE}) AS incomplete FROM otel_traces WHERE {_WHERE_CALLS}", "short",
             _COUNT_TH),
        stat("Truncations", "Calls whose output was cut by a token budget (finish_reason=length or "
             "incomplete_details.reason max_*_tokens).",
             f"SELECT countIf({IS_TRUNCATED}) AS truncated FROM otel_traces WHERE {_WHERE_CALLS}", "short",
             _COUNT_TH),
        stat("Polling hangs", "Polled runs / background responses / vector-store files whose latest status is "
             "still non-terminal after the 'Hang after' threshold.",
             f"SELECT count() AS hangs FROM ({HUNG_OBJECTS}\n)", "short", _COUNT_TH),
        stat("p95 time to first event", "95th percentile of request start to first stream event (stream calls).",
             f"SELECT quantile(0.95)(LlmTtfeMs) AS p95_ttfe_ms FROM otel_traces WHERE {_WHERE_CALLS} AND LlmTtfeMs > 0",
             "ms", _TTFE_TH),
    ]
    row2 = [
        timeseries("Calls per minute by API kind", "Call volume per streamtriage.api.", f"""
SELECT $__timeInterval(Timestamp) AS time, LlmApi AS api, count() * 60 / $__interval_s AS calls_per_min
FROM otel_traces WHERE {_WHERE_CALLS}
GROUP BY time, api ORDER BY time""", "reqpm", stacked=True),
        timeseries("Failure rate by category", "Classified failures per category (classifier labels) divided by "
                   "all calls in the same interval (a hung call whose call span has not arrived counts as a call).", f"""
SELECT f.time AS time, f.category AS category, f.failures / greatest(c.calls, f.failures) AS failure_rate
FROM (
  SELECT $__timeInterval(Timestamp) AS time, Category AS category, count() AS failures
  FROM {LABELS}
  WHERE {LIVE_LABELS} AND $__timeFilter(Timestamp) AND {LABEL_FILTERS}
  GROUP BY time, category
) AS f
LEFT JOIN (
  SELECT $__timeInterval(Timestamp) AS time, count() AS calls
  FROM otel_traces WHERE {_WHERE_CALLS}
  GROUP BY time
) AS c ON f.time = c.time
ORDER BY time""", "percentunit", _RATE_TH, bars=True, stacked=True),
    ]
    row3 = [
        timeseries("Incomplete streams, truncations and polling hangs", "Per interval: streams without a terminal "
                   "marker, token-budget truncations, and polls that found an object hung past the threshold.", f"""
SELECT time, kind, n FROM (
  SELECT $__timeInterval(Timestamp) AS time, 'incomplete stream' AS kind, countIf({IS_INCOMPLETE}) AS n
  FROM otel_traces WHERE {_WHERE_CALLS} GROUP BY time
  UNION ALL
  SELECT $__timeInterval(Timestamp) AS time, 'truncation' AS kind, countIf({IS_TRUNCATED}) AS n
  FROM otel_traces WHERE {_WHERE_CALLS} GROUP BY time
  UNION ALL
  SELECT $__timeInterval(Timestamp) AS time, 'polling hang' AS kind, uniqExactIf(SpanAttributes['streamtriage.object.id'],
         LlmStatus IN {NON_TERMINAL}
         AND toFloat64OrZero(SpanAttributes['streamtriage.poll.status_since_ms']) >= ${{hang_after_s}} * 1000) AS n
  FROM otel_traces WHERE $__timeFilter(Timestamp) AND {POLLS} AND {SPAN_FILTERS} GROUP BY time
)
ORDER BY time""", "short", _COUNT_TH, bars=True, stacked=True),
        timeseries("Calls by outcome", "streamtriage.outcome of each call: completed, no_terminal, transport_error, "
                   "timeout, error_event, http_error, cancelled, app_error, error.", f"""
SELECT $__timeInterval(Timestamp) AS time, LlmOutcome AS outcome, count() AS calls
FROM otel_traces WHERE {_WHERE_CALLS}
GROUP BY time, outcome ORDER BY time""", "short", bars=True, stacked=True),
    ]
    row4 = [
        timeseries("Time to first event", "Request start to the first stream event: p50 / p95 / p99.", f"""
SELECT $__timeInterval(Timestamp) AS time,
       quantile(0.5)(LlmTtfeMs) AS p50, quantile(0.95)(LlmTtfeMs) AS p95, quantile(0.99)(LlmTtfeMs) AS p99
FROM otel_traces WHERE {_WHERE_CALLS} AND LlmTtfeMs > 0
GROUP BY time ORDER BY time""", "ms", _TTFE_TH, w=8),
        timeseries("Call duration", "Whole-call duration (span duration): p50 / p95 / p99.", f"""
SELECT $__timeInterval(Timestamp) AS time,
       quantile(0.5)(Duration / 1e6) AS p50, quantile(0.95)(Duration / 1e6) AS p95,
       quantile(0.99)(Duration / 1e6) AS p99
FROM otel_traces WHERE {_WHERE_CALLS}
GROUP BY time ORDER BY time""", "ms", w=8),
        timeseries("Largest gap between events", "streamtriage.max_gap_ms: the longest silence inside a stream "
                   "(first gap counted from the headers). Long gaps precede idle-timeout cuts.", f"""
SELECT $__timeInterval(Timestamp) AS time, max(LlmMaxGapMs) AS max_gap, quantile(0.95)(LlmMaxGapMs) AS p95_gap
FROM otel_traces WHERE {_WHERE_CALLS} AND LlmMaxGapMs > 0
GROUP BY time ORDER BY time""", "ms", thresholds(("green", None), ("red", 30000)), w=8),
    ]
    breakdown = table(
        "By service, model and API kind", "One row per service / model / API kind: volume, failure rate, "
        "incomplete streams, truncations and latency.", f"""
SELECT ServiceName AS service, LlmModel AS model, LlmApi AS api, count() AS calls,
       countIf({IS_ERROR}) / count() AS failure_rate,
       countIf({IS_INCOMPLETE}) AS incomplete, countIf({IS_TRUNCATED}) AS truncated,
       quantileIf(0.95)(LlmTtfeMs, LlmTtfeMs > 0) AS p95_ttfe_ms,
       quantile(0.95)(Duration / 1e6) AS p95_duration_ms,
       max(LlmMaxGapMs) AS max_gap_ms
FROM otel_traces WHERE {_WHERE_CALLS}
GROUP BY service, model, api
ORDER BY failure_rate DESC, calls DESC""", "short",
        overrides=[
            by_name("failure_rate", unit="percentunit", thresholds=_RATE_TH,
                    custom__cellOptions={"type": "color-background"}),
            by_name("p95_ttfe_ms", unit="ms"), by_name("p95_duration_ms", unit="ms"),
            by_name("max_gap_ms", unit="ms"),
        ])
    return dashboard(
        UID, "LLM stream health",
        "Health of instrumented LLM calls: volume, failures, incomplete streams, truncations, polling hangs and "
        "latency, by service, model and API kind (streamtriage).",
        filter_variables() + [hang_variable()],
        [stats, row2, row3, row4, [breakdown]],
    )
