"""The same scenario tests under the openai 1.x line (httpx transport), in its own virtualenv.

``scripts/sdk-matrix.sh`` (run by the README's test command) builds ``.venv-openai1`` with
openai 1.109.1; conftest.py starts test_sim_scenarios.py there in the background when the simulator
tests begin, and this test waits for it, so the newest 3.x and a 1.x SDK are both checked against
the ground truth in one suite run.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

VENV_PY = Path(__file__).resolve().parents[2] / ".venv-openai1" / "bin" / "python"


@pytest.mark.skipif(not VENV_PY.exists(), reason="no .venv-openai1: run `bash scripts/sdk-matrix.sh`")
def test_scenarios_pass_under_openai_1x(openai1_run: Any) -> None:
    if openai1_run is None:
        pytest.skip("STREAMTRIAGE_NO_SDK_MATRIX is set")
    version = subprocess.run([str(VENV_PY), "-c", "import openai; print(openai.__version__)"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert version.startswith("1."), f".venv-openai1 has openai {version}"
    rc, output = openai1_run.result(timeout=280)
    tail = "\n".join(output.splitlines()[-40:])
    assert rc == 0, f"openai {version} scenario run failed (rc {rc}):\n{tail}"
    assert " passed" in output and " failed" not in output, tail
