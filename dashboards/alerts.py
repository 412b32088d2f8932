"""Grafana alert rules (file provisioning, Grafana >= 11.6) on the ClickHouse data source.

Each rule is one ClickHouse query (refId A, backend macros only: alert rules skip the frontend,
so no dashboard variables) -> Reduce (B) -> Threshold (C). String columns in A's result become
alert labels, so a rule that groups by ``kb_id`` fires one instance per knowledge-base entry and
its runbook link points at that entry. Thresholds come from :mod:`thresholds`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamtriage.contract.facts import open_hang_sql

from . import thresholds as T
from .builder import DATASOURCE_UID, FORMAT_TABLE
from .definitions import incidents, relay, runs_polling, stream_health
from .definitions.common import IS_ERROR, IS_TRUNCATED, LATEST_STATUS, LIVE_LABELS, OPEN_FOR_S, PROVIDER
from .versions import PLUGIN_ID, PLUGIN_VERSION

FOLDER = "streamtriage"
GROUP = "streamtriage-llm"
INTERVAL = "1m"

# Which KB entry a hung object points at, from its API kind and last status (catalog: polling_hang).
HANG_KB = """multiIf(status = 'requires_action', 'llm/assistants-requires-action-expired',
               api = 'responses', 'llm/responses-background-poll-or-resume-failure',
               startsWith(api, 'vector_stores'), 'llm/vector-store-indexing-stuck-or-not-ready',
               'llm/assistants-poll-loop-no-deadline')"""
# The truncation rule counts truncated call spans exactly as the "Truncations" panel it links to
# (``IS_TRUNCATED``); the classifier's most frequent truncation label only names the runbook entry.
TRUNCATION_KB = "llm/finish-reason-length-output-cap"


@dataclass(frozen=True)
class Rule:
    uid: str
    title: str
    sql: str
    threshold: float
    range_s: int
    for_: str
    summary: str
    description: str
    runbook: str             # KB id (may be a {{ $labels.kb_id }} template) or a docs anchor
    labels: dict[str, str]
    dashboard_uid: str
    panel_title: str
    no_data: str = "OK"
    exec_err: str = "Error"
    extra_annotations: dict[str, str] = field(default_factory=dict)


RULES: list[Rule] = [
    Rule(
        uid="streamtriage-failure-rate",
        title="LLM call failure rate high",
        sql=f"""
SELECT ServiceName AS service, {PROVIDER} AS provider, countIf({IS_ERROR}) / count() AS failure_rate
FROM otel_traces
WHERE $__timeFilter(Timestamp) AND LlmSpan = 'call'
GROUP BY service, provider
HAVING count() >= {T.FAILURE_MIN_CALLS}""",
        threshold=T.FAILURE_RATE, range_s=T.FAILURE_WINDOW_S, for_=T.FAILURE_FOR,
        summary="{{ $labels.service }} ({{ $labels.provider }}): {{ humanizePercentage $values.B.Value }} of LLM calls failed "
                f"(threshold {T.FAILURE_RATE:.0%})",
        description="More than the threshold of this service's LLM calls ended with an ERROR status in the last "
                    f"{T.FAILURE_WINDOW_S // 60} minutes. Open the LLM incidents dashboard filtered to the service: "
                    "every classified call names its knowledge-base entry (root cause, fixes, what does not help).",
        runbook="incidents-dashboard",
        labels={"severity": "warning", "category": "failure_rate"},
        dashboard_uid=stream_health.UID, panel_title="Failure rate",
    ),
    Rule(
        uid="streamtriage-incomplete-stream-spike",
        title="Incomplete LLM streams spiking",
        sql=f"""
