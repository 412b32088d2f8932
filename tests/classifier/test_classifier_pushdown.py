"""The SQL pushdown of rule predicates is a superset: a full pass (which rules calls out inside
ClickHouse) labels exactly the calls that evaluating every record in Python labels."""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
from classifier_spans import open_db

from streamtriage.classifier.assemble import iter_records
from streamtriage.classifier.engine import Engine
from streamtriage.classifier.matchers import to_sql
from streamtriage.classifier.service import Classifier
from streamtriage.classifier.thresholds import Thresholds

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_classifier.py"


def _gen_sql():
    spec = importlib.util.spec_from_file_location("bench_classifier", BENCH)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod.gen_sql


@pytest.fixture
def db(chdb_path, fresh_database):
    client = open_db(chdb_path, fresh_database)
    yield client, fresh_database
    client.command(f"DROP DATABASE IF EXISTS `{fresh_database}`")


def test_full_pass_with_pushdown_labels_what_python_alone_labels(db) -> None:
    client, name = db
    t_base = time.time_ns() - 60_000_000_000
    client.command(_gen_sql()(name, 0, 3000), parameters={"t_base": t_base})
    th = Thresholds({"stall_ms": 5000})
    clf = Classifier(client, name, thresholds=th)
    res = clf.full(since_ns=t_base - 1, write=True)
    assert res.covered == 3000 and 0 < res.records < 3000  # most healthy calls never left ClickHouse
    engine = Engine(thresholds=th)
    expected = {}
    for rec in iter_records(client, name, t_base - 1, time.time_ns()):
        lb = engine.classify(rec)
        if lb is not None:
            expected[(rec["trace_id"], rec["span_id"])] = lb.kb_id
    rows = client.query("SELECT TraceId, SpanId, KbId FROM streamtriage_labels FINAL WHERE IsDeleted = 0").result_rows
    assert {(t, s): k for t, s, k in rows} == expected
    kinds = set(expected.values())
    assert {"llm/peer-closed-incomplete-chunked-read", "llm/finish-reason-length-output-cap",
            "llm/content-filter-stop", "llm/keyerror-finish-reason-parser", "llm/rate-limit-exceeded"} <= kinds


def test_pushdown_translation_is_conservative() -> None:
    th = {"stall_ms": 1000.0}
    # translatable facts become SQL; what a call span cannot tell becomes TRUE; `not` only when exact
    assert to_sql({"outcome": ["timeout", "error"]}, th, th) == ("(LlmOutcome IN ('timeout', 'error'))", True)
    assert to_sql({"events": {"contains": ["error"]}}, th, th)[0] == "1"
    assert to_sql({"not": {"events": {"first": "error"}}}, th, th)[0] == "1"
    assert to_sql({"not": {"outcome": "completed"}}, th, th) == ("NOT (LlmOutcome IN ('completed'))", True)
    assert to_sql({"outcome": "timeout", "terminal_seen": False}, th, th) == (
        "((LlmOutcome IN ('timeout')) AND (LlmTerminalSeen IN (0)))", True)
    assert to_sql({"any": [{"outcome": "timeout"}, {"poll_last_status": "queued"}]}, th, th)[0] == "1"
    assert to_sql({"ttfe_ms": {"gt": "$stall_ms"}}, th, th)[0] == "LlmTtfeMs > 1000.0"
    assert to_sql({"open": True}, th, th)[0] == "(0)"
    sql = Engine().prefilter_sql()
    assert sql != "1" and "LlmOutcome IN" in sql
