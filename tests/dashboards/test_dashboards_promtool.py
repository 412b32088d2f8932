"""The Prometheus rules pass ``promtool check rules`` and their unit tests (``promtool test rules``)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from streamtriage.dashboards.prometheus import RULES_FILE, TESTS_FILE


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool not found: install Debian's prometheus package (.ci/run does)"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_promtool_check_rules() -> None:
    res = promtool("check", "rules", RULES_FILE.name, cwd=RULES_FILE.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 6 rules found" in res.stdout


def test_promtool_test_rules() -> None:
    res = promtool("test", "rules", TESTS_FILE.name, cwd=TESTS_FILE.parent)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("old, new", [
    (") > 0.05", ") > 0.5"),            # failure-rate threshold raised: the failing service no longer fires
    ("for: 5m", "for: 1m"),              # shorter for: the "still pending" check at 5m now sees an alert
])
def test_promtool_unit_tests_catch_a_changed_rule(tmp_path: Path, old: str, new: str) -> None:
    text = RULES_FILE.read_text()
    assert old in text
    (tmp_path / RULES_FILE.name).write_text(text.replace(old, new, 1))
    shutil.copy(TESTS_FILE, tmp_path / TESTS_FILE.name)
    res = promtool("test", "rules", TESTS_FILE.name, cwd=tmp_path)
    assert res.returncode != 0 and "StreamtriageFailureRateHigh" in res.stdout + res.stderr
