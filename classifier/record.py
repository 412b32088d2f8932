"""Stream records: one call (call span + its event and poll spans) flattened into plain facts.

The rule engine only ever sees a record, never spans, so the match language stays independent of
the storage layout. A record is a ``dict`` (cheap to build in bulk from SQL rows); ``FIELDS`` is
the closed list of its keys and their types, which is also the vocabulary of field matchers.

Records are built from *grouped* rows (see ``classifier/assemble.py``): the call span's attributes
plus ordered arrays describing its child event and poll spans. ``build_record`` is the one place
that turns such a row into a record, used both by the SQL path and by tests that build spans by hand.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamtriage.contract.facts import NON_TERMINAL_STATUSES

Record = dict[str, Any]

# field name -> (type, meaning). Types: str, int, float, bool, list (of str).
FIELDS: dict[str, tuple[str, str]] = {
    "api": ("str", "streamtriage.api"),
    "mode": ("str", "stream | request | poll | background"),
    "helper": ("str", "SDK helper in use"),
    "outcome": ("str", "streamtriage.outcome, or 'open' while the call span has not arrived"),
    "open": ("bool", "the call span has not arrived yet"),
    "terminal_seen": ("bool", "the protocol's terminal marker was received"),
    "terminal_event": ("str", "which terminal marker"),
    "status": ("str", "last object status (run / response / file)"),
    "incomplete_reason": ("str", "incomplete_details.reason"),
    "finish_reason": ("str", "first choice's finish reason ('' when none)"),
    "finish_reasons": ("list", "all finish reasons"),
    "model": ("str", "requested model"),
    "service": ("str", "service.name"),
    "error_type": ("str", "error.type"),
    "exception_type": ("str", "module-qualified class the app saw"),
    "exception_message": ("str", "its message"),
    "exception_chain": ("list", "classes from the raised exception inwards"),
    "error_code": ("str", "API / in-band / run error code"),
    "api_error_type": ("str", "streamtriage.error.type"),
    "http_status": ("int", "HTTP status of the last response"),
    "retry_count": ("int", "SDK retries before the response"),
    "retry_after_ms": ("float", "last Retry-After"),
    "cancel_reason": ("str", "why the consumer stopped early"),
    "app_exception_type": ("str", "the app's own exception"),
    "app_exception_message": ("str", "its message"),
    "event_count": ("int", "stream events received"),
    "delta_count": ("int", "content deltas received"),
    "delta_bytes": ("int", "bytes of delta text"),
    "ttfe_ms": ("float", "request start to first event"),
    "max_gap_ms": ("float", "largest gap between events"),
    "later_gap_ms": ("float", "largest gap between events after the first one (from event spans)"),
    "burst_ratio": ("float", "(duration - ttfe) / ttfe: near 0 when everything arrived in one burst"),
    "after_first_ms": ("float", "duration - ttfe: from the first event (about when headers came) to the end"),
    "last_event_type": ("str", "type of the last event"),
    "idle_ms": ("float", "time without a new event: last_event.age_ms, or now - last event for open calls"),
    "duration_ms": ("float", "call duration (open: so far)"),
    "input_tokens": ("int", "usage input tokens"),
    "output_tokens": ("int", "usage output tokens"),
    "reasoning_tokens": ("int", "reasoning tokens"),
    "max_tokens": ("int", "requested output cap"),
    "output_ratio": ("float", "output_tokens / max_tokens"),
    "reasoning_ratio": ("float", "reasoning_tokens / output_tokens"),
    "bytes_per_token": ("float", "delta_bytes / output_tokens (tiny for whitespace runaway)"),
    "events": ("list", "event types in stream order (consecutive repeats folded)"),
    "event_statuses": ("list", "statuses carried by events, in order"),
    "poll_count": ("int", "poll spans (or the helper's poll count)"),
    "poll_statuses": ("list", "statuses observed by polls, in order"),
    "poll_last_status": ("str", "status seen by the last poll"),
    "poll_status_unchanged_ms": ("float", "how long the last poll status has been unchanged"),
    "requires_action_ms": ("float", "how long the run has waited in requires_action"),
    "poll_error_code": ("str", "error code reported by a poll"),
    "timeout_s": ("float", "read timeout in effect"),
    "fingerprint": ("str", "request fingerprint"),
    "object_id": ("str", "long-lived object id"),
    "thread_id": ("str", "Assistants thread id"),
    "followed_up": ("bool", "a later call acted on the same object (e.g. submitted tool outputs to the run)"),
    # relay spans (api "relay"): the downstream leg to a browser, with its upstream LLM calls' facts
    "relay_kind": ("str", "websocket | sse | http_stream | http"),
    "relay_end": ("str", "app_close | app_return | client_disconnect | server_crash | completed"),
    "relay_close_code": ("int", "WebSocket close code the browser saw (1006: dropped without a close frame)"),
    "relay_messages": ("int", "messages / body chunks sent downstream"),
    "relay_last_send_ms": ("float", "relay start to the last downstream send"),
    "relay_client_gone_ms": ("float", "relay start to when the client went away"),
    "relay_told_client": ("bool", "after an upstream failure, the app told the client (error message or error close)"),
    "relay_error_sent": ("bool", "a downstream message carried an error"),
    "upstream_calls": ("int", "LLM calls made while serving the relay"),
    "upstream_open": ("int", "of which still running when the relay ended"),
    "upstream_outcome": ("str", "outcome of the (failed, else last) upstream call"),
    "upstream_finish_reason": ("str", "its finish reason"),
    "upstream_terminal_seen": ("bool", "its terminal marker arrived"),
    "upstream_exception_type": ("str", "the exception it raised"),
    "upstream_end_ms": ("float", "relay start to its end"),
    "cut_cluster_size": ("int", "mid-stream cuts to the same server at the same duration from the request "
                                "(classifier/cut_clusters.py); missing outside a cluster"),
    "cut_cluster_limit_ms": ("float", "the intermediary limit that cluster implies (its shortest duration)"),
}

# Call-span attribute -> (record field, type). Everything the classifier reads from a call span.
CALL_ATTRS: list[tuple[str, str, str]] = [
    ("streamtriage.api", "api", "str"),
    ("streamtriage.call.mode", "mode", "str"),
    ("streamtriage.helper", "helper", "str"),
    ("streamtriage.outcome", "outcome", "str"),
    ("streamtriage.terminal.seen", "terminal_seen", "bool"),
    ("streamtriage.terminal.event", "terminal_event", "str"),
    ("streamtriage.status", "status", "str"),
    ("streamtriage.incomplete_reason", "incomplete_reason", "str"),
    ("gen_ai.response.finish_reasons", "finish_reasons", "list"),
    ("gen_ai.request.model", "model", "str"),
    ("error.type", "error_type", "str"),
    ("streamtriage.exception.type", "exception_type", "str"),
    ("streamtriage.exception.message", "exception_message", "str"),
    ("streamtriage.exception.chain", "exception_chain", "list"),
    ("streamtriage.error.code", "error_code", "str"),
    ("streamtriage.error.type", "api_error_type", "str"),
    ("http.response.status_code", "http_status", "int"),
    ("streamtriage.retry.count", "retry_count", "int"),
    ("streamtriage.retry.after_ms", "retry_after_ms", "float"),
    ("streamtriage.cancel.reason", "cancel_reason", "str"),
    ("streamtriage.app_exception.type", "app_exception_type", "str"),
    ("streamtriage.app_exception.message", "app_exception_message", "str"),
    ("streamtriage.event.count", "event_count", "int"),
    ("streamtriage.delta.count", "delta_count", "int"),
    ("streamtriage.delta.bytes", "delta_bytes", "int"),
    ("streamtriage.ttfe_ms", "ttfe_ms", "float"),
    ("streamtriage.max_gap_ms", "max_gap_ms", "float"),
    ("streamtriage.last_event.type", "last_event_type", "str"),
    ("streamtriage.last_event.age_ms", "idle_ms", "float"),
    ("gen_ai.usage.input_tokens", "input_tokens", "int"),
    ("gen_ai.usage.output_tokens", "output_tokens", "int"),
    ("streamtriage.usage.reasoning_tokens", "reasoning_tokens", "int"),
    ("gen_ai.request.max_tokens", "max_tokens", "int"),
    ("streamtriage.poll.count", "poll_count", "int"),
    ("streamtriage.request.timeout_s", "timeout_s", "float"),
    ("streamtriage.request.fingerprint", "fingerprint", "str"),
    ("streamtriage.object.id", "object_id", "str"),
    ("streamtriage.thread.id", "thread_id", "str"),
    ("streamtriage.relay.kind", "relay_kind", "str"),
    ("streamtriage.relay.end", "relay_end", "str"),
    ("streamtriage.relay.close_code", "relay_close_code", "int"),
    ("streamtriage.relay.messages", "relay_messages", "int"),
    ("streamtriage.relay.last_send_ms", "relay_last_send_ms", "float"),
    ("streamtriage.relay.client_gone_ms", "relay_client_gone_ms", "float"),
    ("streamtriage.relay.told_client", "relay_told_client", "bool"),
    ("streamtriage.relay.error_sent", "relay_error_sent", "bool"),
    ("streamtriage.relay.upstream.calls", "upstream_calls", "int"),
    ("streamtriage.relay.upstream.open", "upstream_open", "int"),
    ("streamtriage.relay.upstream.outcome", "upstream_outcome", "str"),
    ("streamtriage.relay.upstream.finish_reason", "upstream_finish_reason", "str"),
    ("streamtriage.relay.upstream.terminal_seen", "upstream_terminal_seen", "bool"),
    ("streamtriage.relay.upstream.exception.type", "upstream_exception_type", "str"),
    ("streamtriage.relay.upstream.end_ms", "upstream_end_ms", "float"),
]

def _to_int(raw: Any) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return _conv("int", raw)


def _to_float(raw: Any) -> float | None:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


_CONVERTERS: dict[str, Callable[[Any], Any]] = {"str": str, "bool": lambda raw: raw is True or str(raw).lower() == "true",
               "int": _to_int, "float": _to_float, "list": lambda raw: _conv("list", raw)}
_CALL_CONV = [(attr, name, _CONVERTERS[kind]) for attr, name, kind in CALL_ATTRS]



def _conv(kind: str, raw: Any) -> Any:
    """Stored attribute strings -> Python values; missing or unparsable -> None (never an error)."""
    if raw is None or raw == "":
        return None if kind != "str" else None
    if kind == "str":
        return str(raw)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        return str(raw).lower() == "true"
    if kind == "int":
        try:
            return int(float(raw))
        except (TypeError, ValueError):
            return None
    if kind == "float":
        try:
            return float(raw)
        except (TypeError, ValueError):
            return None
    if kind == "list":
        if isinstance(raw, (list, tuple)):
            return [str(x) for x in raw]
        try:
            val = json.loads(raw)
        except (TypeError, ValueError):
            return [str(raw)]
        return [str(x) for x in val] if isinstance(val, list) else [str(val)]
    raise ValueError(kind)


@dataclass
class ChildEvent:
    """One event span, as much as the classifier needs of it."""

    type: str
    index: int = 0
    count: int = 1
    gap_ms: float = 0.0
    max_gap_ms: float = 0.0
    finish_reason: str = ""
    status: str = ""
    error_code: str = ""
    terminal: bool = False
    end_ns: int = 0
    api: str = ""
    model: str = ""
    fingerprint: str = ""


@dataclass
class ChildPoll:
    """One poll span."""

    status: str
    attempt: int = 0
    status_since_ms: float | None = None
    first_seen_ms: float | None = None
    start_ns: int = 0
    end_ns: int = 0
    error_code: str = ""
    api: str = ""
    object_id: str = ""
    model: str = ""
    read_failed: bool = False  # the GET itself raised: it observed no status


@dataclass
class EventAgg:
    """A call's event spans reduced to what rules read (SQL computes the same in one GROUP BY)."""

    types: list[str] = field(default_factory=list)      # folded, in stream order
    statuses: list[str] = field(default_factory=list)   # folded, non-empty, in stream order
    count: int = 0
    delta_count: int = 0
    max_gap_ms: float = 0.0
    later_gap_ms: float | None = None
    last_end_ns: int = 0
    last_type: str = ""
    terminal_type: str = ""
    terminal: bool = False
    finish_reason: str = ""
    error_code: str = ""
    api: str = ""
    model: str = ""
    fingerprint: str = ""


