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

from . import otlp_decode as otlp
from .span_rows import convert

try:  # orjson encodes the batch several times faster; the stdlib encoder gives the same JSON
    import orjson

    def _encode(rows: list[list[Any]]) -> bytes:
        return orjson.dumps(rows)
except ImportError:  # pragma: no cover - orjson is in the collector extra
    _dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def _encode(rows: list[list[Any]]) -> bytes:
        return _dumps(rows).encode("utf-8")


@dataclass(frozen=True)
class Decoded:
    spans: int
    rejected: int
    error_message: str
    payload: bytes  # JSONCompactEachRow rows, INSERT_COLUMNS order, comma-separated


SEPARATOR = b",\n"  # between batches; rows inside a batch are separated by "," (both valid JSONCompactEachRow)


def rows_to_payload(rows: list[list[Any]]) -> bytes:
    """Rows as comma-separated JSON arrays: one C-level encode call for the whole batch."""
    return _encode(rows)[1:-1] if rows else b""


def decode_export(body: bytes, encoding: str | None, kind: str, limit: int) -> Decoded:
    """Decompress, parse, convert, encode. Raises ``otlp.BadRequest`` / ``otlp.TooLarge``."""
    out = convert(otlp.parse_request(otlp.decompress(body, encoding, limit), kind))
    return Decoded(len(out.rows), out.rejected, out.error_message, rows_to_payload(out.rows))


def warm_up() -> None:
    """Imports done; run once per worker so the first request does not pay for them."""
    return None
