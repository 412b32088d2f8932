"""Every Grafana alert rule's SQL runs on chDB and fires exactly for what was injected.

Grafana evaluates ``A`` (ClickHouse, backend macros only) over the rule's relative time range, then
``B`` = Reduce(last) and ``C`` = Threshold(gt). With table results, each row is one alert instance
and its string columns are the instance labels; :func:`evaluate` does the same here.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from streamtriage.dashboards import thresholds as T
from streamtriage.dashboards.alerts import RULES, render_alert_rules
from streamtriage.dashboards.definitions import stream_health
from streamtriage.dashboards.definitions.common import IS_TRUNCATED
from streamtriage.dashboards.export import ExportOptions, render_dashboards
from streamtriage.dashboards.macros import QueryContext, Variable, expand_alert_sql, expand_panel_sql
from streamtriage.dashboards.queries import context_for

DOC = render_alert_rules(collector_url="http://collector:4318", dashboards=render_dashboards(ExportOptions()))
RENDERED = {r["uid"]: r for r in DOC["groups"][0]["rules"]}


def evaluate(dataset: Any, uid: str, at: datetime) -> dict[tuple[tuple[str, str], ...], float]:
    """Firing instances of rule ``uid`` evaluated at ``at``: labels -> value of B (for values > threshold)."""
    rule = RENDERED[uid]
    query = next(d for d in rule["data"] if d["refId"] == "A")
    rng = query["relativeTimeRange"]
    ctx = QueryContext(at - timedelta(seconds=rng["from"]), at - timedelta(seconds=rng["to"]))
    result = dataset.client.query(expand_alert_sql(query["model"]["rawSql"], ctx))
    threshold = next(d for d in rule["data"] if d["refId"] == "C")["model"]["conditions"][0]["evaluator"]
    assert threshold["type"] == "gt"
    firing = {}
    for row in result.result_rows:
        labels = tuple((c, v) for c, v in zip(result.column_names, row, strict=False) if isinstance(v, str))
        numbers = [v for v in row if isinstance(v, (int, float)) and not isinstance(v, bool)]
        assert len(numbers) == 1, f"{uid}: a table alert query needs exactly one numeric column, got {row}"
        if numbers[0] > threshold["params"][0]:
            firing[labels] = float(numbers[0])
    return firing


def test_every_rule_is_rendered_and_runs(dataset: Any) -> None:
    assert set(RENDERED) == {r.uid for r in RULES}
    for uid in RENDERED:
        evaluate(dataset, uid, dataset.truth.end)


def test_failure_rate_fires_for_the_failing_services_only(dataset: Any) -> None:
    t = dataset.truth
    at = t.end
    window = [c for c in t.calls_log if c.at > at - timedelta(seconds=T.FAILURE_WINDOW_S)]
    calls, failed = Counter(c.service for c in window), Counter(c.service for c in window if c.failed)
    expected = {s for s in calls if calls[s] >= T.FAILURE_MIN_CALLS and failed[s] / calls[s] > T.FAILURE_RATE}
    firing = evaluate(dataset, "streamtriage-failure-rate", at)
    assert {dict(k)["service"] for k in firing} == expected
    assert "checkout-bot" in expected and "search-api" in calls and "search-api" not in expected


def test_incomplete_stream_spike_fires_per_kb_entry(dataset: Any) -> None:
    t = dataset.truth
    at = t.end
    recent = Counter(lb.kb_id for lb in t.labels_log if lb.category == "incomplete_stream"
                     and lb.at > at - timedelta(seconds=T.INCOMPLETE_RECENT_S))
    firing = evaluate(dataset, "streamtriage-incomplete-stream-spike", at)
    assert firing == {(("kb_id", "llm/peer-closed-incomplete-chunked-read"),):
                      float(recent["llm/peer-closed-incomplete-chunked-read"])}
    # An hour later the same incidents are history, not a spike.
    assert evaluate(dataset, "streamtriage-incomplete-stream-spike", at + timedelta(hours=1)) == {}


def test_polling_hang_fires_for_objects_still_polled_past_the_threshold(dataset: Any) -> None:
    t = dataset.truth
    firing = evaluate(dataset, "streamtriage-polling-hang", t.end)
    expected = Counter()
    for api, last_poll in t.hung_last_poll.values():
        if last_poll >= t.end - timedelta(seconds=T.HANG_STILL_POLLED_S):
            expected[api] += 1
    assert {dict(k)["api"]: v for k, v in firing.items()} == dict(expected)
    kb = {dict(k)["api"]: dict(k)["kb_id"] for k in firing}
    assert kb == {"assistants.runs": "llm/assistants-poll-loop-no-deadline",
                  "vector_stores.files": "llm/vector-store-indexing-stuck-or-not-ready"}
    # Ten minutes after the last poll nobody polls them any more: the hang is no longer "open".
    assert evaluate(dataset, "streamtriage-polling-hang", t.end + timedelta(minutes=10)) == {}


def test_truncation_rate_fires_per_model(dataset: Any) -> None:
    t = dataset.truth
    at = t.end
    since = at - timedelta(seconds=T.TRUNCATION_WINDOW_S)
    calls = Counter(c.model for c in t.calls_log if c.at >= since)
    trunc = Counter(c.model for c in t.calls_log if c.truncated and c.at >= since)
    expected = {m for m in trunc if calls[m] >= T.TRUNCATION_MIN_CALLS and trunc[m] / calls[m] > T.TRUNCATION_RATE}
    firing = evaluate(dataset, "streamtriage-truncation-rate", at)
    assert {dict(k)["model"] for k in firing} == expected == {"gpt-4.1"}
    assert all(dict(k)["kb_id"].startswith("llm/") for k in firing)


def test_truncation_alert_counts_what_its_panel_counts(dataset: Any) -> None:
    """The rule links to the stream-health "Truncations" panel: over the same time range, the rule's
    rate per model is that panel's count divided by the "Calls" panel's count for the model."""
    rule = RENDERED["streamtriage-truncation-rate"]
    health = render_dashboards(ExportOptions())[stream_health.UID]
    linked = next(p for p in health["panels"] if p["id"] == rule["panelId"])
    assert linked["title"] == "Truncations"
    assert IS_TRUNCATED in linked["targets"][0]["rawSql"] and IS_TRUNCATED in _alert_sql(rule)
    t = dataset.truth
    ctx = QueryContext(t.start, t.end + timedelta(minutes=1))
    res = dataset.client.query(expand_alert_sql(_alert_sql(rule), ctx))
    rates = {row[res.column_names.index("model")]: row[res.column_names.index("truncation_rate")]
             for row in res.result_rows}
    assert rates and any(rates.values())

    def panel(title: str, model: str) -> Any:
        sql = next(p for p in health["panels"] if p["title"] == title)["targets"][0]["rawSql"]
        pctx = context_for(health, ctx.time_from, ctx.time_to, 60.0,
                           {"model": Variable("model", (model,), multi=True, include_all=True)})
        return dataset.client.query(expand_panel_sql(sql, pctx)).result_rows[0][0]

    for model, rate in rates.items():
        assert rate == pytest.approx(panel("Truncations", model) / panel("Calls", model)), model


def _alert_sql(rule: dict[str, Any]) -> str:
    return next(d for d in rule["data"] if d["refId"] == "A")["model"]["rawSql"]


def test_ingest_stall_fires_only_after_traffic_stops(dataset: Any) -> None:
    t = dataset.truth
    assert evaluate(dataset, "streamtriage-collector-spooling", t.end) == {}
    assert evaluate(dataset, "streamtriage-collector-spooling", t.end + timedelta(minutes=10)) == {(): 1.0}
    # Hours later there is no recent traffic to miss: quiet, not stalled.
    assert evaluate(dataset, "streamtriage-collector-spooling", t.end + timedelta(hours=3)) == {}


@pytest.mark.parametrize("uid", sorted(RENDERED))
def test_rule_annotations_name_the_kb_entry_or_where_to_find_it(uid: str) -> None:
    ann = RENDERED[uid]["annotations"]
    assert ann["kb_entry"] and ann["runbook_url"]
    if "{{ $labels.kb_id }}" in ann["kb_entry"]:
        assert ann["runbook_url"] == "http://collector:4318/api/kb/{{ $labels.kb_id }}?format=md"
        sql = next(d for d in RENDERED[uid]["data"] if d["refId"] == "A")["model"]["rawSql"]
        assert "kb_id" in sql  # the label the template reads is a column of the query