def aggregate_events(events: Sequence[ChildEvent]) -> EventAgg | None:
    """The Python twin of the SQL aggregation in ``assemble.py`` (used for hand-built spans)."""
    if not events:
        return None
    evs = sorted(events, key=lambda e: e.index)
    later = [e.max_gap_ms for e in evs] + [e.gap_ms for e in evs if e.index > 0]
    terms = [e.type for e in evs if e.terminal]
    frs = [e.finish_reason for e in evs if e.finish_reason]
    codes = [e.error_code for e in evs if e.error_code]
    return EventAgg(
        types=_fold(e.type for e in evs),
        statuses=_fold(e.status for e in evs if e.status),
        count=sum(e.count for e in evs),
        delta_count=sum(e.count for e in evs if e.type.endswith("delta")),
        max_gap_ms=max(max(e.gap_ms, e.max_gap_ms) for e in evs),
        later_gap_ms=max(later) if (len(evs) > 1 or evs[0].count > 1) else None,
        last_end_ns=max(e.end_ns for e in evs),
        last_type=evs[-1].type,
        terminal_type=terms[-1] if terms else "",
        terminal=bool(terms),
        finish_reason=frs[-1] if frs else "",
        error_code=codes[-1] if codes else "",
        api=next((e.api for e in evs if e.api), ""),
        model=next((e.model for e in evs if e.model), ""),
        fingerprint=next((e.fingerprint for e in evs if e.fingerprint), ""),
    )


