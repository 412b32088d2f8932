"""Relays: the downstream leg, where an app forwards an LLM stream to a browser (span contract §3a).

Endings by cause come from the relay spans themselves; "partial answers shown as complete" and
"crashes caused by upstream failures" read the classifier's relay labels, so the panel and the alert
that links to it count the same thing (the label's KB id).
"""
from __future__ import annotations

from ..builder import Json, dashboard, stat, table, thresholds, timeseries
from .common import LABEL_FILTERS, LABELS, LIVE_LABELS, SPAN_FILTERS, collector_variables, filter_variables

UID = "streamtriage-relay"
RELAY_CRASH_KB = "llm/relay-crash-on-upstream-failure"
PARTIAL_KB = "llm/relay-partial-answer-shown-complete"
CLIENT_GONE_KB = "llm/relay-client-gone-upstream-kept-running"

RELAYS = "LlmSpan = 'call' AND LlmApi = 'relay'"
_WHERE = f"$__timeFilter(Timestamp) AND {RELAYS}\n  AND {SPAN_FILTERS}"
_LABELS_WHERE = f"{LIVE_LABELS} AND $__timeFilter(Timestamp) AND ApiKind = 'relay'\n  AND {LABEL_FILTERS}"
_COUNT_TH = thresholds(("green", None), ("red", 1))


def relay_label_count_sql(kb_id: str) -> str:
    """Relay incidents of one KB entry: the panel's query, and the alert's per service."""
    return f"SELECT count() AS incidents FROM {LABELS} WHERE {_LABELS_WHERE} AND KbId = '{kb_id}'"


def build() -> Json:
    stats = [
        stat("Relays", "WebSocket connections and streamed responses relayed to browsers.",
             f"SELECT count() AS relays FROM otel_traces WHERE {_WHERE}", "short", w=6),
        stat("Relay crashes caused by upstream failures", "The relay raised on a failed or malformed upstream "
             "stream and the browser's socket died (close 1006).", relay_label_count_sql(RELAY_CRASH_KB), "short",
             _COUNT_TH, w=6),
        stat("Partial answers shown as complete", "The upstream call was cut or truncated but the relay ended "
             "normally and told the person nothing.", relay_label_count_sql(PARTIAL_KB), "short", _COUNT_TH, w=6),
        stat("Clients gone, upstream kept running", "The browser left mid-relay and the LLM call ran on "
             "(tokens paid for nothing).", relay_label_count_sql(CLIENT_GONE_KB), "short", _COUNT_TH, w=6),
    ]
    endings = timeseries("Relay endings by cause", "Who ended each relay: the app's close, the app returning, "
                         "the client going away, a crash (the server drops the socket), or a finished HTTP body.", f"""
SELECT $__timeInterval(Timestamp) AS time, SpanAttributes['streamtriage.relay.end'] AS ended_by, count() AS relays
FROM otel_traces WHERE {_WHERE}
GROUP BY time, ended_by ORDER BY time""", "short", bars=True, stacked=True)
    incidents = table("Relay incidents", "Latest relay label per relayed connection; the trace holds the upstream "
                      "LLM calls under the relay span.", f"""
SELECT Timestamp AS time, TraceId, ServiceName AS service, KbId, Title AS title, Confidence AS confidence,
       Outcome AS outcome
FROM {LABELS} WHERE {_LABELS_WHERE}
ORDER BY Timestamp DESC LIMIT 200""", "short", h=10)
    return dashboard(
        UID, "LLM relays", "Relays of LLM streams to browsers: how they end, and the failures people saw (streamtriage).",
        filter_variables() + collector_variables(), [stats, [endings], [incidents]],
    )
