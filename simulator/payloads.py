"""JSON objects shaped like the OpenAI API's, as the installed SDK's models and stream helpers parse them.

Only the fields the SDKs (1.x–3.x) read or validate are filled in; values are realistic (ids with the
API's prefixes, ``created`` timestamps, usage blocks) so hooks see what they would see in production.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any

WORDS = ("The quick brown fox jumps over the lazy dog while the stream keeps flowing "
         "token by token until the answer is complete .").split()


class Ids:
    """Monotonic ids with the API's prefixes (``chatcmpl-``, ``resp_``, ``run_``...), unique per server."""

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self._lock = threading.Lock()
        self._tag = f"{int(time.time()) % 100000:05d}"

    def new(self, prefix: str) -> str:
        with self._lock:
            n = next(self._count)
        sep = "-" if prefix in ("chatcmpl", "file") else "_"
        return f"{prefix}{sep}sim{self._tag}{n:06d}"


def pieces(n: int, text: str | None = None) -> list[str]:
    """``n`` text deltas: the given text split into n parts, or n words of filler."""
    if text:
        size = max(1, -(-len(text) // max(n, 1)))
        return [text[i:i + size] for i in range(0, len(text), size)][:max(n, 1)] or [text]
    return [(w if i == 0 else " " + w) for i, w in zip(range(n), itertools.cycle(WORDS))]


def now() -> int:
    return int(time.time())


# --- Chat Completions -----------------------------------------------------------------------------

def chat_chunk(cid: str, model: str, created: int, delta: dict[str, Any] | None, finish: Any = None,
               with_finish_key: bool = True, usage: dict[str, Any] | None = None,
               empty_choices: bool = False) -> dict[str, Any]:
    chunk: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                             "system_fingerprint": "fp_sim", "service_tier": "default"}
    if empty_choices:
        chunk["choices"] = []
    else:
        choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "logprobs": None}
        if with_finish_key:
            choice["finish_reason"] = finish
        chunk["choices"] = [choice]
    chunk["usage"] = usage
    return chunk


def chat_usage(prompt: int, completion: int, reasoning: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": reasoning, "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0, "audio_tokens": 0},
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}}


def chat_completion(cid: str, model: str, text: str, finish: str = "stop", prompt_tokens: int = 12,
                    completion_tokens: int = 9) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion", "created": now(), "model": model,
            "system_fingerprint": "fp_sim", "service_tier": "default",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                                 "annotations": []},
                         "logprobs": None, "finish_reason": finish}],
            "usage": chat_usage(prompt_tokens, completion_tokens)}


def tool_call_delta(index: int, call_id: str | None, name: str | None, args: str) -> dict[str, Any]:
    tc: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if call_id:
        tc["id"] = call_id
        tc["type"] = "function"
    if name is not None:
        tc["function"]["name"] = name
    return {"tool_calls": [tc]}


# --- Responses ------------------------------------------------------------------------------------

def response_obj(rid: str, model: str, status: str, created: int, output: list[dict[str, Any]] | None = None,
                 background: bool = False, error: dict[str, Any] | None = None,
                 incomplete_reason: str | None = None, usage: dict[str, Any] | None = None,
                 max_output_tokens: int | None = None) -> dict[str, Any]:
    return {"id": rid, "object": "response", "created_at": created, "status": status, "background": background,
            "error": error, "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
            "instructions": None, "max_output_tokens": max_output_tokens, "model": model,
            "output": output if output is not None else [], "parallel_tool_calls": True,
            "previous_response_id": None, "reasoning": {"effort": None, "summary": None}, "store": True,
            "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
            "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": None, "metadata": {}}


