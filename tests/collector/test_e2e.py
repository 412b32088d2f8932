"""End to end: the real OpenTelemetry OTLP/HTTP exporter -> ``streamtriage serve`` (subprocess) -> chDB ->
the read API returns every span with all attributes and events intact."""
from __future__ import annotations

import gzip
import json
import os

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from streamtriage.collector.otlp_decode import JSON
from tests.collector.otlp_payloads import json_request
from tests.support.collector_proc import CollectorProcess

CALL_ATTRS = {
    "streamtriage.span": "call", "streamtriage.contract": 1, "streamtriage.api": "chat.completions",
    "streamtriage.call.mode": "stream", "streamtriage.outcome": "transport_error",
    "streamtriage.terminal.seen": False, "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.finish_reasons": ("stop", ""), "gen_ai.usage.input_tokens": 11,
    "streamtriage.ttfe_ms": 250.5, "streamtriage.max_gap_ms": 1200.0,
    "streamtriage.exception.chain": ("openai.APIConnectionError", "httpx2.RemoteProtocolError"),
    "streamtriage.exception.message": "peer closed connection without sending complete message body <&>",
}
EXPECTED_CALL = {
    "streamtriage.span": "call", "streamtriage.contract": "1", "streamtriage.api": "chat.completions",
    "streamtriage.call.mode": "stream", "streamtriage.outcome": "transport_error",
    "streamtriage.terminal.seen": "false", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.finish_reasons": '["stop",""]', "gen_ai.usage.input_tokens": "11",
    "streamtriage.ttfe_ms": "250.5", "streamtriage.max_gap_ms": "1200",
    "streamtriage.exception.chain": '["openai.APIConnectionError","httpx2.RemoteProtocolError"]',
    "streamtriage.exception.message": "peer closed connection without sending complete message body <&>",
}


def _emit(svc: CollectorProcess, compression: Compression) -> tuple[str, InMemorySpanExporter]:
    provider = TracerProvider(resource=Resource.create({"service.name": "e2e-app", "deployment.environment": "test"}))
    exporter = OTLPSpanExporter(endpoint=svc.url + "/v1/traces", compression=compression, timeout=10)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("streamtriage.instrumentation.openai", "0.1.0")
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=CALL_ATTRS) as call:
        for i, (name, count) in enumerate((("chat.completion.chunk", 1), ("chat.completion.chunk", 17))):
            with tracer.start_as_current_span(name, attributes={"streamtriage.span": "event",
                                                                "streamtriage.event.index": i,
                                                                "streamtriage.event.count": count,
                                                                "streamtriage.event.gap_ms": 3.25}):
                pass
        call.add_event("exception", {"exception.type": "httpx2.RemoteProtocolError", "exception.escaped": True})
        call.set_status(Status(StatusCode.ERROR, "peer closed connection"))
        trace_id = format(call.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id, memory


def test_real_exporter_spans_come_back_from_the_api_intact(collector: CollectorProcess) -> None:
    for compression in (Compression.NoCompression, Compression.Gzip):
        trace_id, memory = _emit(collector, compression)
        sent = {format(s.context.span_id, "016x"): s for s in memory.get_finished_spans()}
        found = collector.get_json(f"/api/streams/{trace_id}")
        assert {s["span_id"] for s in found["spans"]} == set(sent)
        call = found["call"]
        assert call["span_attributes"] == EXPECTED_CALL
        assert (call["span_kind"], call["status_code"], call["status_message"]) == ("Client", "Error", "peer closed connection")
        assert call["service_name"] == "e2e-app" and call["resource_attributes"]["deployment.environment"] == "test"
        assert (call["scope_name"], call["scope_version"]) == ("streamtriage.instrumentation.openai", "0.1.0")
        assert [(e["name"], e["attributes"]) for e in call["events"]] == [
            ("exception", {"exception.type": "httpx2.RemoteProtocolError", "exception.escaped": "true"})]
        span = sent[call["span_id"]]
        assert call["timestamp_ns"] == span.start_time and call["duration"] == span.end_time - span.start_time
        assert call["events"][0]["time_unix_nano"] == span.events[0].timestamp
        assert (call["llm_model"], call["llm_outcome"], call["llm_finish_reason"], call["llm_ttfe_ms"]) == (
            "gpt-4o-mini", "transport_error", "stop", 250.5)
        events = found["events"]
        assert [e["span_attributes"]["streamtriage.event.count"] for e in events] == ["1", "17"]
        assert all(e["parent_span_id"] == call["span_id"] and e["span_kind"] == "Internal" for e in events)
        assert found["label"] is None


def test_otlp_json_and_gzip_json_are_accepted(collector: CollectorProcess) -> None:
    for gz in (False, True):
        trace_hex, span_hex = os.urandom(16).hex(), os.urandom(8).hex()
        body = json.dumps(json_request(trace_hex, span_hex)).encode()
        headers = {"Content-Type": JSON}
        if gz:
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        status, resp_headers, resp = collector.request("POST", "/v1/traces", body, headers)
        assert status == 200 and resp_headers["content-type"].startswith(JSON)
        assert json.loads(resp) == {}
        call = collector.get_json(f"/api/streams/{trace_hex}")["call"]
        assert call["span_id"] == span_hex and call["links"][0]["span_id"] == "b7ad6b7169203331"
        assert call["span_attributes"]["gen_ai.response.finish_reasons"] == '["length"]'


def test_metrics_count_what_was_stored(collector: CollectorProcess) -> None:
    status, _, text = collector.request("GET", "/metrics")
    assert status == 200
    values = dict(line.rsplit(" ", 1) for line in text.decode().splitlines() if line and not line.startswith("#"))
    assert int(values["streamtriage_spans_stored_total"]) >= int(values["streamtriage_spans_received_total"]) \
        - int(values["streamtriage_spans_rejected_total"]) - int(values["streamtriage_spans_spooled_total"])
    assert int(values["streamtriage_spans_received_total"]) > 0
    assert "streamtriage_store_write_seconds_bucket{le=\"+Inf\"}" in values


def test_token_is_required_when_configured(tmp_path) -> None:
    from tests.support.collector_proc import collector_process

    with collector_process(tmp_path, token="s3cret") as svc:
        exporter = OTLPSpanExporter(endpoint=svc.url + "/v1/traces", timeout=5)
        provider = TracerProvider()
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        with provider.get_tracer("t").start_as_current_span("x"):
            pass
        spans = memory.get_finished_spans()
        assert exporter.export(spans) == SpanExportResult.FAILURE
        status, _, _ = svc.request("GET", "/api/incidents", headers={"Authorization": "Bearer wrong"})
        assert status == 401
        authed = OTLPSpanExporter(endpoint=svc.url + "/v1/traces", headers={"Authorization": "Bearer s3cret"}, timeout=5)
        assert authed.export(spans) == SpanExportResult.SUCCESS
        assert svc.request("GET", "/healthz", headers={"Authorization": ""})[0] == 200
        tid = format(spans[0].context.trace_id, "032x")
        assert svc.get_json(f"/api/streams/{tid}")["spans"][0]["span_name"] == "x"
