"""``/metrics`` must not count an abandoned, still-polling run as a completed call (issue 15).

The real openai SDK, instrumented, runs the app's own ``retrieve()`` loop on a run the simulator keeps
``in_progress``; the app gives up. The ``runs.create`` call returned normally (``queued``), so its
span's outcome is ``completed``, but the run it started never ended: /metrics says ``pending``.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.collector_proc import collector_process


def _metrics(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")}


def test_abandoned_run_is_pending_not_completed(tmp_path: Path) -> None:
    with collector_process(tmp_path) as svc:
        out = subprocess.run([sys.executable, "-m", "streamtriage.scenario_suite", "--collector", svc.url,
                              "--out", str(tmp_path / "runs.json"), "--service", "bot", "runs-poll-stuck-in-progress"],
                             capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr
        deadline = time.monotonic() + 30
        while True:
            m = _metrics(svc.request("GET", "/metrics")[2].decode())
            runs = {k: v for k, v in m.items()
                    if k.startswith("streamtriage_calls_total") and 'api="assistants.runs"' in k}
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert runs, "the run's call span never reached /metrics"
    assert not [k for k in runs if 'outcome="completed"' in k], runs
    assert sum(v for k, v in runs.items() if 'outcome="pending"' in k) == 1, runs
