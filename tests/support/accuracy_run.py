"""Run scenarios end to end on several SDK lines at once against one collector and collect the labels.

Each SDK line is an interpreter (the main one, the virtualenvs of tests/support/sdk_lines.py) running ``python -m
streamtriage.scenario_suite`` (the runner the demo uses) with the hook exporting to the collector;
labels are then fetched after a classification pass and matched to runs by trace id.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from streamtriage.scenario_suite import SHORT_THRESHOLDS, ScenarioRun, Verdict, classify_and_fetch, match
from tests.support.collector_proc import collector_process
from tests.support.sdk_lines import OLDER_LINES, REPO, matrix_disabled, python_for

__all__ = ["REPO", "pythons", "run_lines"]


def pythons(majors: Sequence[str] | None = None) -> dict[str, str]:
    """The SDK lines to run: this interpreter (``sdk3``) and the older lines' virtualenvs (``sdk1``...)."""
    found = {"sdk3": sys.executable}
    if not matrix_disabled():
        found.update({f"sdk{m}": str(python_for(m)) for m in sorted(OLDER_LINES) if majors is None or m in majors})
    return found


def run_lines(tmp_path: Path, modes: str, names: Sequence[str] = (), timeout: float = 400,
              majors: Sequence[str] | None = None) -> dict[str, list[Verdict]]:
    """Verdicts per SDK line (``sdk3``, ``sdk1``, ...) for the named scenarios (all when empty)."""
    with collector_process(tmp_path, env=SHORT_THRESHOLDS) as svc:
        procs = {}
        for tag, python in pythons(majors).items():
            out = tmp_path / f"runs-{tag}.json"
            procs[tag] = (out, subprocess.Popen(
                [python, "-m", "streamtriage.scenario_suite", "--collector", svc.url, "--out", str(out),
                 "--service", f"accuracy-{tag}", "--modes", modes, "--workers", "1", *names], cwd=REPO,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100"}))
        runs: dict[str, list[ScenarioRun]] = {}
        for tag, (out, proc) in procs.items():
            try:
                _, err = proc.communicate(timeout=timeout)
            finally:
                if proc.poll() is None:
                    proc.kill()
            assert proc.returncode == 0, err[-3000:]
            runs[tag] = [ScenarioRun(**r) for r in json.loads(out.read_text())]
        labels = classify_and_fetch(svc.url)
    return {tag: match(tag_runs, labels) for tag, tag_runs in runs.items()}
