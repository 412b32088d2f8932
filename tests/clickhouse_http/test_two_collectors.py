"""Two collectors on one server store (the ClickHouse stand-in over HTTP) split the classification
work: each reports itself as one of two replicas with its own shard, every failed call is labelled
exactly once (one row, no duplicate writes), and the labels are the ones a single collector gives
(the scenarios' expected labels)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import clickhouse_connect
import pytest

from streamtriage.scenario_suite import ScenarioRun, match
from tests.conftest import REPO
from tests.support.clickhouse_standin import ClickHouseStandin
from tests.support.collector_proc import CollectorProcess, collector_process

SCENARIOS = ["chat-healthy", "chat-cut-fin", "chat-cut-rst", "chat-length", "chat-content-filter",
             "chat-finish-absent", "responses-cut", "responses-no-terminal", "chat-429", "chat-500"]
DB = "two_collectors"
# Default thresholds: none of these scenarios hangs, so no call is labelled while open and re-labelled later.
ENV = {"STREAMTRIAGE_CLASSIFY_INTERVAL_S": "0.5"}


def _gauge(svc: CollectorProcess, name: str) -> float:
    status, _, body = svc.request("GET", "/metrics")
    assert status == 200
    line = next(ln for ln in body.decode().splitlines() if ln.startswith(f"streamtriage_{name} "))
    return float(line.split()[1])


@pytest.mark.timeout(300)
def test_two_collectors_split_the_calls_and_label_each_once(tmp_path: Path) -> None:
    with ClickHouseStandin(tmp_path / "clickhouse") as server, \
            collector_process(tmp_path, name="a", store=f"{server.url}/{DB}", env=ENV) as a, \
            collector_process(tmp_path, name="b", store=f"{server.url}/{DB}", env=ENV) as b:
        deadline = time.monotonic() + 30
        while {(_gauge(a, "classifier_replicas"), _gauge(b, "classifier_replicas"))} != {(2.0, 2.0)}:
            assert time.monotonic() < deadline, "the two collectors never saw each other"
            time.sleep(0.2)
        assert {_gauge(a, "classifier_shard"), _gauge(b, "classifier_shard")} == {0.0, 1.0}
        out = tmp_path / "runs.json"
        proc = subprocess.run([sys.executable, "-m", "streamtriage.scenario_suite", "--collector", a.url,
                               "--out", str(out), "--workers", "1", *SCENARIOS],
                              cwd=REPO, capture_output=True, text=True, timeout=240,
                              env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs = [ScenarioRun(**r) for r in json.loads(out.read_text())]
        expected = sum(1 for v in match(runs, []) if v.expected is not None)
        direct = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, database=DB)
        deadline = time.monotonic() + 60  # only the background loops classify: nobody calls /api/classify
        while direct.command("SELECT count() FROM streamtriage_labels FINAL WHERE IsDeleted = 0") < expected:
            assert time.monotonic() < deadline, "the replicas did not label every failed call"
            time.sleep(0.5)
        time.sleep(2)  # a few more passes by both replicas: nothing may be written twice
        rows = direct.query("SELECT TraceId, SpanId, KbId, Category FROM streamtriage_labels "
                            "WHERE IsDeleted = 0").result_rows
        labels = [{"trace_id": t, "span_id": s, "kb_id": k, "category": c} for t, s, k, c in rows]
    keys = [(t, s) for t, s, _, _ in rows]
    assert len(keys) == len(set(keys)) == expected, "each failed call labelled once, by one replica"
    wrong = [(v.run.name, v.expected, v.found) for v in match(runs, labels) if not v.ok]
    assert wrong == []
