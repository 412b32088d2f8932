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
from pathlib import Path

import clickhouse_connect
import pytest

from streamtriage.scenario_suite import SHORT_THRESHOLDS, ScenarioRun, classify_and_fetch, match
from tests.conftest import REPO
from tests.support.clickhouse_standin import ClickHouseStandin
from tests.support.collector_proc import collector_process

SCENARIOS = ["chat-healthy", "chat-cut-fin", "chat-length", "chat-content-filter", "chat-stall-timeout",
             "responses-no-terminal", "runs-poll-stuck-queued", "chat-early-break"]
DB = "classify_http"


@pytest.mark.timeout(300)
def test_scenarios_are_labelled_on_the_http_store(tmp_path: Path) -> None:
    with ClickHouseStandin(tmp_path / "clickhouse") as server, \
            collector_process(tmp_path, store=f"{server.url}/{DB}", env=SHORT_THRESHOLDS) as svc:
        out = tmp_path / "runs.json"
        proc = subprocess.run([sys.executable, "-m", "streamtriage.scenario_suite", "--collector", svc.url,
                               "--out", str(out), *SCENARIOS],
                              cwd=REPO, capture_output=True, text=True, timeout=240,
                              env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs = [ScenarioRun(**r) for r in json.loads(out.read_text())]
        assert sorted(r.name for r in runs) == sorted(SCENARIOS)
        labels = classify_and_fetch(svc.url)
        # the labels really live in the server store, written over HTTP
        direct = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, database=DB)
        stored = direct.command("SELECT count() FROM streamtriage_labels FINAL WHERE IsDeleted = 0")
        assert stored == len(labels) > 0
    wrong = [(v.run.name, v.expected, v.found) for v in match(runs, labels) if not v.ok]
    assert wrong == []
