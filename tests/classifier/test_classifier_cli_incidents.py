"""``streamtriage incidents``: through the running service's API, and straight from the store when none runs;
``/api/kb`` endpoints of the service."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

from tests.support.collector_proc import collector_process

CUT = {"streamtriage.span": "call", "streamtriage.contract": 1, "streamtriage.api": "chat.completions",
       "streamtriage.call.mode": "stream", "gen_ai.request.model": "gpt-4o-mini",
       "streamtriage.outcome": "transport_error", "streamtriage.terminal.seen": False,
       "streamtriage.exception.type": "httpx.RemoteProtocolError",
       "streamtriage.exception.chain": ["httpx.RemoteProtocolError", "httpcore.RemoteProtocolError"],
       "streamtriage.exception.message": "peer closed connection without sending complete message body "
                                         "(incomplete chunked read)",
       "streamtriage.event.count": 3, "streamtriage.delta.count": 3, "http.response.status_code": 200,
       "streamtriage.request.fingerprint": "1111222233334444"}


def _send(url: str, service: str) -> str:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces", timeout=10)))
    tracer = provider.get_tracer("streamtriage.instrumentation.openai", "0.1.0")
    t0 = time.time_ns() - 2_000_000_000
    call = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, start_time=t0)
    for i in range(3):
        tracer.start_span("chat.completion.chunk", context=set_span_in_context(call), start_time=t0 + i * 10_000_000,
                          attributes={"streamtriage.span": "event", "streamtriage.event.index": i,
                                      "streamtriage.event.count": 1}).end(end_time=t0 + i * 10_000_000)
    call.set_attributes(CUT)
    call.end(end_time=t0 + 50_000_000)
    provider.shutdown()
    return format(call.get_span_context().trace_id, "032x")


def _incidents(svc, *extra: str) -> list[dict]:
    env = {**os.environ, "STREAMTRIAGE_STATE_DIR": str(svc.data_dir), "STREAMTRIAGE_CLASSIFY_INTERVAL_S": "0"}
    out = subprocess.run([sys.executable, "-m", "streamtriage.cli", "incidents", "--store", svc.store, "--since", "1h",
                          "--json", *extra], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_incidents_from_service_then_from_store(tmp_path: Path) -> None:
    with collector_process(tmp_path, env={"STREAMTRIAGE_CLASSIFY_INTERVAL_S": "0"}) as svc:
        tid = _send(svc.url, "svc-a")
        assert svc.request("POST", "/api/classify")[0] == 200
        rows = _incidents(svc)                       # the service owns the store: goes through its API
        assert [(r["trace_id"], r["kb_id"]) for r in rows] == [(tid, "llm/peer-closed-incomplete-chunked-read")]
        assert rows[0]["fix_rate_sample"] == 0 and rows[0]["fix_rate_observed"] is None  # a rate comes with its sample
        assert _incidents(svc, "--category", "truncation") == []
        kb = svc.get_json("/api/kb")
        row = next(e for e in kb if e["id"] == "llm/peer-closed-incomplete-chunked-read")
        assert row["evidence_count"] == 1 and row["fix_rate"] == 0.75 and "fix_rate_sample" in row
        entry = svc.get_json("/api/kb/llm/peer-closed-incomplete-chunked-read?lang=zh")
        assert set(entry["root_cause"]) == {"zh"} and entry["observed"]["evidence_count"] == 1
        assert entry["observed"]["fix_rate_definition"].startswith("retry success within a window")
        status, headers, body = svc.request("GET", "/api/kb/llm/peer-closed-incomplete-chunked-read?format=md")
        assert status == 200 and headers["content-type"].startswith("text/markdown") and b"## llm/peer" in body
        assert svc.request("GET", "/api/kb/llm/unknown")[0] == 404
        assert svc.request("GET", "/api/kb/llm/content-filter-stop?format=pdf")[0] == 422
        tid2 = _send(svc.url, "svc-b")               # not classified yet when the service stops
    rows = _incidents(svc)                           # no service: opens the store and classifies first
    assert {r["trace_id"] for r in rows} == {tid, tid2}
    table = subprocess.run([sys.executable, "-m", "streamtriage.cli", "incidents", "--store", svc.store],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "STREAMTRIAGE_STATE_DIR": str(svc.data_dir)})
    assert table.returncode == 0 and "peer-closed" in table.stdout and "svc-b" in table.stdout
    assert "(n=" in table.stdout  # the observed fix rate's sample size