@dataclass
class RecordSource:
    """Everything one record is built from (a grouped SQL row or hand-built spans)."""

    trace_id: str
    span_id: str
    service: str = ""
    start_ns: int = 0
    duration_ns: int = 0
    call_attrs: Mapping[str, Any] | None = None  # None: the call span has not arrived (open)
    events: list[ChildEvent] = field(default_factory=list)
    polls: list[ChildPoll] = field(default_factory=list)
    agg: EventAgg | None = None  # pre-aggregated events (SQL path); else computed from ``events``


def _fold(types: Iterable[str]) -> list[str]:
    out: list[str] = []
    for t in types:
        if not out or out[-1] != t:
            out.append(t)
    return out


def build_record(src: RecordSource, now_ns: int) -> Record:
    """Turn a call's spans into a record; derived facts (ratios, idle time, poll waits) live here."""
    rec: Record = dict.fromkeys(FIELDS)
    rec["trace_id"] = src.trace_id
    rec["span_id"] = src.span_id
    rec["service"] = src.service
    rec["start_ns"] = src.start_ns
    ev = src.agg if src.agg is not None else aggregate_events(src.events)
    polls = sorted(src.polls, key=lambda p: (p.start_ns, p.attempt))
    attrs = src.call_attrs
    if attrs is not None:
        get = attrs.get
        for attr, name, conv in _CALL_CONV:
            raw = get(attr)
            if raw is not None and raw != "":
                rec[name] = conv(raw)
        rec["open"] = False
        rec["duration_ms"] = src.duration_ns / 1e6
        if rec["terminal_seen"] is None:
            rec["terminal_seen"] = False
        if rec["delta_count"] is None and ev is not None:
            rec["delta_count"] = ev.delta_count
    else:
        first_p = polls[0] if polls else None
        rec["api"] = (ev.api if ev else "") or (first_p.api if first_p else "") or None
        rec["model"] = (ev.model if ev else "") or (first_p.model if first_p else "") or None
        rec["fingerprint"] = (ev.fingerprint if ev else "") or None
        rec["object_id"] = (first_p.object_id if first_p else "") or None
        rec["outcome"] = "open"
        rec["open"] = True
        rec["mode"] = "stream" if ev is not None else ("poll" if polls else None)
        rec["terminal_seen"] = bool(ev and ev.terminal)
        if ev is not None:
            rec["event_count"] = ev.count
            rec["max_gap_ms"] = ev.max_gap_ms
            rec["last_event_type"] = ev.last_type
            rec["idle_ms"] = max(0.0, (now_ns - ev.last_end_ns) / 1e6)
            rec["terminal_event"] = ev.terminal_type or None
            rec["finish_reasons"] = [ev.finish_reason] if ev.finish_reason else None
            rec["error_code"] = ev.error_code or None
        rec["duration_ms"] = max(0.0, (now_ns - src.start_ns) / 1e6) if src.start_ns else None
    rec["events"] = ev.types if ev else []
    rec["event_statuses"] = ev.statuses if ev else []
    if attrs is None and rec["event_statuses"]:
        rec["status"] = rec["event_statuses"][-1]
    frs = rec["finish_reasons"]
    rec["finish_reason"] = frs[0] if frs else ""
    rec["later_gap_ms"] = ev.later_gap_ms if ev else None
    _derive_polls(rec, polls, now_ns, attrs is None)
    _derive_ratios(rec)
    return rec


