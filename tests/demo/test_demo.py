"""``streamtriage demo`` as a newcomer runs it: a subprocess, its exit code, its table, its data."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from streamtriage.scenario_suite import SHORT_THRESHOLDS, catalogue

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_demo_labels_every_scenario_and_exits_zero(tmp_path: Path) -> None:
    data = tmp_path / "data"
    summary = tmp_path / "demo.json"
    proc = subprocess.run(
        [sys.executable, "-m", "streamtriage.cli", "demo", "--data-dir", str(data), "--json-out", str(summary)],
        cwd=tmp_path, capture_output=True, text=True, timeout=540, env={**os.environ, "COLUMNS": "250"},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "what was found" in out and "expected?" in out and "all " in out

    runs = json.loads(summary.read_text())
    major = int(openai.__version__.split(".")[0])
    expected_names = {s.name for s in catalogue() if s.min_sdk <= major}
    for mode in ("sync", "async"):
        seen = {r["name"] for r in runs if r["mode"] == mode}
        assert seen == expected_names, f"{mode}: missing {sorted(expected_names - seen)}"
    for r in runs:
        assert r["ok"], r
        if r["expected"] is None:
            assert r["found"] == []
        else:
            assert r["found"] == [r["expected"]]
            assert r["expected"][0] is None or r["expected"][0] in out  # the table shows the kb id

    # The data stays for exploring afterwards: with no collector running, `incidents` opens the store
    # (and classifies first, so it gets the thresholds the demo's collector ran with).
    listed = subprocess.run(
        [sys.executable, "-m", "streamtriage.cli", "incidents", "--store", f"chdb://{data}", "--since", "1h",
         "--limit", "10000", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=180,
        env={**os.environ, **SHORT_THRESHOLDS})
    assert listed.returncode == 0, listed.stderr[-3000:]
    traces = {row["trace_id"] for row in json.loads(listed.stdout)}
    failed = {r["trace_id"] for r in runs if r["expected"] is not None}
    assert failed <= traces, f"{len(failed - traces)} failed runs missing from `streamtriage incidents`"
