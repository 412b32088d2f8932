"""Collector test fixtures: one ``streamtriage serve`` subprocess shared per module where tests only add data."""
from __future__ import annotations

import pytest

from tests.support.collector_proc import CollectorProcess, collector_process


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory):
    with collector_process(tmp_path_factory.mktemp("collector"), env={"STREAMTRIAGE_MAX_BODY_BYTES": str(2 << 20),
                                                                      "STREAMTRIAGE_MAX_DECOMPRESSED_BYTES": str(4 << 20)}) as svc:
        yield svc


def stored_span_ids(svc: CollectorProcess, trace_id: str) -> set[str]:
    found = svc.get_json(f"/api/streams/{trace_id}") if svc.request("GET", f"/api/streams/{trace_id}")[0] == 200 else None
    return {s["span_id"] for s in found["spans"]} if found else set()
