"""Which SDK request is which: maps a request's method and path to the span contract's API kind.

Hooking the client's ``request`` sees every endpoint; this module decides which ones are stream
calls, plain calls or status reads (polls) without touching the payload beyond a few keys.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

OPERATION = {
    "chat.completions": "chat",
    "responses": "responses",
    "assistants.runs": "invoke_agent",
    "vector_stores.files": "vector_store_indexing",
    "vector_stores.file_batches": "vector_store_indexing",
    "vector_stores": "vector_store_indexing",
    "messages": "chat",  # Anthropic Messages (instrumentation/anthropic_calls.py)
}

# Request body keys left out of the fingerprint: they do not change what is asked, and a retry of the same
# request often changes them (a larger output cap after a truncation, usage reporting, a fresh request or
# idempotency id, tracing metadata). Model, messages / input and sampling parameters stay in.
_FINGERPRINT_SKIP = frozenset({
    "stream", "stream_options", "metadata", "user", "store", "background",
    "max_tokens", "max_completion_tokens", "max_output_tokens",
    "request_id", "client_request_id", "idempotency_key", "prompt_cache_key", "safety_identifier", "service_tier",
})


@dataclass
class RequestInfo:
    """What the hook knows about one request before it is sent."""

    api: str
    mode: str  # stream | request | background | poll (a status GET)
    model: str | None = None
    max_tokens: int | None = None
    object_id: str | None = None
    thread_id: str | None = None
    vector_store_id: str | None = None
    body: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def operation(self) -> str:
        return OPERATION.get(self.api, self.api)

    def span_name(self) -> str:
        return f"{self.operation} {self.model}" if self.model else f"{self.operation} {self.api}"


def _body(options: Any) -> dict | None:
    body = getattr(options, "json_data", None)
    return body if isinstance(body, dict) else None


def _truthy_param(options: Any, key: str) -> bool:
    params = getattr(options, "params", None)
    if isinstance(params, dict):
        v = params.get(key)
        return v is True or v == "true"
    return False


def classify(options: Any) -> RequestInfo | None:
    """Return the request's contract identity, or ``None`` for endpoints streamtriage ignores."""
    method = str(getattr(options, "method", "")).lower()
    url = str(getattr(options, "url", ""))
    if "://" in url:
        url = url.split("://", 1)[1].split("/", 1)[-1]
    parts = [p for p in url.split("?", 1)[0].split("/") if p]
    if parts and parts[0] == "v1":
        parts = parts[1:]
    n = len(parts)
    body = _body(options)
    streaming = bool(body and body.get("stream") is True)
    if method == "post":
        if parts == ["chat", "completions"]:
            return with_body(RequestInfo("chat.completions", "stream" if streaming else "request"), body)
        if parts == ["responses"]:
            mode = "stream" if streaming else ("background" if body and body.get("background") is True else "request")
            return with_body(RequestInfo("responses", mode), body)
        if n >= 2 and parts[0] == "threads" and parts[-1] == "runs":
            info = RequestInfo("assistants.runs", "stream" if streaming else "request", thread_id=parts[1] if n == 3 else None)
            return with_body(info, body)
        if n == 5 and parts[0] == "threads" and parts[2] == "runs" and parts[4] == "submit_tool_outputs":
            info = RequestInfo("assistants.runs", "stream" if streaming else "request", thread_id=parts[1], object_id=parts[3])
            return with_body(info, body)
        if n == 3 and parts[0] == "vector_stores" and parts[2] in ("files", "file_batches"):
            api = "vector_stores.files" if parts[2] == "files" else "vector_stores.file_batches"
            return with_body(RequestInfo(api, "request", vector_store_id=parts[1]), body)
        return None
    if method == "get":
        if n == 2 and parts[0] == "responses":
            if _truthy_param(options, "stream"):
                return RequestInfo("responses", "stream", object_id=parts[1])
            return RequestInfo("responses", "poll", object_id=parts[1])
        if n == 4 and parts[0] == "threads" and parts[2] == "runs":
            return RequestInfo("assistants.runs", "poll", object_id=parts[3], thread_id=parts[1])
        if n == 4 and parts[0] == "vector_stores" and parts[2] in ("files", "file_batches"):
            api = "vector_stores.files" if parts[2] == "files" else "vector_stores.file_batches"
            return RequestInfo(api, "poll", object_id=parts[3], vector_store_id=parts[1])
        if n == 2 and parts[0] == "vector_stores":
            return RequestInfo("vector_stores", "poll", object_id=parts[1], vector_store_id=parts[1])
    return None


def with_body(info: RequestInfo, body: dict | None) -> RequestInfo:
    """Keep the request body and the facts read from it (model, output cap) on ``info``."""
    if body:
        info.body = body
        model = body.get("model")
        if isinstance(model, str):
            info.model = model
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            v = body.get(key)
            if isinstance(v, int) and not isinstance(v, bool):
                info.max_tokens = v
                break
    return info


def fingerprint(info: RequestInfo, path: str) -> str:
    """16 hex chars of SHA-256 over the canonical request: groups retries without storing content."""
    body = {k: v for k, v in (info.body or {}).items() if k not in _FINGERPRINT_SKIP}
    canonical = json.dumps({"api": info.api, "path": path, "body": body}, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def read_timeout(options: Any, client: Any) -> float | None:
    """The per-read timeout in effect for this request, in seconds."""
    for t in (getattr(options, "timeout", None), getattr(client, "timeout", None)):
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            return float(t)
        read = getattr(t, "read", None)
        if isinstance(read, (int, float)):
            return float(read)
    return None
