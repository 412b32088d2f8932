"""Hand-made OTLP payloads for collector tests (protobuf and the OTLP JSON mapping)."""
from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status


def new_trace_id() -> bytes:
    return os.urandom(16)


def make_span(trace_id: bytes, name: str = "chat gpt-4o-mini", *, span_id: bytes | None = None,
              parent: bytes = b"", attrs: dict[str, Any] | None = None, start_ns: int | None = None,
              duration_ns: int = 1_000_000) -> Span:
    start = start_ns or time.time_ns()
    span = Span(trace_id=trace_id, span_id=span_id or os.urandom(8), parent_span_id=parent, name=name,
                kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start, end_time_unix_nano=start + duration_ns,
                status=Status(code=Status.STATUS_CODE_ERROR, message="peer closed"))
    for key, value in (attrs or {"streamtriage.span": "call"}).items():
        span.attributes.append(KeyValue(key=key, value=_any(value)))
    ev = span.events.add(time_unix_nano=start + 10, name="exception")
    ev.attributes.append(KeyValue(key="exception.type", value=AnyValue(string_value="httpx2.RemoteProtocolError")))
    return span


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def make_request(spans: list[Span], service: str = "svc-test") -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="streamtriage.instrumentation.openai",
                                                           version="0.1.0"), spans=spans)],
    )])


def json_request(trace_hex: str, span_hex: str, *, name: str = "json span", kind: Any = 3,
                 status_code: Any = 2, extra_span: dict[str, Any] | None = None) -> dict[str, Any]:
    now = time.time_ns()
    span = {
        "traceId": trace_hex, "spanId": span_hex, "parentSpanId": "", "name": name, "kind": kind,
        "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 5_000_000),
        "attributes": [
            {"key": "streamtriage.span", "value": {"stringValue": "call"}},
            {"key": "streamtriage.contract", "value": {"intValue": "1"}},
            {"key": "streamtriage.ttfe_ms", "value": {"doubleValue": 12.5}},
            {"key": "streamtriage.terminal.seen", "value": {"boolValue": False}},
            {"key": "gen_ai.response.finish_reasons",
             "value": {"arrayValue": {"values": [{"stringValue": "length"}]}}},
        ],
        "events": [{"timeUnixNano": str(now + 1000), "name": "chunk",
                    "attributes": [{"key": "i", "value": {"intValue": 3}}]}],
        "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}],
        "status": {"code": status_code, "message": "json status"},
    }
    span.update(extra_span or {})
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc-json"}}]},
        "scopeSpans": [{"scope": {"name": "json-scope", "version": "9"}, "spans": [span]}],
    }]}
