"""End to end accuracy: every simulator scenario, real SDK -> hook -> OTLP -> collector -> chDB ->
classifier, must get its expected label; healthy scenarios must get none.

Prints accuracy per expected category and a confusion table (run with ``-s`` to see it). Thresholds
are set short through the collector's environment, as an operator would for their own limits; the
proxy limit is the simulated proxy's 0.3 s wall-clock cut.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from streamtriage.simulator.scenarios import BY_NAME
from tests.support.collector_proc import collector_process

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
THRESHOLDS = {
    "STREAMTRIAGE_STALL_MS": "200", "STREAMTRIAGE_POLL_HANG_MS": "100", "STREAMTRIAGE_REQUIRES_ACTION_MS": "100",
    "STREAMTRIAGE_INDEXING_MS": "100", "STREAMTRIAGE_BACKGROUND_MS": "100", "STREAMTRIAGE_BUFFERED_TTFE_MS": "2000",
    "STREAMTRIAGE_PROXY_LIMIT_MS": "300", "STREAMTRIAGE_PROXY_LIMIT_SLACK_MS": "50",
    "STREAMTRIAGE_CLASSIFY_INTERVAL_S": "0",
}


def _ns(ts: str) -> int:
    dt = datetime.fromisoformat(ts)
    dt = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


VENV1_PY = REPO / ".venv-openai1" / "bin" / "python"


def run_accuracy(tmp_path: Path, pythons: dict[str, str]) -> dict[str, tuple[str, list[dict]]]:
    """Run every scenario once per SDK line (concurrently, one service name each) against one collector."""
    with collector_process(tmp_path, env=THRESHOLDS) as svc:
        procs = {}
        for tag, python in pythons.items():
            out = tmp_path / f"runs-{tag}.json"
            mode = "async" if tag.endswith("-async") else "sync"
            procs[tag] = (out, subprocess.Popen(
                [python, str(HERE / "scenario_runner.py"), "--collector", svc.url, "--out", str(out),
                 "--service", f"accuracy-{tag}", "--mode", mode], cwd=REPO, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True, env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100"}))
        runs_by_tag = {}
        for tag, (out, proc) in procs.items():
            try:
                _, err = proc.communicate(timeout=400)
            finally:
                if proc.poll() is None:
                    proc.kill()
            assert proc.returncode == 0, err[-3000:]
            runs_by_tag[tag] = json.loads(out.read_text())
        for _ in range(2):  # a second pass picks up spans the writer was still inserting during the first
            time.sleep(0.5)
            status, _, body = svc.request("POST", "/api/classify", timeout=120)
            assert status == 200, body[:500]
        labels = svc.get_json("/api/incidents?since=1h&limit=10000")
    return {tag: (runs["sdk"], _match(runs, [lb for lb in labels if lb["ServiceName"] == runs["service"]]))
            for tag, runs in runs_by_tag.items()}


def _match(runs: dict, labels: list[dict]) -> list[dict]:
    results = []
    for run in runs["runs"]:
        got = [lb for lb in labels if run["start_ns"] - 1000 <= _ns(lb["Timestamp"]) <= run["end_ns"]]
        sc = BY_NAME[run["name"]]
        healthy = sc.is_healthy(runs["sdk"])
        exp = None if healthy else sc.expected_label(runs["sdk"])
        found = sorted({(lb["KbId"] or None, lb["Category"] or None) for lb in got})
        results.append({"name": sc.name, "expected": exp, "found": found,
                        "ok": (found == [] if healthy else found == [tuple(exp)]),
                        "confidence": [lb["Confidence"] for lb in got],
                        "evidence": [lb["Evidence"] for lb in got]})
    return results


def report(sdk: str, results: list[dict]) -> str:
    per_cat: dict[str, list[bool]] = defaultdict(list)
    confusion: Counter = Counter()
    for r in results:
        cat = "healthy" if r["expected"] is None else (r["expected"][1] or "unclassified")
        per_cat[cat].append(r["ok"])
        got = "none" if not r["found"] else ",".join(sorted((f[1] or "unclassified") for f in r["found"]))
        confusion[(cat, got)] += 1
    lines = [f"classifier accuracy, openai {sdk}: {sum(r['ok'] for r in results)}/{len(results)} scenarios", "",
             f"{'expected category':<22}{'scenarios':>10}{'correct':>9}{'accuracy':>10}"]
    for cat in sorted(per_cat):
        oks = per_cat[cat]
        lines.append(f"{cat:<22}{len(oks):>10}{sum(oks):>9}{sum(oks) / len(oks):>10.0%}")
    lines += ["", f"{'expected':<22}{'labelled as':<30}{'count':>6}"]
    for (exp, got), n in sorted(confusion.items()):
        lines.append(f"{exp:<22}{got:<30}{n:>6}")
    bad = [r for r in results if not r["ok"]]
    if bad:
        lines += ["", "mislabelled:"] + [f"  {r['name']}: expected {r['expected']}, got {r['found']}\n    evidence: "
                                         f"{r['evidence']}" for r in bad]
    return "\n".join(lines)


@pytest.mark.timeout(600)
def test_every_scenario_gets_its_expected_label(tmp_path: Path) -> None:
    """openai 3.x in this interpreter, and openai 1.x from .venv-openai1 (scripts/sdk-matrix.sh) when built;
    the sync driver by default, ``STREAMTRIAGE_ACCURACY_ASYNC=1`` adds the async driver for both."""
    pythons = {"sdk3": sys.executable}
    if VENV1_PY.exists() and not os.environ.get("STREAMTRIAGE_NO_SDK_MATRIX"):
        pythons["sdk1"] = str(VENV1_PY)
    if os.environ.get("STREAMTRIAGE_ACCURACY_ASYNC"):
        pythons.update({f"{tag}-async": py for tag, py in list(pythons.items())})
    texts, ok = [], True
    for tag, (sdk, results) in run_accuracy(tmp_path, pythons).items():
        texts.append(report(sdk + (" (async driver)" if tag.endswith("-async") else ""), results))
        ok = ok and all(r["ok"] for r in results)
    text = "\n\n".join(texts)
    print("\n" + text)
    (REPO / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "results" / "classifier_accuracy.txt").write_text(text + "\n")
    assert ok, text
