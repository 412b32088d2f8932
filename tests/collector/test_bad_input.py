"""Hand-made bad payloads over real HTTP: each gets the right status and a ``google.rpc.Status`` body in the
request's encoding, the service keeps working, and nothing acknowledged before or after is lost."""
from __future__ import annotations

import gzip
import json
import os

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from streamtriage.collector.otlp_decode import JSON, PROTOBUF
from tests.collector.conftest import stored_span_ids
from tests.collector.otlp_payloads import json_request, make_request, make_span
from tests.support.collector_proc import CollectorProcess


def _post(svc: CollectorProcess, body: bytes, ctype: str = PROTOBUF, **headers: str):
    return svc.request("POST", "/v1/traces", body, {"Content-Type": ctype, **headers})


def _status(body: bytes, ctype: str) -> Status:
    if ctype.startswith(JSON):
        doc = json.loads(body)
        return Status(code=doc.get("code", 0), message=doc.get("message", ""))
    return Status.FromString(body)


def _acked_batch(svc: CollectorProcess) -> tuple[str, set[str]]:
    trace = os.urandom(16)
    spans = [make_span(trace) for _ in range(5)]
    status, _, _ = _post(svc, make_request(spans).SerializeToString())
    assert status == 200
    return trace.hex(), {s.span_id.hex() for s in spans}


GOOD = make_request([make_span(os.urandom(16))]).SerializeToString()
CASES = [
    ("truncated protobuf", GOOD[:-9], PROTOBUF, {}, 400),
    ("garbage protobuf", b"\xff" * 64, PROTOBUF, {}, 400),
    ("bad utf-8 in a protobuf string", make_request([make_span(os.urandom(16), name="ZZZZ")])
     .SerializeToString().replace(b"ZZZZ", b"Z\xc3\x28Z"), PROTOBUF, {}, 400),
    ("bad utf-8 json", b'{"resourceSpans": "\xff\xfe"}', JSON, {}, 400),
    ("wrong json types", json.dumps({"resourceSpans": [{"scopeSpans": {"spans": 7}}]}).encode(), JSON, {}, 400),
    ("json number beyond any integer (kind 1e400)", json.dumps(json_request(os.urandom(16).hex(), os.urandom(8).hex()))
     .replace('"kind": 3', '"kind": 1e400').encode(), JSON, {}, 400),
    ("json deep nesting", ("[" * 50_000 + "]" * 50_000).encode(), JSON, {}, 400),
    ("broken gzip", b"\x1f\x8b\x08\x00garbage", PROTOBUF, {"Content-Encoding": "gzip"}, 400),
    ("gzip bomb", gzip.compress(b"\x00" * (64 << 20)), PROTOBUF, {"Content-Encoding": "gzip"}, 413),
    ("too large", b"\x00" * (3 << 20), PROTOBUF, {}, 413),
    ("huge attribute beyond the body limit", make_request([make_span(os.urandom(16), attrs={
        "streamtriage.exception.message": "x" * (3 << 20)})]).SerializeToString(), PROTOBUF, {}, 413),
    ("wrong content type", GOOD, "text/plain", {}, 415),
    ("unsupported encoding", GOOD, PROTOBUF, {"Content-Encoding": "br"}, 415),
]


@pytest.mark.parametrize(("name", "body", "ctype", "headers", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_payload_is_refused_clearly_and_loses_nothing(collector: CollectorProcess, name: str, body: bytes,
                                                          ctype: str, headers: dict[str, str], expected: int) -> None:
    before_trace, before_ids = _acked_batch(collector)
    status, resp_headers, resp = _post(collector, body, ctype, **headers)
    assert status == expected, resp[:300]
    status_msg = _status(resp, resp_headers["content-type"])
    assert status_msg.message, "the error must say what was wrong"
    if ctype == JSON:
        assert resp_headers["content-type"].startswith(JSON)
    after_trace, after_ids = _acked_batch(collector)
    assert stored_span_ids(collector, before_trace) == before_ids
    assert stored_span_ids(collector, after_trace) == after_ids


def test_huge_attribute_within_the_limit_is_stored_whole(collector: CollectorProcess) -> None:
    trace = os.urandom(16)
    big = "é" * 500_000  # 1 MB of UTF-8
    status, _, _ = _post(collector, make_request([make_span(trace, attrs={"streamtriage.span": "call",
                                                                           "big": big})]).SerializeToString())
    assert status == 200
    call = collector.get_json(f"/api/streams/{trace.hex()}")["call"]
    assert call["span_attributes"]["big"] == big


def test_invalid_spans_are_rejected_one_by_one_with_partial_success(collector: CollectorProcess) -> None:
    trace = os.urandom(16)
    good = [make_span(trace) for _ in range(3)]
    bad = [make_span(b"\x00" * 16), make_span(trace, span_id=b"\x00" * 8), make_span(os.urandom(15))]
    status, _, resp = _post(collector, make_request(good + bad).SerializeToString())
    assert status == 200
    partial = ExportTraceServiceResponse.FromString(resp).partial_success
    assert partial.rejected_spans == 3 and "invalid" in partial.error_message
    assert stored_span_ids(collector, trace.hex()) == {s.span_id.hex() for s in good}
    # JSON: an invalid hex id is rejected for that span only.
    doc = json_request(os.urandom(16).hex(), "zz" * 8)
    status, _, resp = _post(collector, json.dumps(doc).encode(), JSON)
    assert status == 200 and json.loads(resp)["partialSuccess"]["rejectedSpans"] == "1"


def test_api_parameters_are_validated(collector: CollectorProcess) -> None:
    assert collector.request("GET", "/api/streams/not-a-trace-id")[0] == 400
    assert collector.request("GET", "/api/streams/" + "ab" * 16)[0] == 404
    assert collector.request("GET", "/api/incidents?since=yesterday-ish")[0] == 400
    assert collector.request("GET", "/api/incidents?since=1000000000w")[0] == 400
    assert collector.request("GET", "/api/incidents?limit=0")[0] == 422
    status, _, body = collector.request("GET", "/api/incidents?since=2h&category=x%27%20OR%201%3D1--&limit=5")
    assert status == 200 and json.loads(body) == []
