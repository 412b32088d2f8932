"""The CPU-heavy half of ingest, shaped to run in worker processes.

``decode_export`` takes the raw request body and returns a ``Decoded`` batch whose payload is
already the insert body (JSONCompactEachRow rows separated by commas; timestamps as integer ns).
Only bytes and counts cross the process boundary: pickling row objects back costs more than
building them. The same payload is what the spool stores and what the store inserts, so a batch
is encoded exactly once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from streamtriage.contract.facts import is_truncated

from . import otlp_decode as otlp
from .span_rows import INSERT_COLUMNS, convert

try:  # orjson encodes the batch several times faster; the stdlib encoder gives the same JSON
    import orjson

    def _encode(rows: list[list[Any]]) -> bytes:
        return orjson.dumps(rows)
except ImportError:  # pragma: no cover - orjson is in the collector extra
    _dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def _encode(rows: list[list[Any]]) -> bytes:
        return _dumps(rows).encode("utf-8")


CallKey = tuple[str, str, str, str, str]  # service, model, api, outcome, status (the span's StatusCode)


@dataclass(frozen=True)
class Decoded:
    spans: int
    rejected: int
    error_message: str
    payload: bytes  # JSONCompactEachRow rows, INSERT_COLUMNS order, comma-separated
    calls: tuple[tuple[CallKey, int, int], ...] = ()  # (key, calls, truncated calls) for /metrics


_SERVICE, _ATTRS, _STATUS = (INSERT_COLUMNS.index(c) for c in ("ServiceName", "SpanAttributes", "StatusCode"))


# A job the call created but that had not ended when the call returned (a run or background response
# still queued): the call succeeded, the job did not (yet), and an app that stops polling never says.
PENDING_STATUSES = frozenset({"queued", "in_progress", "cancelling"})


def metrics_outcome(attrs: dict[str, Any]) -> str:
    """``streamtriage.outcome`` for /metrics, except ``pending`` for a call whose job was still running at its end.

    A ``runs.create`` that returns ``queued`` has outcome ``completed`` (the request completed), but
    counting it as a completed call would count an abandoned, still-polling run as a success.
    """
    outcome = attrs.get("streamtriage.outcome", "")
    if outcome == "completed" and attrs.get("streamtriage.status") in PENDING_STATUSES:
        return "pending"
    return str(outcome)


def tally_calls(rows: list[list[Any]]) -> tuple[tuple[CallKey, int, int], ...]:
    """Call spans (span contract §1) counted by their labels, and how many were cut by a token budget.

    Truncation is ``contract.facts.is_truncated``, the Python form of the SQL the dashboards and the
    Grafana alert count, so the Prometheus and Grafana rules agree.
    """
    counts: dict[CallKey, list[int]] = {}
    for row in rows:
        attrs = row[_ATTRS]
        if attrs.get("streamtriage.span") != "call":
            continue
        key = (row[_SERVICE], attrs.get("gen_ai.request.model", ""), attrs.get("streamtriage.api", ""),
               metrics_outcome(attrs), row[_STATUS])
        c = counts.setdefault(key, [0, 0])
        c[0] += 1
        if is_truncated(attrs):
            c[1] += 1
    return tuple((k, n, t) for k, (n, t) in counts.items())


SEPARATOR = b",\n"  # between batches; rows inside a batch are separated by "," (both valid JSONCompactEachRow)


def rows_to_payload(rows: list[list[Any]]) -> bytes:
    """Rows as comma-separated JSON arrays: one C-level encode call for the whole batch."""
    return _encode(rows)[1:-1] if rows else b""


def decode_export(body: bytes, encoding: str | None, kind: str, limit: int, oldest_ns: int = 1) -> Decoded:
    """Decompress, parse, convert, encode. Raises ``otlp.BadRequest`` / ``otlp.TooLarge``.

    ``oldest_ns``: spans starting earlier are rejected (the store's retention would drop them).
    """
    out = convert(otlp.parse_request(otlp.decompress(body, encoding, limit), kind), oldest_ns)
    return Decoded(len(out.rows), out.rejected, out.error_message, rows_to_payload(out.rows), tally_calls(out.rows))


_WARM_UP = json.dumps({"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "streamtriage-warm-up"}}]}, "scopeSpans": [{"spans": [{
        "traceId": "5f" * 16, "spanId": "5f" * 8, "name": "warm-up", "kind": 3,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000001000000",
        "attributes": [{"key": "streamtriage.span", "value": {"stringValue": "call"}},
                       {"key": "gen_ai.response.finish_reasons",
                        "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}}]}]}]}]}).encode()


def warm_up() -> int:
    """Run once per worker at start: decode a one-span export as JSON and as gzipped protobuf, so the
    first real request finds the protobuf descriptors, ``json_format``'s tables and the encoders
    already built. Nothing is stored. Returns the spans decoded (2)."""
    import gzip

    as_json = decode_export(_WARM_UP, None, otlp.JSON, 1 << 20)
    body = gzip.compress(otlp.parse_request(_WARM_UP, otlp.JSON).SerializeToString())
    as_protobuf = decode_export(body, "gzip", otlp.PROTOBUF, 1 << 20)
    return as_json.spans + as_protobuf.spans
