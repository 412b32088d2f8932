"""``POST /v1/traces``: OTLP/HTTP trace ingest (protobuf or JSON, optionally gzip).

Parse -> convert -> hand to the writer; answer 200 only once the writer says the spans are
durable. Limits are checked before work: Content-Length, the streamed body size, then the
decompressed size. Decoding and row building run in decoder worker processes (or one thread),
never on the event loop.
"""
from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from .. import otlp_decode as otlp
from ..decode_worker import decode_export
from ..deps import AuthDep, StateDep
from ..span_rows import retention_floor_ns
from ..state import DecoderUnavailable
from ..writer import Overloaded, Unavailable

router = APIRouter(tags=["otlp"])

# google.rpc.Code values used in Status bodies.
_INVALID_ARGUMENT, _RESOURCE_EXHAUSTED, _UNAVAILABLE = 3, 8, 14


def _status(http: int, code: int, message: str, kind: str | None, retry_after: int | None = None) -> Response:
    body, ctype = otlp.encode_status(code, message, kind)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(body, status_code=http, media_type=ctype, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it exceeds ``limit`` (never buffered beyond it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export",
    responses={400: {"description": "malformed body (google.rpc.Status)"}, 413: {"description": "too large"},
               415: {"description": "unsupported Content-Type or Content-Encoding"},
               429: {"description": "overloaded, retry after Retry-After"},
               503: {"description": "store unavailable and spool full, retry after Retry-After"}},
)
async def export_traces(request: Request, state: StateDep, _auth: AuthDep) -> Response:
    started = time.monotonic()
    response = await _export(request, state)
    state.metrics.request(response.status_code, time.monotonic() - started)
    return response


async def _export(request: Request, state: StateDep) -> Response:
    s = state.settings
    kind = otlp.media_type(request.headers.get("content-type"))
    if kind is None:
        return _status(415, _INVALID_ARGUMENT, "Content-Type must be application/x-protobuf or application/json", None)
    encoding = request.headers.get("content-encoding")
    if (encoding or "identity").strip().lower() not in ("identity", "", "gzip", "deflate"):
        return _status(415, _INVALID_ARGUMENT, f"unsupported Content-Encoding {encoding!r} (use gzip)", kind)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > s.max_body_bytes:
        return _status(413, _RESOURCE_EXHAUSTED, f"body of {declared} bytes exceeds {s.max_body_bytes}", kind)
    body = await _read_body(request, s.max_body_bytes)
    if body is None:
        return _status(413, _RESOURCE_EXHAUSTED, f"body exceeds {s.max_body_bytes} bytes", kind)
    try:
        decoded = await state.decode(decode_export, body, encoding, kind, s.max_decompressed_bytes,
                                     retention_floor_ns(s.ttl_days, time.time_ns()))
    except otlp.TooLarge as exc:
        return _status(413, _RESOURCE_EXHAUSTED, str(exc), kind)
    except otlp.BadRequest as exc:
        return _status(400, _INVALID_ARGUMENT, str(exc), kind)
    except DecoderUnavailable as exc:
        return _status(503, _UNAVAILABLE, str(exc), kind, s.retry_after_s)
    metrics = state.metrics
    metrics.inc("spans_received", decoded.spans + decoded.rejected)
    metrics.inc("spans_rejected", decoded.rejected)
    try:
        await state.writer.submit(decoded.payload, decoded.spans)
    except Overloaded as exc:
        metrics.inc("requests_refused_overload")
        return _status(429, _RESOURCE_EXHAUSTED, f"collector overloaded: {exc}", kind, s.retry_after_s)
    except Unavailable as exc:
        metrics.inc("requests_refused_overload")
        return _status(503, _UNAVAILABLE, str(exc), kind, s.retry_after_s)
    metrics.count_calls(decoded.calls)
    body_out = otlp.encode_response(decoded.rejected, decoded.error_message, kind)
    return Response(body_out, status_code=200, media_type=kind)
