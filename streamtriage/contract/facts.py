"""Facts derived from the span contract, each defined once, in a SQL form and a Python form.

The dashboards, the Grafana alerts and the classifier's store queries read the SQL forms (over the
``otel_traces`` columns of span contract §5); the collector's decoder (the ``/metrics`` counters
behind the Prometheus rules) and the classifier read the Python forms (over a span's stored
attributes: strings, arrays as JSON, booleans ``true``/``false``). ``tests/contract`` runs both on
the same records in chDB and checks they agree, so every reader counts the same thing.

| Fact | Over | SQL | Python |
|---|---|---|---|
| terminal seen | a call span | ``TERMINAL_SEEN_SQL`` | ``terminal_seen`` |
| incomplete stream | a call span | ``INCOMPLETE_SQL`` | ``is_incomplete`` |
| truncated | a call span | ``TRUNCATED_SQL`` | ``is_truncated`` |
| open call | the spans of one call group | ``OPEN_CALL_SQL`` | ``is_open_call`` |
| status / hang age / open hang | the poll spans of one object | ``OBJECT_STATUS_SQL``, ``OBJECT_OPEN_S_SQL``, ``open_hang_sql`` | ``object_status``, ``object_open_s``, ``is_open_hang`` |
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# -- vocabularies ---------------------------------------------------------------------------------
TRUNCATING_INCOMPLETE_REASONS = ("max_output_tokens", "max_completion_tokens", "max_prompt_tokens")
"""``incomplete_details.reason`` values that mean a token budget cut the output."""
NOT_INCOMPLETE_OUTCOMES = ("cancelled", "app_error", "http_error")
"""Outcomes where a missing terminal marker is not the stream's fault (the app stopped, or no stream)."""
NON_TERMINAL_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")
"""Object statuses that mean "not finished yet" (§4.3; ``requires_action`` waits on the app)."""
UNREAD_POLL_STATUSES = ("", "unknown", "error")
"""Poll statuses that say nothing about the object (the hook writes ``error`` when the GET raised)."""
POLLED_APIS = ("assistants.runs", "responses", "vector_stores.files", "vector_stores.file_batches", "vector_stores")
"""API kinds whose objects are polled (§4.1)."""


def _sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


NON_TERMINAL_SQL = _sql_list(NON_TERMINAL_STATUSES)

# -- call span facts --------------------------------------------------------------------------------
TERMINAL_SEEN_SQL = "LlmTerminalSeen = 1"
"""The protocol's terminal marker was received (``streamtriage.terminal.seen = 'true'``)."""

INCOMPLETE_SQL = (
    "(SpanAttributes['streamtriage.call.mode'] = 'stream' AND LlmTerminalSeen = 0"
    f" AND LlmOutcome NOT IN {_sql_list(NOT_INCOMPLETE_OUTCOMES)})"
)
"""A stream that started but never got its terminal marker, and not because the app stopped reading."""

TRUNCATED_SQL = (
    "(LlmFinishReason = 'length' OR SpanAttributes['streamtriage.incomplete_reason'] IN"
    f" {_sql_list(TRUNCATING_INCOMPLETE_REASONS)})"
)
"""Output cut by a token budget: first ``finish_reason`` is ``length``, or an ``incomplete_details.reason``
naming a token budget (``LlmFinishReason`` is the first element of ``gen_ai.response.finish_reasons``)."""


def _str(attrs: Mapping[str, Any], name: str) -> str:
    v = attrs.get(name)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def terminal_seen(attrs: Mapping[str, Any]) -> bool:
    return _str(attrs, "streamtriage.terminal.seen") == "true"


def first_finish_reason(raw: Any) -> str:
    """First element of ``gen_ai.response.finish_reasons`` (stored as a JSON array), as the store's
    ``LlmFinishReason`` column computes it (``JSONExtractString(raw, 1)``): ``""`` if not a string."""
    if isinstance(raw, (list, tuple)):
        first = raw[0] if raw else ""
    else:
        if not raw:
            return ""
        try:
            val = json.loads(raw)
        except (TypeError, ValueError):
            return ""
        first = val[0] if isinstance(val, list) and val else ""
    return first if isinstance(first, str) else ""


