"""Incidents: every classified call with its knowledge-base entry, and the top root causes.

Reads the classifier's ``streamtriage_labels`` (latest label per call: FINAL, IsDeleted = 0). Each
row links to the call's trace in the plugin's trace view and to its KB entry on the collector.
"""
from __future__ import annotations

from streamtriage.classifier.feedback_sql import FEEDBACK, precision_sql

from ..builder import DATASOURCE_UID, Json, by_name, dashboard, stat, table, thresholds, timeseries
from ..versions import PLUGIN_ID, PLUGIN_VERSION
from .common import LABEL_FILTERS, LABELS, LIVE_LABELS, collector_variables, filter_variables

UID = "streamtriage-incidents"

_WHERE = f"{LIVE_LABELS} AND $__timeFilter(Timestamp)\n  AND {LABEL_FILTERS}\n  AND $__conditionalAll(Category IN (${{category}}), $category)"
_COUNT_TH = thresholds(("green", None), ("red", 1))
_CONF_TH = thresholds(("red", None), ("yellow", 0.5), ("green", 0.8))

_TRACE_COLUMNS = [
    ("Timestamp", "time"), ("TraceId", "trace_id"), ("SpanId", "trace_span_id"),
    ("ParentSpanId", "trace_parent_span_id"), ("ServiceName", "trace_service_name"),
    ("SpanName", "trace_operation_name"), ("Duration", "trace_duration_time"), ("SpanAttributes", "trace_tags"),
    ("ResourceAttributes", "trace_service_tags"), ("StatusCode", "trace_status_code"), ("SpanKind", "trace_kind"),
    ("StatusMessage", "trace_status_message"),
]


def trace_link() -> Json:
    """Data link opening the row's TraceId in Explore, in the plugin's trace-ID (trace view) mode."""
    query = {
        "refId": "Trace ID",
        "datasource": {"type": PLUGIN_ID, "uid": DATASOURCE_UID},
        "editorType": "builder",
        "format": 3,
        "pluginVersion": PLUGIN_VERSION,
        "rawSql": "",
        "builderOptions": {
            "database": "${database}",
            "table": "otel_traces",
            "queryType": "traces",
            "columns": [{"name": n, "hint": h} for n, h in _TRACE_COLUMNS],
            "filters": [],
            "orderBy": [],
            "meta": {
                "minimized": True,
                "isTraceIdMode": True,
                "traceId": "${__value.raw}",
                "traceDurationUnit": "nanoseconds",
                "otelEnabled": True,
                "otelVersion": "latest",
                "traceEventsColumnPrefix": "Events",
                "traceLinksColumnPrefix": "Links",
            },
        },
    }
    return {
        "title": "Open trace",
        "url": "",
        "internal": {"datasourceUid": DATASOURCE_UID, "datasourceName": "streamtriage ClickHouse", "query": query},
    }


def kb_link() -> Json:
    """Data link to the KB entry as served by the collector (ids contain '/', kept as path segments)."""
    return {"title": "Knowledge-base entry", "url": "${collector_url}/api/kb/${__value.raw}?format=md",
            "targetBlank": True}


