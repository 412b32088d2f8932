"""OTLP/HTTP request bodies -> ``ExportTraceServiceRequest``, and OTLP responses back.

Covers the parts of the OTLP/HTTP spec a receiver must get right: protobuf and JSON bodies
(JSON ids are hex, not base64; enums as ints or names; lowerCamelCase or snake_case field names),
gzip with a cap on the *decompressed* size (zip bombs), and error bodies as ``google.rpc.Status``
in the request's own encoding. Everything here is pure CPU work, run off the event loop.
"""
from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_BAD_ID = base64.b64encode(b"\xff").decode()  # wrong length on purpose: rejected per span later


class BadRequest(ValueError):
    """The body is not a valid OTLP export request (answer 400)."""


class TooLarge(ValueError):
    """The body or its decompressed form exceeds the configured limit (answer 413)."""


def media_type(content_type: str | None) -> str | None:
    """The OTLP encoding named by a Content-Type header, or None when unsupported."""
    base = (content_type or "").split(";")[0].strip().lower()
    if base in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if base == JSON:
        return JSON
    return None


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding without ever holding more than ``limit`` decompressed bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc not in ("gzip", "deflate"):
        raise ValueError(f"unsupported Content-Encoding {encoding!r}")
    wbits = 16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise TooLarge(f"decompressed body exceeds {limit} bytes")
        out += d.flush()
    except zlib.error as exc:
        raise BadRequest(f"invalid {enc} body: {exc}") from exc
    if len(out) > limit:
        raise TooLarge(f"decompressed body exceeds {limit} bytes")
    if not d.eof:
        raise BadRequest(f"truncated {enc} body")
    return out


def _hex_to_b64(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # json_format reports the wrong type
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return _BAD_ID
    return base64.b64encode(raw).decode() if raw or not value else ""


def _fix_ids(obj: dict[str, Any]) -> None:
    for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
        if key in obj:
            obj[key] = _hex_to_b64(obj[key])


def _walk_ids(doc: Any) -> None:
    """OTLP JSON carries ids as hex; protobuf's JSON mapping expects base64. Rewrite in place."""
    if not isinstance(doc, dict):
        return
    for rs in _list(doc, "resourceSpans", "resource_spans"):
        for ss in _list(rs, "scopeSpans", "scope_spans"):
            for span in _list(ss, "spans"):
                if isinstance(span, dict):
                    _fix_ids(span)
                    for link in _list(span, "links"):
                        if isinstance(link, dict):
                            _fix_ids(link)


def _list(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    for k in keys:
        v = obj.get(k)
        if isinstance(v, list):
            return v
    return []


def parse_request(body: bytes, kind: str) -> ExportTraceServiceRequest:
    """Decode a (decompressed) body; raises BadRequest with a reason the sender can act on."""
    msg = ExportTraceServiceRequest()
    if kind == PROTOBUF:
        try:
            msg.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise BadRequest(f"invalid protobuf ExportTraceServiceRequest: {exc}") from exc
        return msg
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"JSON body is not valid UTF-8: {exc}") from exc
    except RecursionError as exc:
        raise BadRequest("JSON body is nested too deeply") from exc
    except ValueError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadRequest("JSON body must be an object (ExportTraceServiceRequest)")
    _walk_ids(doc)
    try:
        json_format.ParseDict(doc, msg, ignore_unknown_fields=True, max_recursion_depth=64)
    except (json_format.ParseError, RecursionError, TypeError, ValueError, OverflowError, binascii.Error) as exc:
        # OverflowError: a number such as 1e400 parses to infinity, which no integer field holds
        raise BadRequest(f"JSON does not match ExportTraceServiceRequest: {exc}") from exc
    return msg


def encode_response(rejected: int, message: str, kind: str) -> bytes:
    resp = ExportTraceServiceResponse()
    if rejected or message:
        resp.partial_success.rejected_spans = rejected
        resp.partial_success.error_message = message
    if kind == JSON:
        return json_format.MessageToJson(resp, indent=None).encode()
    return resp.SerializeToString()


def encode_status(code: int, message: str, kind: str | None) -> tuple[bytes, str]:
    """A ``google.rpc.Status`` body in the request's encoding (protobuf when it was unsupported)."""
    status = Status(code=code, message=message)
    if kind == JSON:
        return json_format.MessageToJson(status, indent=None).encode(), JSON
    return status.SerializeToString(), PROTOBUF
