"""Anthropic Messages end to end, on both SDK lines and in both modes: the real ``anthropic`` SDK (2.x
here, 0.x in ``.venv-openai1``) -> hook -> OTLP -> collector -> chDB -> classifier. Every Anthropic
scenario gets its expected label; the healthy ones (end_turn, tool_use, a short pause between pings,
a 529 the SDK's retry hides) get none.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from streamtriage.scenario_suite import accuracy_report
from streamtriage.simulator.anthropic_scenarios import ANTHROPIC_SCENARIOS
from tests.support.accuracy_run import pythons, run_lines


@pytest.mark.timeout(600)
def test_every_anthropic_scenario_gets_its_expected_label(tmp_path: Path) -> None:
    assert set(pythons(["1"])) == {"sdk3", "sdk1"}, "the SDK matrix is turned off"
    names = [s.name for s in ANTHROPIC_SCENARIOS]
    verdicts = run_lines(tmp_path, "sync,async", names, majors=["1"])  # anthropic 2.x here, 0.x in .venv-openai1
    text = "\n\n".join(accuracy_report(v) for v in verdicts.values())
    print("\n" + text)
    for tag, line in verdicts.items():
        assert sorted({(v.run.name, v.run.mode) for v in line}) == sorted(
            (n, m) for n in names for m in ("sync", "async")), tag
        assert {v.run.sdk.split(".")[0] for v in line} == ({"2"} if tag == "sdk3" else {"0"}), tag
    assert all(v.ok for line in verdicts.values() for v in line), text
    healthy = [v for line in verdicts.values() for v in line if v.expected is None]
    assert len(healthy) == 2 * 2 * sum(s.healthy for s in ANTHROPIC_SCENARIOS)  # two lines, two modes