def build() -> Json:
    stats = [
        stat("Classified incidents", "Classified failed or hung calls in the time range.",
             f"SELECT count() AS incidents FROM {LABELS} WHERE {_WHERE}", "short", _COUNT_TH, w=6),
        stat("Open now", "Calls labelled while still open (hung stream or poll loop, no call span yet).",
             f"SELECT countIf(IsOpen = 1) AS open FROM {LABELS} WHERE {_WHERE}", "short", _COUNT_TH, w=6),
        stat("Distinct root causes", "Number of different knowledge-base entries matched.",
             f"SELECT uniqExact(KbId) AS root_causes FROM {LABELS} WHERE {_WHERE}", "short", w=6),
        stat("Mean confidence", "Average classifier confidence over the incidents shown.",
             f"SELECT avg(Confidence) AS confidence FROM {LABELS} WHERE {_WHERE}", "percentunit", _CONF_TH, w=6),
    ]
    row2 = [
        timeseries("Incidents by category", "Classified incidents per interval and category "
                   "(incomplete_stream, truncation, polling_hang, ...).", f"""
SELECT $__timeInterval(Timestamp) AS time, Category AS category, count() AS incidents
FROM {LABELS} WHERE {_WHERE}
GROUP BY time, category ORDER BY time""", "short", _COUNT_TH, bars=True, stacked=True),
        table("Top root causes", "Knowledge-base entries ranked by incidents, with the prior fix rate from the "
              "KB and the fix rate observed in this deployment (retry success within a window) with its sample: "
              "the labelled calls it is computed over.", f"""
SELECT KbId, any(Title) AS title, any(Category) AS category, count() AS incidents,
       avg(Confidence) AS confidence, any(FixRatePrior) AS fix_rate_prior,
       argMax(FixRateObserved, Version) AS fix_rate_observed, argMax(FixRateSample, Version) AS fix_rate_sample,
       uniqExact(ServiceName) AS services
FROM {LABELS} WHERE {_WHERE}
GROUP BY KbId ORDER BY incidents DESC LIMIT 20""", "short", w=12, h=8,
              overrides=[by_name("KbId", links=[kb_link()]),
                         by_name("confidence", unit="percentunit", thresholds=_CONF_TH),
                         by_name("fix_rate_prior", unit="percentunit"),
                         by_name("fix_rate_observed", unit="percentunit")]),
    ]
    incidents = table(
        "Incidents", "Latest label per classified call. TraceId opens the call's trace in the trace view; KbId "
        "opens the knowledge-base entry (root cause, fixes, what does not help).", f"""
SELECT Timestamp AS time, TraceId, ServiceName AS service, Model AS model, ApiKind AS api, Category AS category,
       KbId, Title AS title, RootCause AS root_cause, Confidence AS confidence, FixRatePrior AS fix_rate_prior,
       FixRateObserved AS fix_rate_observed, FixRateSample AS fix_rate_sample, EvidenceCount AS evidence,
       Outcome AS outcome, IsOpen AS open
FROM {LABELS} WHERE {_WHERE}
ORDER BY Timestamp DESC LIMIT 500""", "short", h=12,
        overrides=[by_name("TraceId", links=[trace_link()]), by_name("KbId", links=[kb_link()]),
                   by_name("time", unit="dateTimeAsIso"),
                   by_name("confidence", unit="percentunit", thresholds=_CONF_TH,
                           custom__cellOptions={"type": "color-text"}),
                   by_name("fix_rate_prior", unit="percentunit"), by_name("fix_rate_observed", unit="percentunit")])
    precision = table(
        "Precision per entry (feedback)", "Of the calls people gave a verdict on (`streamtriage feedback confirm` / "
        "`wrong`, or POST /api/labels/{trace_id}/feedback), the share whose label the rules got right, per "
        "knowledge-base entry the rules chose. Muted entries are left out of the other panels.",
        precision_sql(FEEDBACK, "$__conditionalAll(ServiceName IN (${service}), $service)"), "short", h=8,
        overrides=[by_name("kb_id", links=[kb_link()]),
                   by_name("precision", unit="percentunit", thresholds=_CONF_TH,
                           custom__cellOptions={"type": "color-text"})])
    category_var = {
        "type": "query", "name": "category", "label": "Category",
        "description": "KB category: incomplete_stream, truncation, polling_hang or another failure label.",
        "datasource": {"type": PLUGIN_ID, "uid": "${datasource}"},
        "query": {"editorType": "sql", "format": 1, "refId": "var-category",
                  "rawSql": f"SELECT DISTINCT Category FROM {LABELS} WHERE {LIVE_LABELS} AND $__timeFilter(Timestamp) "
                            "ORDER BY Category"},
        "definition": "categories of labelled calls", "refresh": 2, "multi": True, "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "sort": 1, "hide": 0, "options": [],
    }
    return dashboard(
        UID, "LLM incidents",
        "Classified LLM call failures with their knowledge-base entry, root cause, confidence and fix rates "
        "(streamtriage).",
        filter_variables() + [category_var] + collector_variables(),
        [stats, row2, [incidents], [precision]],
    )
