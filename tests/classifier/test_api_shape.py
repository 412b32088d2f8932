"""One JSON shape for the API: a label has the same snake_case field names (and values) in
``POST /api/classify`` and in ``GET /api/incidents`` / ``GET /api/streams/{trace_id}``, and the
OpenAPI document describes every ``/api/*`` response with a model.

In-process (FastAPI TestClient) on the session chDB directory, spans stored through the store's own
client interface, the classifier run through the API."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from classifier_spans import SpanMaker, now_ns
from fastapi.testclient import TestClient

from streamtriage.collector.app import create_app
from streamtriage.collector.settings import Settings

MS = 1_000_000
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.fixture
def api(chdb_path: Path, fresh_database: str, tmp_path: Path):
    settings = Settings(store=f"chdb://{chdb_path}", database=fresh_database, state_dir=str(tmp_path),
                        decode_workers=0, classify_interval_s=0, gauges_refresh_s=0)
    with TestClient(create_app(settings)) as client:
        yield client, client.app.state.collector.store


def _cut_stream(store: Any) -> str:
    sm = SpanMaker()
    t0 = now_ns() - 3000 * MS
    cut = sm.call_span("chat gpt-4o-mini", t0)
    for i in range(3):
        sm.event(cut, "chat.completion.chunk", i, t0 + (i + 1) * 50 * MS, t0 + (i + 1) * 50 * MS)
    sm.end_call(cut, {"streamtriage.api": "chat.completions", "streamtriage.call.mode": "stream",
                      "gen_ai.request.model": "gpt-4o-mini", "streamtriage.request.fingerprint": "0123456789abcdef",
                      "streamtriage.outcome": "transport_error", "streamtriage.terminal.seen": False,
                      "streamtriage.exception.type": "openai.APIConnectionError",
                      "streamtriage.exception.chain": ["openai.APIConnectionError", "httpx2.RemoteProtocolError"],
                      "streamtriage.exception.message": "Connection error.", "http.response.status_code": 200,
                      "streamtriage.event.count": 3, "streamtriage.delta.count": 3}, t0 + 200 * MS)
    client = store.open_client()
    try:
        sm.flush(client)
    finally:
        client.close()
    return format(cut.get_span_context().trace_id, "032x")


def _keys(obj: Any) -> set[str]:
    """Every field name in a JSON document, except the keys of attribute maps and facts (span contract names)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(k)
            if k not in ("span_attributes", "resource_attributes", "attributes", "facts", "phases"):
                out |= _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= _keys(v)
    return out


def test_classify_and_incidents_name_a_label_the_same_way(api) -> None:
    client, store = api
    trace_id = _cut_stream(store)
    result = client.post("/api/classify")
    assert result.status_code == 200
    (label,) = [lb for lb in result.json()["labels"] if lb["trace_id"] == trace_id]
    assert label["kb_id"] == "llm/peer-closed-incomplete-chunked-read"
    (incident,) = [r for r in client.get("/api/incidents", params={"since": "1h"}).json() if r["trace_id"] == trace_id]
    shared = set(label) & set(incident)
    assert set(label) <= set(incident), f"classify fields missing from incidents: {set(label) - set(incident)}"
    assert {k: label[k] for k in shared} == {k: incident[k] for k in shared}
    stream = client.get(f"/api/streams/{trace_id}").json()
    assert stream["label"] == incident and stream["call"]["trace_id"] == trace_id
    for doc in (result.json(), incident, stream, client.get("/api/kb").json()):
        bad = {k for k in _keys(doc) if not SNAKE.match(k)}
        assert not bad, f"not snake_case: {bad}"


def test_openapi_describes_every_api_response(api) -> None:
    client, _ = api
    doc = client.get("/openapi.json").json()
    for path, methods in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in methods.items():
            schema = op["responses"]["200"]["content"]["application/json"]["schema"]
            assert "$ref" in schema or "$ref" in schema.get("items", {}), (method, path, schema)
    names = set(doc["components"]["schemas"])
    assert {"Incident", "ClassifyResult", "ClassifiedLabel", "Stream", "Span", "KbSummary", "KbEntry"} <= names
    incident = doc["components"]["schemas"]["Incident"]["properties"]
    classified = doc["components"]["schemas"]["ClassifiedLabel"]["properties"]
    assert set(classified) <= set(incident)