def _derive_polls(rec: Record, polls: Sequence[ChildPoll], now_ns: int, is_open: bool) -> None:
    n_polls = len(polls)
    # a poll whose GET failed (or was abandoned) saw no status: it is not part of the status timeline
    polls = [p for p in polls if not p.read_failed and p.status and p.status != "error"]
    if n_polls and rec["poll_count"] is None:
        rec["poll_count"] = n_polls
    if not polls:
        if rec["poll_count"] is None:
            rec["poll_count"] = 0
        rec["poll_statuses"] = []
        return
    statuses = [p.status for p in polls]
    rec["poll_statuses"] = _fold(statuses)
    last = polls[-1]
    rec["poll_last_status"] = last.status
    rec["poll_count"] = max(rec["poll_count"] or 0, len(polls))
    codes = [p.error_code for p in polls if p.error_code]
    rec["poll_error_code"] = codes[-1] if codes else None
    if rec["status"] is None or is_open or rec["mode"] == "background":
        rec["status"] = last.status
    # How long has the last status been unchanged? From the spans themselves (first poll with the
    # current status to the last poll), or the hook's own clock, whichever saw longer.
    i = len(polls) - 1
    while i > 0 and polls[i - 1].status == last.status:
        i -= 1
    unchanged = (last.end_ns - polls[i].start_ns) / 1e6
    if last.status_since_ms is not None:
        unchanged = max(unchanged, last.status_since_ms)
    if last.status in NON_TERMINAL_STATUSES:
        # still waiting: the wait continues while nobody answers
        if is_open or rec["mode"] == "background" or last.status == "requires_action":
            unchanged += max(0.0, (now_ns - last.end_ns) / 1e6)
    rec["poll_status_unchanged_ms"] = unchanged
    rec["requires_action_ms"] = unchanged if last.status == "requires_action" else 0.0
    if is_open:
        rec["idle_ms"] = max(0.0, (now_ns - last.end_ns) / 1e6)


def _derive_ratios(rec: Record) -> None:
    out, cap = rec["output_tokens"], rec["max_tokens"]
    rec["output_ratio"] = (out / cap) if out is not None and cap else None
    rsn = rec["reasoning_tokens"]
    rec["reasoning_ratio"] = (rsn / out) if rsn is not None and out else None
    ttfe, dur = rec["ttfe_ms"], rec["duration_ms"]
    rec["burst_ratio"] = ((dur - ttfe) / ttfe) if ttfe and dur is not None and not rec["open"] else None
    rec["after_first_ms"] = (dur - ttfe) if ttfe is not None and dur is not None and not rec["open"] else None
    db = rec["delta_bytes"]
    rec["bytes_per_token"] = (db / out) if db is not None and out else None
