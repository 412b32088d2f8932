"""Dashboards and alerts on data made by the real pipeline, read the way Grafana reads it.

Simulator scenarios run with the real openai SDK under the hooks (``streamtriage.scenario_suite``, its own
process), export over OTLP/HTTP to a ``streamtriage serve`` subprocess, are classified by the
collector's classifier (``POST /api/classify``), and every panel, variable and alert query is then
sent through the collector's read-only ClickHouse endpoint (``--clickhouse-port``), expanded as the
plugin expands it. The failure panels must show the failures the catalogue says were injected.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from streamtriage.dashboards.alerts import render_alert_rules
from streamtriage.dashboards.export import ExportOptions, render_dashboards
from streamtriage.dashboards.macros import QueryContext, Variable, expand_alert_sql, expand_panel_sql
from streamtriage.dashboards.queries import alert_queries, context_for, panel_queries, variable_queries
from streamtriage.simulator.scenarios import get
from tests.conftest import free_port
from tests.support.collector_proc import collector_process

SERVICE = "pipeline-app"
# Healthy controls, cut / stalled streams, truncations, stuck polls, an HTTP error and a client cancel.
# chat-cut-fin runs five times: the incomplete-stream spike alert needs five in ten minutes.
SCENARIOS = [
    "chat-healthy", "chat-healthy-helper", "responses-healthy", "runs-poll-healthy", "vs-file-healthy",
    *["chat-cut-fin"] * 5, "chat-stall-timeout", "responses-cut",
    "chat-length", "responses-incomplete",
    "runs-poll-stuck-in-progress", "vs-file-stuck", "responses-background-stuck",
    "chat-500", "chat-early-break",
]
DASHES = render_dashboards(ExportOptions())
HEALTH, INCIDENTS, RUNS = "streamtriage-stream-health", "streamtriage-incidents", "streamtriage-runs-polling"


@dataclass
class Pipeline:
    client: Any
    runs: list[dict[str, Any]]
    time_from: datetime
    time_to: datetime
    collector: Any


def _wait_stable(client: Any, minimum: int, timeout: float = 20.0) -> int:
    """Call spans stored, once the count stops growing (the writer batches asynchronously)."""
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        n = client.query("SELECT count() FROM otel_traces WHERE LlmSpan = 'call'").result_rows[0][0]
        if n >= minimum and n == last:
            return int(n)
        last = n
        time.sleep(0.3)
    return int(last)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    import clickhouse_connect

    tmp = tmp_path_factory.mktemp("pipeline")
    ch_port = free_port()
    start = datetime.now(timezone.utc)
    with collector_process(tmp, args=["--clickhouse-port", str(ch_port)],
                           env={"STREAMTRIAGE_CLASSIFY_INTERVAL_S": "0"}) as svc:
        deadline = time.monotonic() + 20
        while svc.request("GET", "/readyz")[0] != 200:  # store open: exports are stored, not refused
            assert time.monotonic() < deadline, f"collector never ready:\n{svc.log()[-3000:]}"
            time.sleep(0.2)
        out = tmp / "runs.json"
        proc = subprocess.run([sys.executable, "-m", "streamtriage.scenario_suite", "--collector", svc.url,
                               "--service", SERVICE, "--out", str(out), "--workers", "1", *SCENARIOS],
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs = json.loads(out.read_text())
        assert [r["name"] for r in runs] == SCENARIOS
        client = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port)
        stored = _wait_stable(client, minimum=len(SCENARIOS))
        assert stored >= len(SCENARIOS), f"only {stored} call spans reached the store:\n{svc.log()[-3000:]}"
        status, _, body = svc.request("POST", "/api/classify")
        assert status == 200, body[:500]
        yield Pipeline(client, runs, start - timedelta(minutes=1), datetime.now(timezone.utc) + timedelta(minutes=1),
                       svc)


def rows(p: Pipeline, uid: str, title: str, **selected: Variable) -> list[dict[str, Any]]:
    (q,) = [q for q in panel_queries(DASHES[uid]) if q.title == title]
    ctx = context_for(DASHES[uid], p.time_from, p.time_to, 60.0, selected)
    res = p.client.query(expand_panel_sql(q.sql, ctx))
    return [dict(zip(res.column_names, r, strict=False)) for r in res.result_rows]


def test_every_panel_variable_and_alert_query_runs_on_pipeline_data(pipeline: Pipeline) -> None:
    empty = []
    for _uid, dash in DASHES.items():
        ctx = context_for(dash, pipeline.time_from, pipeline.time_to)
        for q in [*variable_queries(dash), *panel_queries(dash)]:
            if not pipeline.client.query(expand_panel_sql(q.sql, ctx)).result_rows:
                empty.append(q.where)
    doc = render_alert_rules(collector_url="http://c", dashboards=DASHES)
    for q in alert_queries(doc):
        pipeline.client.query(expand_alert_sql(q.sql, QueryContext(pipeline.time_from, pipeline.time_to)))
    # Only panels about the classifier's open-hang labels or long waits may legitimately be empty here,
    # and the precision panel: nobody gave feedback on these labels (tests/dashboards/synthetic.py does);
    # and the relay dashboard (the SDK scenarios relay nothing; tests/relay checks it on relay data).
    allowed = {"Open now", "Open hangs (classifier)", "requires_action", "Hangs", "Polling hangs", "Run and job",
               "Precision per entry (feedback)", "streamtriage-relay"}
    assert [w for w in empty if not any(a in w for a in allowed)] == []


def test_health_breakdown_shows_each_injected_failure(pipeline: Pipeline) -> None:
    by_model = {r["model"]: r for r in rows(pipeline, HEALTH, "By service, model and API kind")}
    for name in ("chat-cut-fin", "chat-stall-timeout", "responses-cut", "chat-500"):
        sc = get(name)
        assert by_model[sc.model]["failure_rate"] == 1.0, name
    assert by_model[get("chat-cut-fin").model]["calls"] == SCENARIOS.count("chat-cut-fin")
    for name in ("chat-cut-fin", "chat-stall-timeout", "responses-cut"):
        assert by_model[get(name).model]["incomplete"] >= 1, name
    for name in ("chat-length", "responses-incomplete"):
        assert by_model[get(name).model]["truncated"] == 1, name
    healthy = by_model[get("chat-healthy").model]
    assert (healthy["failure_rate"], healthy["incomplete"], healthy["truncated"]) == (0, 0, 0)
    outcomes = Counter()
    for r in rows(pipeline, HEALTH, "Calls by outcome"):
        outcomes[r["outcome"]] += r["calls"]
    assert outcomes["transport_error"] >= 6 and outcomes["timeout"] >= 1 and outcomes["http_error"] >= 1


def test_health_stats_match_the_catalogue(pipeline: Pipeline) -> None:
    streams_cut = sum(1 for n in SCENARIOS if get(n).expected_outcome in ("transport_error", "timeout")
                      and get(n).call.endswith("stream"))
    (inc,) = rows(pipeline, HEALTH, "Incomplete streams")
    assert inc["incomplete"] >= streams_cut == 7
    (trunc,) = rows(pipeline, HEALTH, "Truncations")
    assert trunc["truncated"] == 2


def test_incidents_name_the_expected_kb_entries(pipeline: Pipeline) -> None:
    incidents = rows(pipeline, INCIDENTS, "Incidents")
    by_model: dict[str, set[str]] = {}
    for r in incidents:
        by_model.setdefault(r["model"], set()).add(r["KbId"])
    for name in ("chat-cut-fin", "chat-stall-timeout", "chat-length", "responses-incomplete"):
        sc = get(name)
        assert by_model.get(sc.model) == {sc.expected_kb_id}, (name, by_model.get(sc.model))
    assert get("chat-healthy").model not in by_model
    assert sum(1 for r in incidents if r["model"] == get("chat-cut-fin").model) == 5
    assert all(len(r["TraceId"]) == 32 for r in incidents)
    top = {r["KbId"]: r["incidents"] for r in rows(pipeline, INCIDENTS, "Top root causes")}
    assert top["llm/peer-closed-incomplete-chunked-read"] >= 5


def test_incident_links_resolve_to_the_kb_entry_and_the_trace(pipeline: Pipeline) -> None:
    """The KbId link's URL answers with the entry's Markdown; the TraceId link's trace query finds the call."""
    dash = render_dashboards(ExportOptions(collector_url=pipeline.collector.url))[INCIDENTS]
    collector_url = next(v["current"]["value"] for v in dash["templating"]["list"] if v["name"] == "collector_url")
    table = next(p for p in dash["panels"] if p["title"] == "Incidents")
    links = {o["matcher"]["options"]: o["properties"][0]["value"][0] for o in table["fieldConfig"]["overrides"]
             if o["properties"][0]["id"] == "links"}
    incidents = rows(pipeline, INCIDENTS, "Incidents")
    for kb_id in {r["KbId"] for r in incidents if r["KbId"]}:
        url = links["KbId"]["url"].replace("${collector_url}", collector_url).replace("${__value.raw}", kb_id)
        status, headers, body = pipeline.collector.request("GET", url[len(pipeline.collector.url):])
        assert status == 200 and kb_id in body.decode(), (url, status, body[:200])
    cut = next(r for r in incidents if r["model"] == get("chat-cut-fin").model)
    spans = pipeline.client.query(
        """WITH {tid:String} AS __gf_trace_id,
             (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_start,
             (SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_end
           SELECT SpanName, ParentSpanId, StatusCode FROM otel_traces
           WHERE TraceId = __gf_trace_id AND Timestamp >= __gf_trace_start AND Timestamp <= __gf_trace_end""",
        parameters={"tid": cut["TraceId"]}).result_rows
    # The failed call span (a child of the app's own span around the scenario) and its event spans.
    assert any(name.startswith("chat ") and parent != "" and code == "Error" for name, parent, code in spans)
    assert len(spans) > 2


