"""Decoded OTLP spans -> ``otel_traces`` rows, exactly as the official ClickHouse exporter writes them.

Rows are lists in ``INSERT_COLUMNS`` order (the exporter's 22-column INSERT). Timestamps are
integer nanoseconds (clickhouse-connect writes ints to ``DateTime64(9)`` as ticks), so a row is
plain JSON data and can go to the spool unchanged. Spans that cannot be stored faithfully (bad
ids, timestamps outside DateTime64(9)) or that the store would drop again (no start time, older
than the retention, starting in or after 2106 which ``DateTime`` columns cannot hold) are rejected
one by one and reported as partial success: an acknowledged span is one that stays.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .attr_strings import attributes_map

INSERT_COLUMNS: tuple[str, ...] = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind", "ServiceName",
    "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration", "StatusCode",
    "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes", "Links.TraceId",
    "Links.SpanId", "Links.TraceState", "Links.Attributes",
)

# pdata's SpanKind.String() / StatusCode.String(), indexed by the proto enum value.
SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
_MAX_NS = 2**63 - 1  # DateTime64(9) is an Int64 of nanoseconds
# The trace-id lookup table keeps a span's start as DateTime (UInt32 seconds): it ends 2106-02-07.
DATETIME_END_NS = 2**32 * 1_000_000_000
# A span must outlive its acknowledgement by at least this much before the TTL may drop it.
RETENTION_MARGIN_S = 3600


def retention_floor_ns(ttl_days: int, now_ns: int) -> int:
    """Oldest start time accepted: the TTL would drop an older span (within the margin) after acking it."""
    return now_ns - (int(ttl_days) * 86400 - RETENTION_MARGIN_S) * 1_000_000_000
_MAX_ERRORS = 5


@dataclass
class Converted:
    rows: list[list[Any]] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(message)

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.errors)
        return "; ".join(self.errors) + (f"; and {more} more" if more > 0 else "")


def _bad_id(raw: bytes, size: int, allow_empty: bool) -> bool:
    if not raw:
        return not allow_empty
    return len(raw) != size or raw == b"\x00" * size


def convert(request: ExportTraceServiceRequest, oldest_ns: int = 1) -> Converted:
    """Turn one export request into exporter-shaped rows; bad spans are counted, not stored.

    ``oldest_ns``: spans starting earlier are rejected (``retention_floor_ns``); at least 1, so a
    span without a start time (0, the Unix epoch) is never stored.
    """
    oldest_ns = max(1, oldest_ns)
    out = Converted()
    rows = out.rows
    append = rows.append
    amap = attributes_map
    zero16, zero8 = b"\x00" * 16, b"\x00" * 8
    for rs in request.resource_spans:
        res_attrs = amap(rs.resource.attributes)
        service = res_attrs.get("service.name", "")
        for ss in rs.scope_spans:
            scope = ss.scope
            scope_name = scope.name
            scope_version = scope.version
            for span in ss.spans:
                tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
                if len(tid) != 16 or tid == zero16:
                    out.reject(f"span {span.name!r}: invalid trace_id (need 16 non-zero bytes, got {len(tid)})")
                    continue
                if len(sid) != 8 or sid == zero8:
                    out.reject(f"span {span.name!r}: invalid span_id (need 8 non-zero bytes, got {len(sid)})")
                    continue
                if pid and len(pid) != 8:
                    out.reject(f"span {span.name!r}: invalid parent_span_id (need 8 bytes, got {len(pid)})")
                    continue
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                if start > _MAX_NS or end > _MAX_NS:
                    out.reject(f"span {span.name!r}: timestamp beyond year 2262")
                    continue
                if start >= DATETIME_END_NS:
                    out.reject(f"span {span.name!r}: start time {start} is on or after 2106-02-07, "
                               "which the store's time columns cannot hold")
                    continue
                if start < oldest_ns:
                    out.reject(f"span {span.name!r}: start time {start} is "
                               + ("unset (0)" if start == 0 else "older than the store's retention")
                               + "; the store would drop it")
                    continue
                ev_ts: list[int] = []
                ev_names: list[str] = []
                ev_attrs: list[dict[str, str]] = []
                l_tids: list[str] = []
                l_sids: list[str] = []
                l_states: list[str] = []
                l_attrs: list[dict[str, str]] = []
                bad = ""
                events = span.events
                if events:
                    for ev in events:
                        t = ev.time_unix_nano
                        if t > _MAX_NS:
                            bad = "event timestamp beyond year 2262"
                            break
                        ev_ts.append(t)
                        ev_names.append(ev.name)
                        ev_attrs.append(amap(ev.attributes))
                links = span.links
                if links and not bad:
                    for link in links:
                        if _bad_id(link.trace_id, 16, False) or _bad_id(link.span_id, 8, False):
                            bad = "invalid link trace_id/span_id"
                            break
                        l_tids.append(link.trace_id.hex())
                        l_sids.append(link.span_id.hex())
                        l_states.append(link.trace_state)
                        l_attrs.append(amap(link.attributes))
                if bad:
                    out.reject(f"span {span.name!r}: {bad}")
                    continue
                kind = span.kind
                status = span.status
                code = status.code
                append([
                    start, tid.hex(), sid.hex(), pid.hex() if pid and pid != zero8 else "",
                    span.trace_state, span.name,
                    SPAN_KINDS[kind] if 0 <= kind < 6 else "Unspecified",
                    service, res_attrs, scope_name, scope_version, amap(span.attributes),
                    end - start if end >= start else 0,
                    STATUS_CODES[code] if 0 <= code < 3 else "Unset",
                    status.message, ev_ts, ev_names, ev_attrs, l_tids, l_sids, l_states, l_attrs,
                ])
    return out
