"""The read API over labels: a call's label joins its spans, re-labelling replaces, withdrawn labels
disappear, incident filters bind their parameters, and /metrics counts incidents by category.

In-process (FastAPI TestClient) on the session chDB directory with a fresh database; the labels are
written the way the classifier writes them (rows into ``streamtriage_labels``)."""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from streamtriage.collector.app import create_app
from streamtriage.collector.settings import Settings
from tests.collector.otlp_payloads import make_request, make_span

LABEL_COLUMNS = ["Timestamp", "TraceId", "SpanId", "ServiceName", "Model", "ApiKind", "KbId", "Category", "Title",
                 "RootCause", "Confidence", "FixRatePrior", "EvidenceCount", "Evidence", "Alternatives",
                 "Fingerprint", "Outcome", "IsOpen", "RuleVersion", "Version", "IsDeleted"]


def _label(trace: str, span: str, kb: str, category: str, version: int, deleted: int = 0,
           model: str = "gpt-4o-mini", when: datetime | None = None) -> list:
    return [when or datetime.now(timezone.utc), trace, span, "svc-test", model, "chat.completions", kb, category,
            "title", "cause", 0.9, 0.5, 2, "[]", "[]", "fp", "transport_error", 0, 1, version, deleted]


@pytest.fixture
def app_client(chdb_path: Path, fresh_database: str, tmp_path: Path):
    settings = Settings(store=f"chdb://{chdb_path}", database=fresh_database, state_dir=str(tmp_path),
                        decode_workers=0, gauges_refresh_s=0.1)
    with TestClient(create_app(settings)) as client:
        yield client, client.app.state.collector.store


def _write_labels(store, rows: list[list]) -> None:
    store.write_labels(rows, LABEL_COLUMNS)


def test_stream_label_relabel_withdraw_and_incident_filters(app_client) -> None:
    client, store = app_client
    trace = os.urandom(16)
    call = make_span(trace, attrs={"streamtriage.span": "call", "gen_ai.request.model": "gpt-4o-mini"})
    event = make_span(trace, "chat.completion.chunk", parent=call.span_id, attrs={"streamtriage.span": "event"})
    resp = client.post("/v1/traces", content=make_request([call, event]).SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf"})
    assert resp.status_code == 200
    tid, sid = trace.hex(), call.span_id.hex()
    _write_labels(store, [_label(tid, sid, "llm/peer-closed-incomplete-chunked-read", "transport", 1)])
    found = client.get(f"/api/streams/{tid}").json()
    assert found["call"]["span_id"] == sid and [e["span_id"] for e in found["events"]] == [event.span_id.hex()]
    assert found["label"]["kb_id"] == "llm/peer-closed-incomplete-chunked-read"

    # Re-labelling replaces (higher Version wins under FINAL).
    _write_labels(store, [_label(tid, sid, "llm/read-timeout-mid-stream", "timeout", 2)])
    assert client.get(f"/api/streams/{tid}").json()["label"]["kb_id"] == "llm/read-timeout-mid-stream"
    rows = client.get("/api/incidents", params={"since": "1h"}).json()
    assert [(r["trace_id"], r["kb_id"], r["category"]) for r in rows] == [(tid, "llm/read-timeout-mid-stream", "timeout")]
    assert client.get("/api/incidents", params={"category": "timeout", "service": "svc-test",
                                                "model": "gpt-4o-mini"}).json()[0]["trace_id"] == tid
    assert client.get("/api/incidents", params={"category": "transport"}).json() == []
    assert client.get("/api/incidents", params={"model": "o3"}).json() == []
    old = datetime.now(timezone.utc) - timedelta(days=3)  # inside the label TTL (90 days)
    other = os.urandom(16).hex()
    _write_labels(store, [_label(other, "ab" * 8, "llm/x", "timeout", 1, when=old)])
    assert other not in {r["trace_id"] for r in client.get("/api/incidents", params={"since": "2d"}).json()}
    since = (old - timedelta(hours=1)).isoformat()
    assert other in {r["trace_id"] for r in client.get("/api/incidents", params={"since": since}).json()}

    # /metrics reads the gauges the service refreshes in the background (gauges_refresh_s), not the store.
    deadline = time.monotonic() + 10
    while 'streamtriage_incidents{category="timeout"} 2' not in client.get("/metrics").text:
        assert time.monotonic() < deadline, client.get("/metrics").text
        time.sleep(0.05)

    # Withdrawn (IsDeleted=1 with a higher Version): gone from incidents and from the stream.
    _write_labels(store, [_label(tid, sid, "llm/read-timeout-mid-stream", "timeout", 3, deleted=1)])
    assert tid not in {r["trace_id"] for r in client.get("/api/incidents", params={"since": "1h"}).json()}
    assert client.get(f"/api/streams/{tid}").json()["label"] is None


def test_openapi_lists_the_api(app_client) -> None:
    client, _ = app_client
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/traces", "/healthz", "/readyz", "/metrics", "/api/streams/{trace_id}", "/api/incidents"):
        assert path in paths
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["store"] == "ok"
