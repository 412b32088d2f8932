"""The Anthropic Messages API as the simulator answers it: ``POST /v1/messages``, streamed and not.

Byte-level like the OpenAI routes: the handler builds the SSE frames of one message
(``message_start`` -> ``content_block_*`` -> ``message_delta`` -> ``message_stop``, with the ``ping``
the API sends after ``message_start``), and the server applies the transport faults while writing
(``cut``, ``stall``, ``error-event``, ``status``...). Anthropic-specific parts:

* the terminal marker is the pair ``message_delta`` + ``message_stop`` (``Frames.terminal = 2``), so
  ``no-terminal`` ends the body cleanly with neither, as a stream cut at an event boundary does;
  ``start=0`` also leaves out ``message_start``;
* keep-alives during a ``stall`` are ``event: ping`` frames, as the API sends them;
* the in-band error is ``event: error`` with ``{"type": "error", "error": {"type": "overloaded_error"}}``;
* ``finish;reason=...`` sets ``message_delta.delta.stop_reason`` (``max_tokens``, ``refusal``, ``pause_turn``,
  ``model_context_window_exceeded``, ``tool_use``, ``end_turn``); ``tool-calls`` streams a ``tool_use``
  block in ``input_json_delta`` fragments, ``invalid=1`` makes its JSON unparseable.

Shapes follow the SDK's models (anthropic-sdk-python ``types/raw_message_*_event.py``).
"""
from __future__ import annotations

import json
from typing import Any

from . import payloads as p
from .faults import FaultSpec
from .replies import Reply, StreamReply
from .streams import Frames
from .wire import sse

DEFAULT_MODEL = "claude-sonnet-4-5"
PING = sse({"type": "ping"}, event="ping")
TOOL_INPUT = "{\"city\": \"Paris\", \"unit\": \"celsius\"}"
TOOL_INPUT_INVALID = "{\"city\": \"Paris\", \"unit\": celsius}"  # a bare word: no JSON parser accepts it
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _event(data: dict[str, Any]) -> bytes:
    return sse(data, event=str(data["type"]))


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "service_tier": "standard"}


def _stop_reason(fault: FaultSpec) -> str:
    if fault.name == "finish":
        return str(fault.get("reason", "end_turn"))
    return {"length": "max_tokens", "tool-calls": "tool_use"}.get(fault.name, "end_turn")


def message_obj(mid: str, model: str, content: list[dict[str, Any]], stop_reason: str | None,
                usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": mid, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}


def message_frames(body: dict[str, Any], fault: FaultSpec, ids: p.Ids) -> Frames:
    """The SSE frames of one streamed message; the last two (``message_delta``, ``message_stop``) are terminal."""
    model = str(body.get("model") or DEFAULT_MODEL)
    max_tokens = int(body.get("max_tokens") or 1024)
    mid = ids.new("msg")
    n = fault.int("n", 5)
    stop = _stop_reason(fault)
    frames: list[bytes] = []
    if fault.int("start", 1):
        frames.append(_event({"type": "message_start", "message": message_obj(mid, model, [], None, _usage(21, 1))}))
    frames.append(PING)
    if fault.name == "tool-calls":
        args = TOOL_INPUT_INVALID if fault.int("invalid", 0) else TOOL_INPUT
        frames.append(_event({"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": ids.new("toolu"), "name": "get_weather", "input": {}}}))
        for part in p.pieces(max(n, 1), args):
            frames.append(_event({"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "input_json_delta", "partial_json": part}}))
    else:
        frames.append(_event({"type": "content_block_start", "index": 0,
                              "content_block": {"type": "text", "text": "", "citations": None}}))
        for piece in p.pieces(n, fault.get("text")):
            frames.append(_event({"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "text_delta", "text": piece}}))
    frames.append(_event({"type": "content_block_stop", "index": 0}))
    output = max_tokens if stop == "max_tokens" else n
    frames.append(_event({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                          "usage": {"output_tokens": output}}))
    frames.append(_event({"type": "message_stop"}))
    return Frames(frames, terminal=2, final_status=stop)


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error envelope (HTTP bodies and the in-band ``event: error`` alike)."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def error_frame(fault: FaultSpec) -> bytes:
    """The in-band ``event: error`` sent on an HTTP 200 stream (default ``overloaded_error``)."""
    return sse(error_body(str(fault.get("type", "overloaded_error")), str(fault.get("message", "Overloaded"))),
               event="error")


def status_body(fault: FaultSpec, status: int) -> dict[str, Any]:
    """The JSON body of an HTTP error on ``/v1/messages``."""
    etype, message = ERRORS.get(status, ("api_error", f"HTTP {status}"))
    return error_body(str(fault.get("type", etype)), str(fault.get("message", message)))


async def messages_create(body: dict[str, Any], fault: FaultSpec, ids: p.Ids) -> Reply | StreamReply:
    """``POST /v1/messages``: an SSE stream when ``stream`` is true, else one Message object."""
    if body.get("stream"):
        return StreamReply(message_frames(body, fault, ids), fault, "anthropic", keepalive=PING)
    model = str(body.get("model") or DEFAULT_MODEL)
    stop = _stop_reason(fault)
    if fault.name == "tool-calls":
        content = [{"type": "tool_use", "id": ids.new("toolu"), "name": "get_weather",
                    "input": json.loads(TOOL_INPUT)}]
    else:
        content = [{"type": "text", "text": "".join(p.pieces(fault.int("n", 5), fault.get("text"))),
                    "citations": None}]
    max_tokens = int(body.get("max_tokens") or 1024)
    usage = _usage(21, max_tokens if stop == "max_tokens" else fault.int("n", 5))
    return Reply(200, message_obj(ids.new("msg"), model, content, stop, usage), {"request-id": ids.new("req")})
