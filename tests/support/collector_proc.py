"""Collectors for tests: the package's ``streamtriage.collector.process`` with one decoder worker.

One decoder process keeps the real multi-process ingest path at the smallest cost per test.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamtriage.collector import process as _process
from streamtriage.collector.process import CollectorProcess, free_port

__all__ = ["CollectorProcess", "collector_process", "free_port"]

TEST_ENV = {"STREAMTRIAGE_DECODE_WORKERS": "1"}


@contextmanager
def collector_process(tmp_path: Path, *, env: dict[str, str] | None = None, **kw: Any) -> Iterator[CollectorProcess]:
    """A started collector on a free port with its own data dir under ``tmp_path``; stopped on exit."""
    with _process.collector_process(tmp_path, env={**TEST_ENV, **(env or {})}, **kw) as svc:
        yield svc
