"""``streamtriage demo``'s default output fits the terminal (80 and 120 columns): what was found first,
then one row per scenario whose label says what it means (issue 15). A small subset of scenarios:
a hang, two request-level failures and a healthy run, run for real; the wording of the labels no
shipped scenario produces any more (unclassified, category only) is checked on built verdicts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SUBSET = ["runs-poll-stuck-in-progress", "chat-drop", "chat-429", "chat-healthy"]


def _demo(tmp_path: Path, columns: int, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [a for name in SUBSET for a in ("-s", name)]
    return subprocess.run([sys.executable, "-m", "streamtriage.cli", "demo", "--data-dir", str(tmp_path / "data"),
                           "--modes", "sync", *args, *extra], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": str(columns)})


@pytest.mark.timeout(600)
@pytest.mark.parametrize("columns", [80, 120])
def test_default_output_fits_and_summarises_first(tmp_path: Path, columns: int) -> None:
    proc = _demo(tmp_path, columns)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns, [line for line in lines if len(line) > columns]
    text = proc.stdout
    summary, table = text.index("what was found"), text.index("expected?")
    assert summary < table                                     # what was found, before the rows
    assert "4 runs (4 scenarios, sync), openai" in text[:summary]
    rows = {line.split()[0]: line for line in lines[lines.index(next(ln for ln in lines if "expected?" in ln)):]
            if line.strip() and line.split()[0] in SUBSET}
    assert set(rows) >= set(SUBSET[1:])                          # the first one wraps at 80 columns
    assert "llm/assistants-poll-loop-no-deadline" in text      # a knowledge-base id is never cut
    assert "llm/server-disconnected-before-response" in rows["chat-drop"]
    assert "llm/rate-limit-exceeded" in rows["chat-429"]
    assert "healthy: no incident" in rows["chat-healthy"]
    assert not [line for line in lines if line.rstrip().endswith(" ok")]   # no bare, ambiguous "ok"
    assert "what the app saw" not in text                      # the wide columns are behind --wide


@pytest.mark.timeout(600)
def test_json_prints_every_run_and_nothing_else_on_stdout(tmp_path: Path) -> None:
    proc = _demo(tmp_path, 80, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout)
    assert sorted(r["name"] for r in runs) == sorted(SUBSET) and all(r["ok"] and r["trace_id"] for r in runs)
    assert "what was found" in proc.stderr


def test_wide_table_has_the_rest() -> None:
    from rich.console import Console

    from streamtriage.demo_report import wide_table
    from streamtriage.scenario_suite import ScenarioRun, Verdict

    v = Verdict(ScenarioRun("chat-drop", "sync", "0" * 32, "openai.APIConnectionError after 0 events", "3"),
                (None, None), [{"KbId": "", "Category": "", "Confidence": 0.4, "RootCause": ""}])
    console = Console(width=220, record=True)
    console.print(wide_table([v], "t"))
    out = console.export_text()
    assert "what the app saw" in out and "root cause" in out and "APIConnectionError" in out
    assert "unclassified (a failure, no entry)" in out
    assert out.count("yes") == 1


def test_labels_without_an_entry_say_so_in_words() -> None:
    from streamtriage.demo_report import label_text
    from streamtriage.scenario_suite import ScenarioRun, Verdict

    run = ScenarioRun("x", "sync", "0" * 32, "", "3")
    unclassified = Verdict(run, (None, None), [{"kb_id": "", "category": "", "confidence": 0.4}])
    category_only = Verdict(run, (None, "rate_limit"), [{"kb_id": "", "category": "rate_limit", "confidence": 0.4}])
    assert label_text(unclassified) == "unclassified (a failure, no entry)"
    assert label_text(category_only) == "rate_limit (no specific entry)"