def test_runs_dashboard_lists_the_stuck_objects(pipeline: Pipeline) -> None:
    zero = Variable("hang_after_s", ("0",))
    hung = {(r["api"], r["status"]) for r in rows(pipeline, RUNS, "Hangs currently open", hang_after_s=zero)}
    assert {("assistants.runs", "in_progress"), ("vector_stores.files", "in_progress"),
            ("responses", "queued")} <= hung
    assert all(status != "completed" for _, status in hung)
    final = {r["status"]: r["objects"] for r in rows(pipeline, RUNS, "Final status of runs and jobs")}
    assert final.get("completed", 0) >= 2  # the healthy run and vector-store file
    polls = {(r["api"], r["status"]) for r in rows(pipeline, RUNS, "Time in status")}
    assert ("assistants.runs", "in_progress") in polls


def test_alerts_fire_on_pipeline_data(pipeline: Pipeline) -> None:
    doc = render_alert_rules(collector_url="http://c", dashboards=DASHES)
    rules = {r["uid"]: r for r in doc["groups"][0]["rules"]}

    def firing(uid: str) -> set[tuple[tuple[str, Any], ...]]:
        rule = rules[uid]
        a = rule["data"][0]
        at = datetime.now(timezone.utc)
        ctx = QueryContext(at - timedelta(seconds=a["relativeTimeRange"]["from"]), at)
        res = pipeline.client.query(expand_alert_sql(a["model"]["rawSql"], ctx))
        limit = rule["data"][2]["model"]["conditions"][0]["evaluator"]["params"][0]
        return {tuple((c, v) for c, v in zip(res.column_names, row, strict=False) if isinstance(v, str))
                for row in res.result_rows if row[-1] > limit}

    assert firing("streamtriage-failure-rate") == {(("service", SERVICE), ("provider", "openai"))}
    assert (("kb_id", "llm/peer-closed-incomplete-chunked-read"),) in firing("streamtriage-incomplete-stream-spike")
    assert firing("streamtriage-polling-hang") == set()  # stuck for < 1 s, far below the 10-minute threshold
    assert firing("streamtriage-collector-spooling") == set()  # spans were just stored
