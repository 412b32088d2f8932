"""Fault selection: which misbehaviour a request asks for, and with which parameters.

A request picks its fault without any SDK change, in one of three ways (later ones win):
the model name ``fault/NAME`` (optionally ``fault/NAME;after=3;stall=1.5``), the header
``x-streamtriage-fault: NAME`` and the header ``x-streamtriage-params: after=3;stall=1.5``.
Polled objects (runs, background responses, vector store files) remember the fault of the
request that created them, so their later GETs misbehave without any header.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FAULT_HEADER = "x-streamtriage-fault"
PARAMS_HEADER = "x-streamtriage-params"
RUN_HEADER = "x-streamtriage-run"
MODEL_PREFIX = "fault/"

#: Every fault name the server understands, with what it does. Names are stable: the scenario
#: catalogue, the demo and other teams' tests refer to them.
FAULTS: dict[str, str] = {
    "healthy": "normal answer; params n (chunks/deltas), gap (s between events), text",
    "cut": "close the connection after `after` events; how=fin|rst, framing=chunked|length|close",
    "no-terminal": "end the body cleanly without the terminal marker ([DONE] / response.completed / "
    "thread.run.* / Anthropic message_delta + message_stop); done=1 still sends the Assistants `event: done`; "
    "start=0 also leaves out Anthropic's message_start",
    "stall": "pause `stall` s after `after` events, then finish; keepalive=K sends `: keep-alive` every K s",
    "stall-headers": "pause `stall` s before the status line",
    "done-hold": "send everything incl. [DONE], then keep the body open for `hold` s",
    "error-event": "after `after` events send an in-band error; shape=nested|bare|string|flat, named=1 "
    "adds `event: error`, code/message set the error",
    "status": "answer HTTP `status` before any event; retry_after, retry_after_ms, body=json|html, "
    "times=N fails only the first N attempts, code/message/type set the JSON error",
    "drop": "close the connection before the status line; how=fin|rst, times=N",
    "wallclock-cut": "healthy stream (n, gap) cut with FIN `cut` s after the request arrived, as a proxy counts its "
    "limit; first=F delays the first event F s (a model thinking), which counts against the limit",
    "empty-data": "insert an empty `data:` frame after `after` events",
    "finish-null": "chat: the last chunk carries finish_reason null",
    "finish-absent": "chat: no chunk has the finish_reason key",
    "length": "chat: finish_reason length (reasoning=R reports R of the capped tokens as reasoning); "
    "responses: response.incomplete max_output_tokens",
    "content-filter": "chat: finish_reason content_filter; responses: response.incomplete content_filter",
    "tool-calls": "chat: a tool call, finish_reason tool_calls; truncated=1 cuts the arguments JSON "
    "and reports usage.completion_tokens == max_tokens; anthropic: a tool_use block in input_json_delta "
    "fragments, invalid=1 makes its JSON unparseable",
    "usage": "chat: end with an empty-choices usage chunk (as with stream_options.include_usage)",
    "incomplete": "responses: response.incomplete with reason (max_output_tokens|content_filter); "
    "assistants: thread.run.incomplete with reason",
    "failed": "responses: response.failed with code; assistants: thread.run.failed with code "
    "(server_error|rate_limit_exceeded)",
    "expired": "assistants: thread.run.expired",
    "cancelled": "assistants: thread.run.cancelled",
    "requires-action": "assistants: the run stops at thread.run.requires_action; expire=1 makes a later "
    "submit_tool_outputs fail because the run expired",
    "active-run": "assistants: 400 'Thread ... already has an active run ...' on run create",
    "stuck": "polled object never leaves `status` (queued|in_progress) for runs and background "
    "responses, in_progress for vector store files and batches",
    "poll-status": "assistants: the run is created, but its GETs answer HTTP `status` (default 429; "
    "retry_after, retry_after_ms); times=N fails only the first N GETs",
    "slow-done": "polled object reaches its terminal status after `polls` GETs (healthy polling)",
    "finish": "chat: the answer ends with finish_reason `reason` (any value, as providers send their own); "
    "anthropic: message_delta carries stop_reason `reason` (max_tokens, refusal, pause_turn, "
    "model_context_window_exceeded, tool_use, end_turn)",
}
#: Any fault on a chat stream may add ``provider=NAME`` to get that provider's stream shape
#: (``simulator/provider_shapes.py``, ``PROVIDERS``): ``fault/finish;reason=eos;provider=together``.
PROVIDER_PARAM = "provider"

_FLOAT_KEYS = {"stall", "gap", "hold", "cut", "keepalive", "retry_after", "expire_after", "first"}
_INT_KEYS = {"after", "n", "status", "times", "retry_after_ms", "polls", "max_tokens", "truncated", "named",
             "done", "expire", "reasoning", "invalid", "start"}


class FaultError(ValueError):
    """A request named an unknown fault or gave a malformed parameter (answered with HTTP 400)."""


@dataclass(frozen=True)
class FaultSpec:
    """A parsed fault: its name and typed parameters (ints/floats where the key is numeric)."""

    name: str = "healthy"
    params: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    def int(self, key: str, default: int) -> int:
        return int(self.params.get(key, default))

    def float(self, key: str, default: float) -> float:
        return float(self.params.get(key, default))

    def encode(self) -> str:
        """``NAME;k=v;...`` form, usable as model suffix or header value."""
        return ";".join([self.name, *(f"{k}={v}" for k, v in self.params.items())])


def parse_params(text: str) -> dict[str, Any]:
    """Parse ``after=3;stall=1.5`` (``,`` also separates) into typed values."""
    out: dict[str, Any] = {}
    for part in text.replace(",", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise FaultError(f"fault parameter {part!r} is not key=value")
        key, value = (s.strip() for s in part.split("=", 1))
        try:
            if key == "status" and not value.isdigit():
                out[key] = value  # a polled object's stuck status, not an HTTP status
            elif key in _INT_KEYS:
                out[key] = int(value)
            elif key in _FLOAT_KEYS:
                out[key] = float(value)
            else:
                out[key] = value
        except ValueError:
            raise FaultError(f"fault parameter {key}={value!r} is not a number") from None
    return out


def parse_fault(model: str | None, headers: Mapping[str, str]) -> FaultSpec:
    """Combine the model name and the fault headers of one request into a FaultSpec."""
    name = "healthy"
    params: dict[str, Any] = {}
    if model and model.startswith(MODEL_PREFIX):
        head, _, rest = model[len(MODEL_PREFIX):].partition(";")
        name = head or "healthy"
        params.update(parse_params(rest))
    if headers.get(FAULT_HEADER):
        head, _, rest = headers[FAULT_HEADER].partition(";")
        name = head.strip() or name
        params.update(parse_params(rest))
    if headers.get(PARAMS_HEADER):
        params.update(parse_params(headers[PARAMS_HEADER]))
    if name not in FAULTS:
        raise FaultError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
    if PROVIDER_PARAM in params:
        from .provider_shapes import check_provider  # the shapes import this module

        check_provider(str(params[PROVIDER_PARAM]))
    return FaultSpec(name, params)


def fault_model(name: str, **params: Any) -> str:
    """The model string that selects a fault, e.g. ``fault/cut;after=3``."""
    return MODEL_PREFIX + FaultSpec(name, params).encode()
