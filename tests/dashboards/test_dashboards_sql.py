"""Every panel's SQL, expanded the way the plugin expands it, runs on chDB and shows the injected data.

The data set (``dataset`` fixture) knows what it injected; the failure panels must show exactly
those failures, and the filters must narrow the result the way a user selecting a value expects.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from streamtriage.dashboards.definitions import DASHBOARDS
from streamtriage.dashboards.export import ExportOptions, render_dashboards
from streamtriage.dashboards.macros import Variable, expand_panel_sql
from streamtriage.dashboards.queries import context_for, panel_queries, variable_queries

DASHES = render_dashboards(ExportOptions())
# The synthetic data set has no relays; the relay dashboard's queries are run on real relay data
# (example app under uvicorn) in tests/relay/test_relay_e2e.py.
ALL_QUERIES = [(uid, q) for uid, d in DASHES.items() if uid != "streamtriage-relay"
               for q in [*variable_queries(d), *panel_queries(d)]]


def run(dataset: Any, uid: str, sql: str, **selected: Variable) -> list[dict[str, Any]]:
    ctx = context_for(DASHES[uid], dataset.time_from, dataset.time_to, 60.0, selected)
    result = dataset.client.query(expand_panel_sql(sql, ctx))
    return [dict(zip(result.column_names, row, strict=False)) for row in result.result_rows]


def panel(dataset: Any, uid: str, title: str, **selected: Variable) -> list[dict[str, Any]]:
    matches = [q for q in panel_queries(DASHES[uid]) if q.title == title]
    assert len(matches) == 1, f"{uid}: no single panel titled {title!r}"
    return run(dataset, uid, matches[0].sql, **selected)


def one(dataset: Any, uid: str, title: str, **selected: Variable) -> Any:
    rows = panel(dataset, uid, title, **selected)
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return next(iter(rows[0].values()))


def pick(name: str, *values: str) -> Variable:
    return Variable(name, values, multi=True, include_all=True)


HEALTH, INCIDENTS, RUNS, _RELAY = (d for d in DASHBOARDS)


@pytest.mark.parametrize("uid, query", ALL_QUERIES, ids=[q.where for _, q in ALL_QUERIES])
def test_every_query_runs_and_returns_rows(dataset: Any, uid: str, query: Any) -> None:
    rows = run(dataset, uid, query.sql)
    assert rows, f"{query.where} returned no rows on a data set that has data for it"
    if query.fmt == 0:  # time series: a time column first, ordered
        times = [next(iter(r.values())) for r in rows]
        assert times == sorted(times)


def test_variables_list_what_was_ingested(dataset: Any) -> None:
    t = dataset.truth
    values = {q.title: {next(iter(r.values())) for r in run(dataset, HEALTH, q.sql)}
              for q in variable_queries(DASHES[HEALTH])}
    # the synthetic calls all come from the openai hook (gen_ai.provider.name = openai)
    assert values == {"provider": {"openai"}, "service": t.services, "model": t.models, "api": t.apis}


def test_health_stats_show_the_injected_failures(dataset: Any) -> None:
    t = dataset.truth
    assert one(dataset, HEALTH, "Calls") == t.calls
    assert one(dataset, HEALTH, "Failure rate") == pytest.approx(t.failed / t.calls)
    assert one(dataset, HEALTH, "Incomplete streams") == t.incomplete
    assert one(dataset, HEALTH, "Truncations") == t.truncated
    assert one(dataset, HEALTH, "Polling hangs") == len(t.hung_objects) > 0


def test_health_failure_timeseries_add_up_to_the_injected_counts(dataset: Any) -> None:
    t = dataset.truth
    kinds: Counter[str] = Counter()
    for row in panel(dataset, HEALTH, "Incomplete streams, truncations and polling hangs"):
        kinds[row["kind"]] += row["n"]
    assert kinds["incomplete stream"] == t.incomplete and kinds["truncation"] == t.truncated
    assert kinds["polling hang"] > 0
    outcomes: Counter[str] = Counter()
    for row in panel(dataset, HEALTH, "Calls by outcome"):
        outcomes[row["outcome"]] += row["calls"]
    assert sum(outcomes.values()) == t.calls and outcomes["transport_error"] > 0 and outcomes["timeout"] == 1
    rates = panel(dataset, HEALTH, "Failure rate by category")
    assert {r["category"] for r in rates} == set(t.categories)
    assert all(0 < r["failure_rate"] <= 1 for r in rates)


def test_health_filters_narrow_to_the_selection(dataset: Any) -> None:
    t = dataset.truth
    svc = "search-api"
    assert one(dataset, HEALTH, "Calls", service=pick("service", svc)) == t.per_service_calls[svc]
    assert one(dataset, HEALTH, "Failure rate", service=pick("service", svc)) == 0
    rows = panel(dataset, HEALTH, "By service, model and API kind", service=pick("service", "checkout-bot", svc))
    assert {r["service"] for r in rows} == {"checkout-bot", svc}
    rows = panel(dataset, HEALTH, "By service, model and API kind", model=pick("model", "gpt-4.1"),
                 api=pick("api", "chat.completions"))
    assert [(r["model"], r["api"], r["truncated"]) for r in rows] == [("gpt-4.1", "chat.completions", 2)]


def test_latency_panels_reflect_the_stall(dataset: Any) -> None:
    gaps = panel(dataset, HEALTH, "Largest gap between events")
    assert max(r["max_gap"] for r in gaps) == 30000.0  # the stalled responses stream
    ttfe = panel(dataset, HEALTH, "Time to first event")
    assert all(0 < r["p50"] <= r["p95"] <= r["p99"] for r in ttfe)


def test_incidents_table_lists_every_live_label_and_no_withdrawn_one(dataset: Any) -> None:
    t = dataset.truth
    assert one(dataset, INCIDENTS, "Classified incidents") == sum(t.labels.values())
    rows = panel(dataset, INCIDENTS, "Incidents")
    assert Counter(r["KbId"] for r in rows) == t.labels
    assert not {r["KbId"] for r in rows} & t.withdrawn_kb_ids
    assert sum(r["open"] for r in rows) == t.open_labels
    assert t.failed_trace_ids <= {r["TraceId"] for r in rows}
    top = panel(dataset, INCIDENTS, "Top root causes")
    assert {r["KbId"]: r["incidents"] for r in top} == dict(t.labels)
    assert top[0]["KbId"] == t.labels.most_common(1)[0][0]
    by_cat: Counter[str] = Counter()
    for r in panel(dataset, INCIDENTS, "Incidents by category"):
        by_cat[r["category"]] += r["incidents"]
    assert by_cat == t.categories


def test_precision_per_entry_from_feedback(dataset: Any) -> None:
    """The synthetic feedback confirms one peer-closed label and marks one output-cap label wrong."""
    rows = {r["kb_id"]: r for r in panel(dataset, INCIDENTS, "Precision per entry (feedback)")}
    assert {k: (r["confirmed"], r["wrong"], r["precision"]) for k, r in rows.items()} == {
        "llm/peer-closed-incomplete-chunked-read": (1, 0, 1.0), "llm/finish-reason-length-output-cap": (0, 1, 0.0)}
    nobody = panel(dataset, INCIDENTS, "Precision per entry (feedback)", service=pick("service", "search-api"))
    assert nobody == []


def test_incidents_category_filter(dataset: Any) -> None:
    t = dataset.truth
    cat = Variable("category", ("truncation",), multi=True, include_all=True)
    assert one(dataset, INCIDENTS, "Classified incidents", category=cat) == t.categories["truncation"]
    rows = panel(dataset, INCIDENTS, "Incidents", category=cat)
    assert len(rows) == t.categories["truncation"] and {r["category"] for r in rows} == {"truncation"}


def test_incident_trace_link_opens_the_call_in_the_plugin_trace_view(dataset: Any) -> None:
    """The link uses the plugin's trace-ID mode; its generated SQL (lookup table + trace id) finds the call."""
    dash = DASHES[INCIDENTS]
    table = next(p for p in dash["panels"] if p["title"] == "Incidents")
    links = {ov["matcher"]["options"]: ov["properties"][0]["value"][0]
             for ov in table["fieldConfig"]["overrides"] if ov["properties"][0]["id"] == "links"}
    meta = links["TraceId"]["internal"]["query"]["builderOptions"]["meta"]
    assert meta["isTraceIdMode"] and meta["traceId"] == "${__value.raw}"
    assert links["KbId"]["url"] == "${collector_url}/api/kb/${__value.raw}?format=md"
    trace_id = next(r["TraceId"] for r in panel(dataset, INCIDENTS, "Incidents") if r["outcome"] == "transport_error")
    # The shape of sqlGenerator.generateTraceIdQuery with the otel_traces_trace_id_ts lookup table.
    rows = dataset.client.query(
        """WITH {tid:String} AS __gf_trace_id,
             (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_start,
             (SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_end
           SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, SpanName AS operationName,
                  if(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) AS statusCode
           FROM otel_traces
           WHERE traceID = __gf_trace_id AND Timestamp >= __gf_trace_start AND Timestamp <= __gf_trace_end""",
        parameters={"tid": trace_id}).result_rows
    assert any(r[4] == 2 and r[2] == "" for r in rows)  # the failed call span is the root, with ERROR status
    assert len(rows) > 1  # and its event spans come with it


