"""Stream records from spans as the read API exports them (``GET /api/streams/<trace id>``).

``streamtriage kb test`` accepts such an export, so a call the classifier got wrong can be replayed
against the rules on any machine. The spans are grouped the way ``assemble.py`` groups them in SQL (a
call span by its own SpanId, its event and poll spans by their parent), reduced to the same
``ChildEvent`` / ``ChildPoll`` facts the SQL aggregation reads, and handed to ``record.build_record``,
the one place a record is made.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .record import ChildEvent, ChildPoll, Record, RecordSource, build_record

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake_keys(span: Mapping[str, Any]) -> dict[str, Any]:
    """The API's snake_case span (``span_attributes``); exports saved before it used the column names."""
    return {(_CAMEL.sub("_", k).lower() if k[:1].isupper() else k): v for k, v in span.items()}


def _attrs(span: Mapping[str, Any]) -> Mapping[str, Any]:
    return span.get("span_attributes") or {}


def _num(raw: Any, kind: type = float) -> Any:
    try:
        return kind(float(raw)) if kind is int else kind(raw)
    except (TypeError, ValueError):
        return kind(0)


def _start_ns(span: Mapping[str, Any]) -> int:
    return int(span.get("timestamp_ns") or 0)


def _event(span: Mapping[str, Any]) -> ChildEvent:
    a = _attrs(span)
    return ChildEvent(
        type=str(span.get("span_name") or a.get("streamtriage.event.type") or ""),
        index=_num(a.get("streamtriage.event.index"), int), count=max(1, _num(a.get("streamtriage.event.count"), int)),
        gap_ms=_num(a.get("streamtriage.event.gap_ms")), max_gap_ms=_num(a.get("streamtriage.event.max_gap_ms")),
        finish_reason=a.get("streamtriage.finish_reason") or "", status=a.get("streamtriage.status") or "",
        error_code=a.get("streamtriage.error.code") or "", terminal=a.get("streamtriage.terminal") == "true",
        end_ns=_start_ns(span) + int(span.get("duration") or 0), api=a.get("streamtriage.api") or "",
        model=a.get("gen_ai.request.model") or "", fingerprint=a.get("streamtriage.request.fingerprint") or "",
    )


def _poll(span: Mapping[str, Any]) -> ChildPoll:
    a = _attrs(span)
    since = a.get("streamtriage.poll.status_since_ms")
    return ChildPoll(
        status=a.get("streamtriage.status") or "", attempt=_num(a.get("streamtriage.poll.attempt"), int),
        status_since_ms=_num(since) if since not in (None, "") else None,
        start_ns=_start_ns(span), end_ns=_start_ns(span) + int(span.get("duration") or 0),
        error_code=a.get("streamtriage.error.code") or "", api=a.get("streamtriage.api") or "",
        object_id=a.get("streamtriage.object.id") or "", model=a.get("gen_ai.request.model") or "",
        read_failed=bool(a.get("error.type")),
    )


def sources_from_spans(spans: Sequence[Mapping[str, Any]]) -> list[RecordSource]:
    """One ``RecordSource`` per call in the spans (the call span may be missing: an open call)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for span in map(_snake_keys, spans):
        kind = _attrs(span).get("streamtriage.span")
        if kind not in ("call", "event", "poll"):
            continue
        tid = str(span.get("trace_id") or "")
        if kind == "call":
            key = (tid, str(span.get("span_id")))
        elif kind == "poll" and not span.get("parent_span_id"):
            key = ("", "obj:" + str(_attrs(span).get("streamtriage.object.id") or ""))
        else:
            key = (tid, str(span.get("parent_span_id")))
        g = groups.setdefault(key, {"call": None, "events": [], "polls": [], "first": None, "trace": tid,
                                    "service": str(span.get("service_name") or "")})
        g["first"] = min(_start_ns(span), g["first"] or _start_ns(span))
        if kind == "call":
            g["call"] = span
        elif kind == "event":
            g["events"].append(_event(span))
        else:
            g["polls"].append(_poll(span))
    out = []
    for (tid, sid), g in groups.items():
        call = g["call"]
        out.append(RecordSource(
            trace_id=tid or g["trace"], span_id=sid, service=g["service"],
            start_ns=_start_ns(call) if call else g["first"], duration_ns=int(call.get("duration") or 0) if call else 0,
            call_attrs=dict(_attrs(call)) if call else None, events=g["events"], polls=g["polls"]))
    return out


def records_from_export(doc: Mapping[str, Any], now_ns: int) -> list[Record]:
    """Records of every call in a ``/api/streams/<id>`` export (``now_ns``: the clock open calls are judged on)."""
    spans = doc.get("spans")
    if not isinstance(spans, list):
        raise ValueError("not a /api/streams export: no `spans` list")
    return [build_record(src, now_ns) for src in sources_from_spans(spans)]