SELECT kb_id, if(recent >= {T.INCOMPLETE_SPIKE_FACTOR} * greatest(baseline, 1), recent, 0) AS spike
FROM (
  SELECT KbId AS kb_id,
         countIf(Timestamp > $__toTime - INTERVAL {T.INCOMPLETE_RECENT_S} SECOND) AS recent,
         countIf(Timestamp <= $__toTime - INTERVAL {T.INCOMPLETE_RECENT_S} SECOND)
           / {(T.INCOMPLETE_BASELINE_S - T.INCOMPLETE_RECENT_S) // T.INCOMPLETE_RECENT_S} AS baseline
  FROM streamtriage_labels FINAL
  WHERE {LIVE_LABELS} AND $__timeFilter(Timestamp) AND Category = 'incomplete_stream'
  GROUP BY kb_id
)""",
        threshold=T.INCOMPLETE_SPIKE_MIN - 1, range_s=T.INCOMPLETE_BASELINE_S, for_=T.INCOMPLETE_FOR,
        summary="{{ $values.B.Value }} streams cut before their terminal event in 10 minutes: {{ $labels.kb_id }}",
        description=f"At least {T.INCOMPLETE_SPIKE_MIN} streams classified as {{{{ $labels.kb_id }}}} ended without "
                    f"the protocol's terminal marker in the last {T.INCOMPLETE_RECENT_S // 60} minutes, "
                    f"{T.INCOMPLETE_SPIKE_FACTOR}x or more the hour's average. The KB entry lists the usual causes "
                    "(upstream or proxy cutting the body, stalls without an idle timeout) and the fixes.",
        runbook="{{ $labels.kb_id }}",
        labels={"severity": "critical", "category": "incomplete_stream"},
        dashboard_uid=incidents.UID, panel_title="Incidents by category",
    ),
    Rule(
        uid="streamtriage-polling-hang",
        title="LLM polling hang open",
        sql=f"""
SELECT api, {HANG_KB} AS kb_id, count() AS hangs
FROM (
  SELECT SpanAttributes['streamtriage.object.id'] AS object_id, any(LlmApi) AS api,
         {LATEST_STATUS} AS status, max(Timestamp) AS last_poll,
         {OPEN_FOR_S} AS open_for_s
  FROM otel_traces
  WHERE $__timeFilter(Timestamp) AND LlmSpan = 'poll'
  GROUP BY object_id
)
WHERE {open_hang_sql("status", "open_for_s", str(T.HANG_AFTER_S))}
  AND last_poll >= $__toTime - INTERVAL {T.HANG_STILL_POLLED_S} SECOND
GROUP BY api, kb_id""",
        threshold=0, range_s=T.HANG_WINDOW_S, for_=T.HANG_FOR,
        summary="{{ $values.B.Value }} {{ $labels.api }} object(s) still not finished after "
                f"{T.HANG_AFTER_S // 60} minutes of polling",
        description=f"A run, background response or vector-store file has been polled for more than "
                    f"{T.HANG_AFTER_S // 60} minutes and its latest status is still queued, in_progress, "
                    "requires_action or cancelling. Likely cause: {{ $labels.kb_id }}. The LLM runs and polling "
                    "dashboard lists the objects and links to their traces.",
        runbook="{{ $labels.kb_id }}",
        labels={"severity": "warning", "category": "polling_hang"},
        dashboard_uid=runs_polling.UID, panel_title="Hangs currently open",
    ),
    Rule(
        uid="streamtriage-truncation-rate",
        title="LLM truncation rate high for a model",
        sql=f"""
SELECT c.model AS model, if(l.kb_id = '', '{TRUNCATION_KB}', l.kb_id) AS kb_id,
       c.truncated / c.calls AS truncation_rate
FROM (
  SELECT LlmModel AS model, countIf({IS_TRUNCATED}) AS truncated, count() AS calls
  FROM otel_traces
  WHERE $__timeFilter(Timestamp) AND LlmSpan = 'call'
  GROUP BY model
  HAVING calls >= {T.TRUNCATION_MIN_CALLS}
) AS c
LEFT JOIN (
  SELECT Model AS model, topK(1)(KbId)[1] AS kb_id
  FROM streamtriage_labels FINAL
  WHERE {LIVE_LABELS} AND $__timeFilter(Timestamp) AND Category = 'truncation'
  GROUP BY model
) AS l ON c.model = l.model""",
        threshold=T.TRUNCATION_RATE, range_s=T.TRUNCATION_WINDOW_S, for_=T.TRUNCATION_FOR,
        summary="{{ $labels.model }}: {{ humanizePercentage $values.B.Value }} of calls truncated "
                "(mostly {{ $labels.kb_id }})",
        description="Calls to this model are being cut by a token budget (finish_reason=length, "
                    "incomplete_details max_*_tokens) more often than the threshold "
                    f"({T.TRUNCATION_RATE:.0%}) over {T.TRUNCATION_WINDOW_S // 60} minutes. The most frequent KB "
                    "entry is {{ $labels.kb_id }}; it says whether to raise max_tokens, cap reasoning effort or "
                    "continue the answer.",
        runbook="{{ $labels.kb_id }}",
        labels={"severity": "warning", "category": "truncation"},
        dashboard_uid=stream_health.UID, panel_title="Truncations",
    ),
    Rule(
        uid="streamtriage-collector-spooling",
        title="streamtriage collector not storing spans",
        sql=f"""
SELECT if(countIf(Timestamp >= $__toTime - INTERVAL {T.INGEST_QUIET_S} SECOND) = 0
          AND count() >= {T.INGEST_MIN_SPANS_HOUR}, 1, 0) AS ingest_stalled
FROM otel_traces
WHERE $__timeFilter(Timestamp) AND LlmSpan != ''""",
        threshold=0, range_s=T.INGEST_WINDOW_S, for_=T.INGEST_FOR,
        summary=f"No LLM spans stored for {T.INGEST_QUIET_S // 60} minutes after a busy hour: "
                "the collector is spooling or down",
        description="Spans stopped arriving in ClickHouse although the previous hour had traffic. The collector "
                    "spools to disk while the store is unreachable and replays later, so this usually means the "
                    "store is down or refusing inserts (check the collector's /readyz and "
                    "streamtriage_spool_bytes), or that the collector itself is down. A query error on this rule "
                    "(ClickHouse unreachable from Grafana) also fires it.",
        runbook="collector-readyz",
        labels={"severity": "critical", "category": "collector"},
        dashboard_uid=stream_health.UID, panel_title="Calls per minute by API kind",
        no_data="Alerting", exec_err="Alerting",
    ),
    Rule(
        uid="streamtriage-relay-crash-upstream",
        title="Relays crashing on upstream LLM failures",
        # Counts exactly what the "Relay crashes caused by upstream failures" panel counts (same KB id,
        # same live-label filter), per service.
        sql=f"""
SELECT ServiceName AS service, count() AS crashes
FROM streamtriage_labels FINAL
WHERE {LIVE_LABELS} AND $__timeFilter(Timestamp) AND ApiKind = 'relay' AND KbId = '{relay.RELAY_CRASH_KB}'
GROUP BY service""",
        threshold=0, range_s=T.RELAY_CRASH_WINDOW_S, for_=T.RELAY_CRASH_FOR,
        summary="{{ $labels.service }}: {{ $values.B.Value }} relays crashed on a failed upstream stream; "
                "browsers saw the socket die (1006)",
        description="A relay handler raised on a failed or malformed upstream LLM stream (a missing "
                    "finish_reason, a cut, an in-band error) and its error path failed too, so the server dropped "
                    "the browser's socket without a close frame. The people affected saw 'connection died' and no "
                    "explanation. The KB entry has the two-line fix.",
        runbook=relay.RELAY_CRASH_KB,
        labels={"severity": "warning", "category": "relay"},
        dashboard_uid=relay.UID, panel_title="Relay crashes caused by upstream failures",
    ),
]


def _runbook_url(runbook: str, collector_url: str) -> str:
    if runbook == "incidents-dashboard":
        return f"/d/{incidents.UID}?var-service={{{{ $labels.service }}}}"
    if runbook == "collector-readyz":  # store status and spool size; steps in docs/dashboards.md
        return f"{collector_url.rstrip('/')}/readyz"
    return f"{collector_url.rstrip('/')}/api/kb/{runbook}?format=md"


def _panel_id(dashboards: dict[str, dict[str, Any]], uid: str, title: str) -> int:
    for panel in dashboards[uid]["panels"]:
        if panel["title"] == title:
            return int(panel["id"])
    raise KeyError(f"alert links to panel {title!r}, which dashboard {uid} does not have")


def render_rule(rule: Rule, *, datasource_uid: str, collector_url: str,
                dashboards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One rule in the provisioning file shape (``rules_types.go`` AlertRuleV1)."""
    kb_text = {"incidents-dashboard": "each incident's KB entry (LLM incidents dashboard)",
               "collector-readyz": "none: collector operations, see docs/dashboards.md#collector-spooling"
               }.get(rule.runbook, rule.runbook)
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "C",
        "data": [
            {"refId": "A", "relativeTimeRange": {"from": rule.range_s, "to": 0}, "datasourceUid": datasource_uid,
             "model": {"refId": "A", "datasource": {"type": PLUGIN_ID, "uid": datasource_uid}, "editorType": "sql",
                       "format": FORMAT_TABLE, "queryType": "table", "pluginVersion": PLUGIN_VERSION,
                       "rawSql": rule.sql.strip(), "intervalMs": 60000, "maxDataPoints": 43200}},
            {"refId": "B", "datasourceUid": "__expr__",
             "model": {"refId": "B", "datasource": {"type": "__expr__", "uid": "__expr__"}, "type": "reduce",
                       "expression": "A", "reducer": "last", "settings": {"mode": "dropNN"}}},
            {"refId": "C", "datasourceUid": "__expr__",
             "model": {"refId": "C", "datasource": {"type": "__expr__", "uid": "__expr__"}, "type": "threshold",
                       "expression": "B", "conditions": [{"evaluator": {"type": "gt", "params": [rule.threshold]}}]}},
        ],
        "dashboardUid": rule.dashboard_uid,
        "panelId": _panel_id(dashboards, rule.dashboard_uid, rule.panel_title),
        "noDataState": rule.no_data,
        "execErrState": rule.exec_err,
        "for": rule.for_,
        "isPaused": False,
        "annotations": {
            "summary": rule.summary,
            "description": rule.description,
            "runbook_url": _runbook_url(rule.runbook, collector_url),
            "kb_entry": kb_text,
            **rule.extra_annotations,
        },
        "labels": {"component": "streamtriage", **rule.labels},
    }


