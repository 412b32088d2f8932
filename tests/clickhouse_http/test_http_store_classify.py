"""The collector's full ingest + classify path on the production store path: simulator scenarios with
the real SDK -> hook -> OTLP -> ``streamtriage serve --store http://...`` -> clickhouse-connect over
HTTP -> the ClickHouse stand-in -> ``POST /api/classify`` -> labels read back. A representative
subset of the accuracy test's scenarios (tests/classifier/test_classifier_accuracy.py runs all of
them on chDB); each must get exactly its expected label, healthy ones none."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import clickhouse_connect
import pytest

from streamtriage.simulator.scenarios import BY_NAME
from tests.classifier.test_classifier_accuracy import THRESHOLDS, _ns
from tests.conftest import REPO
from tests.support.clickhouse_standin import ClickHouseStandin
from tests.support.collector_proc import collector_process

SCENARIOS = ["chat-healthy", "chat-cut-fin", "chat-length", "chat-content-filter", "chat-stall-timeout",
             "responses-no-terminal", "runs-poll-stuck-queued", "chat-early-break"]
DB = "classify_http"


@pytest.mark.timeout(300)
def test_scenarios_are_labelled_on_the_http_store(tmp_path: Path) -> None:
    with ClickHouseStandin(tmp_path / "clickhouse") as server, \
            collector_process(tmp_path, store=f"{server.url}/{DB}", env=THRESHOLDS) as svc:
        out = tmp_path / "runs.json"
        proc = subprocess.run([sys.executable, str(REPO / "tests" / "classifier" / "scenario_runner.py"),
                               "--collector", svc.url, "--out", str(out), *SCENARIOS],
                              cwd=REPO, capture_output=True, text=True, timeout=240,
                              env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs = json.loads(out.read_text())
        assert sorted(r["name"] for r in runs["runs"]) == sorted(SCENARIOS)
        time.sleep(0.3)
        status, _, body = svc.request("POST", "/api/classify", timeout=120)
        assert status == 200, body[:500]
        labels = svc.get_json("/api/incidents?since=1h&limit=10000")
        # the labels really live in the server store, written over HTTP
        direct = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, database=DB)
        stored = direct.command("SELECT count() FROM streamtriage_labels FINAL WHERE IsDeleted = 0")
        assert stored == len(labels) > 0
    wrong = []
    for run in runs["runs"]:
        got = [lb for lb in labels if run["start_ns"] - 1000 <= _ns(lb["Timestamp"]) <= run["end_ns"]]
        sc = BY_NAME[run["name"]]
        expected = [] if sc.is_healthy(runs["sdk"]) else [tuple(sc.expected_label(runs["sdk"]))]
        found = sorted({(lb["KbId"] or None, lb["Category"] or None) for lb in got})
        if found != expected:
            wrong.append((run["name"], expected, found))
    assert wrong == []
