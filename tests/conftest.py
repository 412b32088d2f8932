"""Shared fixtures.

chDB runs one embedded engine per process, bound to one data directory: every in-process test
that touches chDB must use ``chdb_path`` (one directory for the whole session) and isolate itself
with its own database (``fresh_database``). Collector processes started by tests get their own
directories.
"""
from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def fresh_database() -> str:
    return "t_" + uuid.uuid4().hex[:12]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within 5 s."""
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def port() -> int:
    return free_port()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("OTEL_SDK_DISABLED", "false")
