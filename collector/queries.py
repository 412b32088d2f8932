"""Read queries behind the API (and behind CLI commands when no service runs). Bound parameters only.

They return the API's response models (``api_models``): spans are the ``otel_traces`` columns in
snake_case with ``events``/``links`` as lists of objects and nanosecond integers beside the
timestamps; labels are ``Incident``s. The CLI's direct path and the HTTP API give the same shape.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .api_models import Incident, Span, SpanEvent, SpanLink, Stream, snake
from .store import LABELS_TABLE, TRACES_TABLE, Store

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LLM_COLUMNS = ("LlmSpan", "LlmApi", "LlmModel", "LlmOutcome", "LlmStatus", "LlmFinishReason", "LlmTerminalSeen",
               "LlmInputTokens", "LlmOutputTokens", "LlmTtfeMs", "LlmMaxGapMs")


def parse_since(value: str | None, now: datetime | None = None) -> datetime:
    """``15m``/``2h``/``7d`` ago, or an ISO-8601 time (UTC when no zone); default: 24 hours ago."""
    now = now or datetime.now(timezone.utc)
    if not value:
        return now - timedelta(hours=24)
    m = _RELATIVE.match(value.strip().lower())
    if m:
        try:
            return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        except OverflowError:  # 1000000000w: before year 1
            raise ValueError(f"since {value!r} reaches back before year 1") from None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"since must be like 15m, 2h, 7d or an ISO-8601 time, got {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _span(row: dict[str, Any]) -> Span:
    events = [SpanEvent(time_unix_nano=t, name=n, attributes=a)
              for t, n, a in zip(row.pop("EventsTimeNs"), row.pop("Events.Name"), row.pop("Events.Attributes"), strict=False)]
    links = [SpanLink(trace_id=t, span_id=s, trace_state=st, attributes=a)
             for t, s, st, a in zip(row.pop("Links.TraceId"), row.pop("Links.SpanId"),
                                    row.pop("Links.TraceState"), row.pop("Links.Attributes"), strict=False)]
    row["Timestamp"] = row["Timestamp"].replace(tzinfo=timezone.utc).isoformat() if row.get("Timestamp") else None
    return Span(events=events, links=links, **{snake(k): v for k, v in row.items()})


def get_stream(store: Store, trace_id: str) -> Stream | None:
    """All spans of one trace (call, event and poll spans) with the call's label; None if unknown."""
    db = f"`{store.database}`"
    spans = [_span(r) for r in store.query(
        f"""
        WITH
            (SELECT min(Start) FROM {db}.{TRACES_TABLE}_trace_id_ts WHERE TraceId = {{tid:String}}) AS t_start,
            (SELECT max(End) + 1 FROM {db}.{TRACES_TABLE}_trace_id_ts WHERE TraceId = {{tid:String}}) AS t_end
        SELECT Timestamp, toUnixTimestamp64Nano(Timestamp) AS TimestampNs, TraceId, SpanId, ParentSpanId,
               TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion,
               SpanAttributes, Duration, StatusCode, StatusMessage,
               arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS EventsTimeNs,
               Events.Name, Events.Attributes, Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes,
               {", ".join(LLM_COLUMNS)}
        FROM {db}.{TRACES_TABLE}
        WHERE TraceId = {{tid:String}} AND Timestamp >= t_start AND Timestamp <= t_end
        ORDER BY Timestamp, SpanId
        """,
        {"tid": trace_id},
    )]
    labels = [Incident.from_row(r) for r in store.query(
        f"SELECT * FROM {db}.{LABELS_TABLE} FINAL WHERE TraceId = {{tid:String}} AND IsDeleted = 0 "
        "ORDER BY Timestamp",
        {"tid": trace_id},
    )]
    if not spans and not labels:
        return None

    def kind(name: str) -> list[Span]:
        return [s for s in spans if s.span_attributes.get("streamtriage.span") == name]

    calls = kind("call")
    call = calls[0] if calls else None
    label = None
    if labels:
        label = next((lb for lb in labels if call and lb.span_id == call.span_id), labels[0])
    return Stream(trace_id=trace_id, call=call, label=label, events=kind("event"), polls=kind("poll"),
                  spans=spans, labels=labels)


def list_incidents(store: Store, since: datetime, category: str | None = None, service: str | None = None,
                   model: str | None = None, limit: int = 100, muted: bool = False) -> list[Incident]:
    """Current labels (``FINAL``, not withdrawn), newest first. Labels hidden by a mute
    (classifier/feedback.py) only with ``muted``."""
    where = ["IsDeleted = 0", "Timestamp >= fromUnixTimestamp64Nano({since_ns:Int64})"] + ([] if muted else ["Muted = 0"])
    params: dict[str, Any] = {"since_ns": _ns(since), "limit": int(limit)}
    for column, key, value in (("Category", "category", category), ("ServiceName", "service", service),
                               ("Model", "model", model)):
        if value:
            where.append(f"{column} = {{{key}:String}}")
            params[key] = value
    return [Incident.from_row(r) for r in store.query(
        f"SELECT * FROM `{store.database}`.{LABELS_TABLE} FINAL WHERE {' AND '.join(where)} "
        "ORDER BY Timestamp DESC LIMIT {limit:UInt32}",
        params,
    )]