def is_incomplete(attrs: Mapping[str, Any]) -> bool:
    return (_str(attrs, "streamtriage.call.mode") == "stream" and not terminal_seen(attrs)
            and _str(attrs, "streamtriage.outcome") not in NOT_INCOMPLETE_OUTCOMES)


def is_truncated(attrs: Mapping[str, Any]) -> bool:
    if _str(attrs, "streamtriage.incomplete_reason") in TRUNCATING_INCOMPLETE_REASONS:
        return True
    raw = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(raw, str) and "length" not in raw:
        return False  # cheap pre-check: the decoder runs this on every call span
    return first_finish_reason(raw) == "length"


# -- call groups ----------------------------------------------------------------------------------
OPEN_CALL_SQL = "countIf(LlmSpan = 'call') = 0"
"""Over the spans of one call group (``GROUP BY`` trace and call span): event or poll spans arrived,
the call span has not. The classifier labels such a call ``open``."""


def is_open_call(span_kinds: Iterable[str]) -> bool:
    """``span_kinds``: the ``streamtriage.span`` of every span in the group."""
    return "call" not in set(span_kinds)


# -- polled objects -------------------------------------------------------------------------------
POLL_READ_OK_SQL = f"(SpanAttributes['error.type'] = '' AND LlmStatus NOT IN {_sql_list(UNREAD_POLL_STATUSES)})"
"""A poll that read a status; a failed read (timeout, cancelled helper) says nothing about the object."""
OBJECT_STATUS_SQL = f"argMaxIf(LlmStatus, Timestamp, {POLL_READ_OK_SQL})"
"""Over the poll spans of one object: its latest status, from its last successful poll."""
OBJECT_OPEN_S_SQL = (
    "greatest(\n"
    "         argMax(toFloat64OrZero(SpanAttributes['streamtriage.poll.first_seen_ms']), Timestamp),\n"
    "         toFloat64(toUnixTimestamp64Milli(max(Timestamp)) - toUnixTimestamp64Milli(min(Timestamp)))\n"
    "       ) / 1000"
)
"""Over the poll spans of one object: seconds it has been open (the hang age): the hook's own clock
since it first saw the object, or the polls' own span, whichever saw longer."""


def open_hang_sql(status: str, open_s: str, hang_after_s: str) -> str:
    """An open polling hang, over a row holding an object's status and open seconds."""
    return f"{status} IN {NON_TERMINAL_SQL} AND {open_s} >= {hang_after_s}"


@dataclass(frozen=True)
class PollRead:
    """One poll span of an object, as stored."""

    timestamp_ns: int
    status: str
    first_seen_ms: str = ""  # the stored attribute string
    error_type: str = ""

    @classmethod
    def from_attrs(cls, timestamp_ns: int, attrs: Mapping[str, Any]) -> PollRead:
        return cls(timestamp_ns, _str(attrs, "streamtriage.status"), _str(attrs, "streamtriage.poll.first_seen_ms"),
                   _str(attrs, "error.type"))


def poll_read_ok(p: PollRead) -> bool:
    return p.error_type == "" and p.status not in UNREAD_POLL_STATUSES


def object_status(polls: Sequence[PollRead]) -> str:
    ok = [p for p in polls if poll_read_ok(p)]
    return max(ok, key=lambda p: p.timestamp_ns).status if ok else ""


def _float_or_zero(raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        return 0.0
    return v


def object_open_s(polls: Sequence[PollRead]) -> float:
    if not polls:
        return 0.0
    last = max(polls, key=lambda p: p.timestamp_ns)
    span_ms = max(p.timestamp_ns for p in polls) // 1_000_000 - min(p.timestamp_ns for p in polls) // 1_000_000
    return max(_float_or_zero(last.first_seen_ms), float(span_ms)) / 1000


def is_open_hang(polls: Sequence[PollRead], hang_after_s: float) -> bool:
    return object_status(polls) in NON_TERMINAL_STATUSES and object_open_s(polls) >= hang_after_s
