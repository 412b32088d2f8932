"""The SSE event sequences of the three streaming APIs, with content-level faults applied.

Each builder returns :class:`Frames`: the encoded SSE frames in order and how many trailing
frames form the protocol's terminal marker, so transport faults (cut, stall, no-terminal, error
injection) can be applied afterwards by the server without knowing the API.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import payloads as p
from .faults import FaultSpec
from .wire import sse


@dataclass
class Frames:
    frames: list[bytes]
    terminal: int = 1
    # Final status of the object the stream describes (run / response), for the server's state.
    final_status: str | None = None
    final_object: dict[str, Any] | None = field(default=None, repr=False)


# --- Chat Completions -----------------------------------------------------------------------------

def chat_frames(body: dict[str, Any], fault: FaultSpec, ids: p.Ids) -> Frames:
    model = str(body.get("model") or "gpt-4o-mini")
    cid = ids.new("chatcmpl")
    created = p.now()
    n = fault.int("n", 5)
    name = fault.name
    has_key = name != "finish-absent"
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or fault.int("max_tokens", 16)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage")) or name == "usage"

    def chunk(delta: dict[str, Any] | None, finish: Any = None, **kw: Any) -> bytes:
        data = p.chat_chunk(cid, model, created, delta, finish, with_finish_key=has_key, **kw)
        if not include_usage and "usage" not in kw:
            data.pop("usage", None)
        return sse(data)

    frames: list[bytes] = []
    completion_tokens = n
    if name == "tool-calls":
        truncated = bool(fault.int("truncated", 0))
        args = "{\"city\": \"Par" if truncated else "{\"city\": \"Paris\", \"unit\": \"celsius\"}"
        frames.append(chunk({"role": "assistant", "content": None, "refusal": None}))
        parts = p.pieces(max(n, 1), args)
        for i, part in enumerate(parts):
            frames.append(chunk(p.tool_call_delta(0, ids.new("call") if i == 0 else None,
                                                  "get_weather" if i == 0 else None, part)))
        frames.append(chunk({}, "tool_calls"))
        if truncated:
            include_usage = True
            completion_tokens = int(max_tokens)
    else:
        frames.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        for piece in p.pieces(n, fault.get("text")):
            frames.append(chunk({"content": piece}))
        finish = chat_finish(fault)
        if name == "length":
            completion_tokens = int(max_tokens)
        frames.append(chunk({}, finish))
    if include_usage:
        frames.append(sse(p.chat_chunk(cid, model, created, None, empty_choices=True,
                                       usage=p.chat_usage(12, completion_tokens,
                                                          min(fault.int("reasoning", 0), completion_tokens)))))
    frames.append(sse("[DONE]"))
    return Frames(frames, terminal=1)


def chat_finish(fault: FaultSpec) -> str | None:
    """The finish_reason a fault gives a chat answer (``finish;reason=X`` names any value, as providers do)."""
    if fault.name == "finish":
        return str(fault.get("reason", "stop"))
    return {"finish-null": None, "finish-absent": None, "length": "length",
            "content-filter": "content_filter"}.get(fault.name, "stop")


def chat_error_frame(fault: FaultSpec) -> bytes:
    message = str(fault.get("message", "The server had an error while processing your request. Sorry about that!"))
    code = str(fault.get("code", "server_error"))
    err = {"message": message, "type": str(fault.get("type", "server_error")), "param": None, "code": code}
    shape = fault.get("shape", "nested")
    if shape == "bare":
        return sse(err, event="error")
    if shape == "string":
        return sse({"error": message}, event="error" if fault.int("named", 0) else None)
    return sse({"error": err}, event="error" if fault.int("named", 0) else None)


# --- Responses ------------------------------------------------------------------------------------

def responses_frames(rid: str, body: dict[str, Any], fault: FaultSpec, ids: p.Ids, created: int,
                     background: bool = False) -> Frames:
    model = str(body.get("model") or "gpt-4o-mini")
    n = fault.int("n", 9)
    mid = ids.new("msg")
    seq = 0
    frames: list[bytes] = []
    max_out = body.get("max_output_tokens")

    def emit(event: dict[str, Any]) -> None:
        nonlocal seq
        event["sequence_number"] = seq
        seq += 1
        frames.append(sse(event, event=event["type"]))

    def resp(status: str, **kw: Any) -> dict[str, Any]:
        return p.response_obj(rid, model, status, created, background=background, max_output_tokens=max_out, **kw)

    emit({"type": "response.created", "response": resp("queued" if background else "in_progress")})
    emit({"type": "response.in_progress", "response": resp("in_progress")})
    emit({"type": "response.output_item.added", "output_index": 0, "item": p.output_message(mid, None, "in_progress")})
    emit({"type": "response.content_part.added", "item_id": mid, "output_index": 0, "content_index": 0,
          "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
    name = fault.name
    reason = str(fault.get("reason", "content_filter" if name == "content-filter" else "max_output_tokens"))
    if name == "failed":
        n = min(n, 2)
    text = ""
    for piece in p.pieces(n, fault.get("text")):
        text += piece
        emit({"type": "response.output_text.delta", "item_id": mid, "output_index": 0, "content_index": 0,
              "delta": piece, "logprobs": []})
    if name == "failed":
        code = str(fault.get("code", "server_error"))
        error = {"code": code, "message": str(fault.get("message", "The model failed to generate a response."))}
        final = resp("failed", error=error, output=[p.output_message(mid, text, "incomplete")])
        emit({"type": "response.failed", "response": final})
        return Frames(frames, 1, "failed", final)
    incomplete = name in ("incomplete", "length", "content-filter")
    item_status = "incomplete" if incomplete else "completed"
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    emit({"type": "response.output_text.done", "item_id": mid, "output_index": 0, "content_index": 0,
          "text": text, "logprobs": []})
    emit({"type": "response.content_part.done", "item_id": mid, "output_index": 0, "content_index": 0,
          "part": part})
    item = p.output_message(mid, text, item_status)
    emit({"type": "response.output_item.done", "output_index": 0, "item": item})
    usage = p.response_usage(14, int(max_out or n) if incomplete and reason == "max_output_tokens" else n)
    if incomplete:
        final = resp("incomplete", output=[item], incomplete_reason=reason, usage=usage)
        emit({"type": "response.incomplete", "response": final})
        return Frames(frames, 1, "incomplete", final)
    final = resp("completed", output=[item], usage=usage)
    emit({"type": "response.completed", "response": final})
    return Frames(frames, 1, "completed", final)


def responses_error_frame(fault: FaultSpec, sequence_number: int) -> bytes:
    code = str(fault.get("code", "server_error"))
    message = str(fault.get("message", "An error occurred while processing your request."))
    if fault.get("shape", "flat") == "nested":
        data: dict[str, Any] = {"type": "error", "error": {"type": "server_error", "code": code,
                                                           "message": message, "param": None},
                                "sequence_number": sequence_number}
    else:
        data = {"type": "error", "code": code, "message": message, "param": None,
                "sequence_number": sequence_number}
    return sse(data, event="error")


# --- Assistants runs ------------------------------------------------------------------------------

TERMINAL_RUN_STATUS = {"completed", "failed", "expired", "cancelled", "incomplete", "requires_action"}


def run_frames(run: Any, fault: FaultSpec, ids: p.Ids, phase: str = "create") -> Frames:
    """Events of ``runs.create(stream=True)`` (phase create) or ``submit_tool_outputs(stream=True)``."""
    frames: list[bytes] = []
    name = fault.name if phase == "create" else "healthy"

    def run_event(event: str, status: str) -> None:
        run.status = status
        frames.append(sse(p.run_obj(run), event=event))

    def ev(event: str, data: dict[str, Any]) -> None:
        frames.append(sse(data, event=event))

    if phase == "create":
        run_event("thread.run.created", "queued")
        run_event("thread.run.queued", "queued")
    else:
        run_event("thread.run.queued", "queued")
    run_event("thread.run.in_progress", "in_progress")

    final = {"failed": "failed", "expired": "expired", "cancelled": "cancelled"}.get(name)
    if final:
        if final == "failed":
            code = str(fault.get("code", "server_error"))
            msg = {"server_error": "Sorry, something went wrong.",
                   "rate_limit_exceeded": "Rate limit reached for gpt-4o-mini in organization org-sim on tokens "
                                          "per min (TPM): Limit 30000. Please try again in 2s."}.get(code, code)
            run.last_error = {"code": code, "message": str(fault.get("message", msg))}
        if final == "cancelled":
            run_event("thread.run.cancelling", "cancelling")
        run_event(f"thread.run.{final}", final)
        frames.append(sse("[DONE]", event="done"))
        return Frames(frames, 2, final)

    if name == "requires-action":
        sid = ids.new("step")
        call_id = ids.new("call")
        run.required_action = p.required_action(call_id)
        details = {"type": "tool_calls", "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "output": None}}]}
        ev("thread.run.step.created", p.run_step(sid, run, "in_progress", details))
        ev("thread.run.step.in_progress", p.run_step(sid, run, "in_progress", details))
        run_event("thread.run.requires_action", "requires_action")
        frames.append(sse("[DONE]", event="done"))
        return Frames(frames, 2, "requires_action")

    sid = ids.new("step")
    mid = ids.new("msg")
    details = {"type": "message_creation", "message_creation": {"message_id": mid}}
    ev("thread.run.step.created", p.run_step(sid, run, "in_progress", details))
    ev("thread.run.step.in_progress", p.run_step(sid, run, "in_progress", details))
    ev("thread.message.created", p.message_obj(mid, run.thread_id, "assistant", None, "in_progress",
                                               run.id, run.assistant_id))
    ev("thread.message.in_progress", p.message_obj(mid, run.thread_id, "assistant", None, "in_progress",
                                                   run.id, run.assistant_id))
    text = ""
    for piece in p.pieces(fault.int("n", 5), fault.get("text")):
        text += piece
        ev("thread.message.delta", {"id": mid, "object": "thread.message.delta", "delta": {"content": [
            {"index": 0, "type": "text", "text": {"value": piece, "annotations": []}}]}})
    incomplete = name == "incomplete"
    msg = p.message_obj(mid, run.thread_id, "assistant", text, "incomplete" if incomplete else "completed",
                        run.id, run.assistant_id)
    ev("thread.message.incomplete" if incomplete else "thread.message.completed", msg)
    step_done = p.run_step(sid, run, "completed", details)
    ev("thread.run.step.completed", step_done)
    if incomplete:
        run.incomplete_reason = str(fault.get("reason", "max_completion_tokens"))
        run_event("thread.run.incomplete", "incomplete")
    else:
        run_event("thread.run.completed", "completed")
    frames.append(sse("[DONE]", event="done"))
    return Frames(frames, 2, run.status)


def run_error_frame(fault: FaultSpec) -> bytes:
    code = str(fault.get("code", "server_error"))
    message = str(fault.get("message", "Sorry, something went wrong."))
    err = {"code": code, "message": message, "param": None, "type": "server_error"}
    if fault.get("shape", "flat") == "nested":
        return sse({"error": err}, event="error")
    return sse(err, event="error")