def test_runs_dashboard_shows_the_hung_objects_and_waits(dataset: Any) -> None:
    t = dataset.truth
    hung = panel(dataset, RUNS, "Hangs currently open")
    assert {r["object_id"] for r in hung} == t.hung_objects
    assert all(r["open_for_s"] >= 600 for r in hung)
    assert one(dataset, RUNS, "Hangs open now") == len(t.hung_objects)
    assert one(dataset, RUNS, "Open hangs (classifier)") == t.open_labels
    assert one(dataset, RUNS, "requires_action wait (max)") == pytest.approx(t.requires_action_wait_s)
    statuses = {r["status"]: r["objects"] for r in panel(dataset, RUNS, "Final status of runs and jobs")}
    assert statuses.get("in_progress") == len(t.hung_objects) and statuses.get("completed", 0) >= 2
    per_api = {r["api"]: r for r in panel(dataset, RUNS, "Polls per run")}
    assert {a: (r["objects"], r["still_open"]) for a, r in per_api.items()} == {
        "assistants.runs": (2, 1), "vector_stores.files": (1, 1), "responses": (1, 0)}
    assert per_api["assistants.runs"]["max_polls"] == max(r["polls"] for r in hung)


def test_hang_threshold_variable_is_interpolated_raw(dataset: Any) -> None:
    """A single-value variable goes in unquoted: raising 'Hang after' above the file's 720 s drops it."""
    t = dataset.truth
    hung = panel(dataset, RUNS, "Hangs currently open", hang_after_s=Variable("hang_after_s", ("1000",)))
    assert {r["object_id"] for r in hung} == {"run_hang"} and "file_stuck" in t.hung_objects


def test_provider_filter_narrows_calls_and_incidents(dataset: Any) -> None:
    """The provider variable (gen_ai.provider.name; labels: by API kind) filters spans and labels alike."""
    t = dataset.truth
    openai_ = pick("provider", "openai")
    anthropic_ = pick("provider", "anthropic")
    assert one(dataset, HEALTH, "Calls", provider=openai_) == one(dataset, HEALTH, "Calls") > 0
    assert one(dataset, HEALTH, "Calls", provider=anthropic_) == 0  # the synthetic data is OpenAI only
    assert one(dataset, INCIDENTS, "Classified incidents", provider=openai_) == sum(t.categories.values())
    assert one(dataset, INCIDENTS, "Classified incidents", provider=anthropic_) == 0