def render_alert_rules(*, datasource_uid: str = DATASOURCE_UID, collector_url: str,
                       dashboards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "groups": [{
            "orgId": 1,
            "name": GROUP,
            "folder": FOLDER,
            "interval": INTERVAL,
            "rules": [render_rule(r, datasource_uid=datasource_uid, collector_url=collector_url,
                                  dashboards=dashboards) for r in RULES],
        }],
    }


def render_contact_points(webhook_url: str) -> dict[str, Any]:
    """Two example webhook contact points (on-call and team). Adding contact points leaves existing ones alone."""
    return {
        "apiVersion": 1,
        "contactPoints": [
            {"orgId": 1, "name": "streamtriage-oncall", "receivers": [
                {"uid": "streamtriage-oncall-webhook", "type": "webhook", "disableResolveMessage": False,
                 "settings": {"url": webhook_url, "httpMethod": "POST"}}]},
            {"orgId": 1, "name": "streamtriage-team", "receivers": [
                {"uid": "streamtriage-team-webhook", "type": "webhook", "disableResolveMessage": False,
                 "settings": {"url": webhook_url.rstrip("/") + "/team", "httpMethod": "POST"}}]},
        ],
    }


def render_policy() -> dict[str, Any]:
    """An example notification policy: critical pages on-call, everything else goes to the team.

    Provisioning ``policies`` replaces the organisation's whole policy tree, so it is exported only on
    request (``--notification-policy``); on a Grafana that has a tree, add the two routes to it instead.
    """
    return {
        "apiVersion": 1,
        "policies": [{
            "orgId": 1,
            "receiver": "streamtriage-team",
            "group_by": ["grafana_folder", "alertname", "category"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {"receiver": "streamtriage-oncall", "object_matchers": [["component", "=", "streamtriage"],
                                                                         ["severity", "=", "critical"]],
                 "repeat_interval": "1h"},
                {"receiver": "streamtriage-team", "object_matchers": [["component", "=", "streamtriage"]]},
            ],
        }],
    }
