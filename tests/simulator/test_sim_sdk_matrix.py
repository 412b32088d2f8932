"""The same scenario tests under the openai 1.x line (httpx transport), in its own virtualenv.

``scripts/sdk-matrix.sh`` (run by the README's test command) builds ``.venv-openai1`` with
openai 1.109.1; this test runs test_sim_scenarios.py there in a subprocess, so both the newest 3.x
and a 1.x SDK are checked against the ground truth in one suite run.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".venv-openai1" / "bin" / "python"


@pytest.mark.skipif(not VENV_PY.exists(), reason="no .venv-openai1: run `bash scripts/sdk-matrix.sh`")
def test_scenarios_pass_under_openai_1x() -> None:
    version = subprocess.run([str(VENV_PY), "-c", "import openai; print(openai.__version__)"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert version.startswith("1."), f".venv-openai1 has openai {version}"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [str(VENV_PY), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         str(REPO / "tests" / "simulator" / "test_sim_scenarios.py")],
        cwd=REPO, capture_output=True, text=True, timeout=280, env=env,
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 0, f"openai {version} scenario run failed:\n{tail}"
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail
