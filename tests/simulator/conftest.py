"""Starts the scenario tests under every older openai line (1.x, 2.x) in the background as soon as
the simulator tests begin, so their (mostly waiting) scenarios overlap with the 3.x run instead of
adding to the suite time. test_sim_sdk_matrix.py collects the results."""
from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sdk_lines import OLDER_LINES, matrix_disabled

REPO = Path(__file__).resolve().parents[2]


class BackgroundRun:
    def __init__(self, python: Path) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")
        # The child must not start its own background run (it loads this conftest too).
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", STREAMTRIAGE_NO_SDK_MATRIX="1")
        self.proc = subprocess.Popen(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
             str(REPO / "tests" / "simulator" / "test_sim_scenarios.py")],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def result(self, timeout: float) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            rc = -9
        self.log.seek(0)
        return rc, self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


_MATRIX_SELECTED = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the background runs only when the matrix test will actually run."""
    global _MATRIX_SELECTED
    _MATRIX_SELECTED = any(item.name.startswith("test_scenarios_pass_under_older_openai") for item in items)


@pytest.fixture(scope="session", autouse=True)
def older_sdk_runs() -> Iterator[dict[str, BackgroundRun]]:
    if not _MATRIX_SELECTED or matrix_disabled():
        yield {}
        return
    runs = {major: BackgroundRun(py) for major, py in OLDER_LINES.items() if py.exists()}
    try:
        yield runs
    finally:
        for run in runs.values():
            run.stop()
