"""The same scenario tests under every older openai line (1.x and 2.x, httpx transport), each in its
own virtualenv (tests/support/sdk_lines.py): conftest.py starts them in the background when the
simulator tests begin, and this test waits for each, so every supported SDK line is checked against
the ground truth in one suite run.
"""
from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.support.sdk_lines import OLDER_LINES, matrix_disabled, python_for


@pytest.mark.skipif(matrix_disabled(), reason="a child of the matrix run itself (STREAMTRIAGE_NO_SDK_MATRIX)")
@pytest.mark.parametrize("major", sorted(OLDER_LINES))
def test_scenarios_pass_under_older_openai(major: str, older_sdk_runs: dict[str, Any]) -> None:
    py = python_for(major)
    version = subprocess.run([str(py), "-c", "import openai; print(openai.__version__)"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert version.startswith(f"{major}."), f"{py} has openai {version}"
    rc, output = older_sdk_runs[major].result(timeout=280)
    tail = "\n".join(output.splitlines()[-40:])
    assert rc == 0, f"openai {version} scenario run failed (rc {rc}):\n{tail}"
    assert " passed" in output and " failed" not in output, tail