def response_usage(inp: int, out: int) -> dict[str, Any]:
    return {"input_tokens": inp, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": inp + out}


def output_message(mid: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"id": mid, "type": "message", "status": status, "role": "assistant", "content": content}


# --- Assistants -----------------------------------------------------------------------------------

def thread_obj(tid: str) -> dict[str, Any]:
    return {"id": tid, "object": "thread", "created_at": now(), "metadata": {}, "tool_resources": None}


def message_obj(mid: str, tid: str, role: str, text: str | None, status: str = "completed",
                run_id: str | None = None, assistant_id: str | None = None) -> dict[str, Any]:
    content = [] if text is None else [{"type": "text", "text": {"value": text, "annotations": []}}]
    return {"id": mid, "object": "thread.message", "created_at": now(), "thread_id": tid, "status": status,
            "incomplete_details": None, "completed_at": now() if status == "completed" else None,
            "incomplete_at": None, "role": role, "content": content, "assistant_id": assistant_id,
            "run_id": run_id, "attachments": [], "metadata": {}}


def run_obj(run: Any) -> dict[str, Any]:
    """A Run from the server's run state (see ``state.RunState``)."""
    return {"id": run.id, "object": "thread.run", "created_at": run.created, "assistant_id": run.assistant_id,
            "thread_id": run.thread_id, "status": run.status, "started_at": run.created,
            "expires_at": run.created + 600, "cancelled_at": None, "failed_at": None, "completed_at": None,
            "required_action": run.required_action if run.status == "requires_action" else None,
            "last_error": run.last_error, "model": run.model, "instructions": "", "tools": [], "metadata": {},
            "usage": None, "incomplete_details": ({"reason": run.incomplete_reason}
                                                  if run.status == "incomplete" else None),
            "max_prompt_tokens": None, "max_completion_tokens": None, "parallel_tool_calls": True,
            "response_format": "auto", "tool_choice": "auto",
            "truncation_strategy": {"type": "auto", "last_messages": None}, "temperature": 1.0, "top_p": 1.0}


def run_step(sid: str, run: Any, status: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"id": sid, "object": "thread.run.step", "created_at": now(), "run_id": run.id,
            "assistant_id": run.assistant_id, "thread_id": run.thread_id, "type": details["type"],
            "status": status, "cancelled_at": None, "completed_at": None, "expired_at": None, "failed_at": None,
            "last_error": None, "step_details": details, "usage": None, "metadata": {}}


def required_action(call_id: str) -> dict[str, Any]:
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
        {"id": call_id, "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}


# --- Vector stores and files ----------------------------------------------------------------------

def file_counts(in_progress: int, completed: int) -> dict[str, int]:
    return {"in_progress": in_progress, "completed": completed, "failed": 0, "cancelled": 0,
            "total": in_progress + completed}


def vector_store_obj(vid: str, in_progress: int, completed: int, created: int) -> dict[str, Any]:
    return {"id": vid, "object": "vector_store", "created_at": created, "name": "sim", "usage_bytes": 0,
            "file_counts": file_counts(in_progress, completed),
            "status": "in_progress" if in_progress else "completed", "last_active_at": created,
            "metadata": {}, "expires_after": None, "expires_at": None}


def vector_store_file_obj(fid: str, vid: str, status: str, created: int) -> dict[str, Any]:
    return {"id": fid, "object": "vector_store.file", "created_at": created, "vector_store_id": vid,
            "status": status, "last_error": None, "usage_bytes": 0, "attributes": {},
            "chunking_strategy": {"type": "static",
                                  "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}}


def file_batch_obj(bid: str, vid: str, status: str, n_files: int, created: int) -> dict[str, Any]:
    done = status == "completed"
    return {"id": bid, "object": "vector_store.files_batch", "created_at": created, "vector_store_id": vid,
            "status": status, "file_counts": file_counts(0 if done else n_files, n_files if done else 0)}


def file_obj(fid: str, size: int, filename: str) -> dict[str, Any]:
    return {"id": fid, "object": "file", "bytes": size, "created_at": now(), "filename": filename,
            "purpose": "assistants", "status": "processed", "status_details": None}


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
