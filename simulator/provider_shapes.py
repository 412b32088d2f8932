"""Chat Completions streams in the shapes OpenAI-compatible providers really send.

Selected like any other fault, with the parameter ``provider=NAME`` (``fault/healthy;provider=azure``,
``fault/finish;reason=insufficient_system_resource;provider=deepseek``): the fault decides *what*
happens (a content-level end such as ``length``, ``finish;reason=X``, ``content-filter``; transport
faults such as ``cut`` or ``error-event`` are applied by the server on top), the provider decides what
the bytes look like. Each shape follows its provider's documentation or source, named in
:data:`PROVIDERS` and in the scenario catalogue.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import payloads as p
from .faults import FaultError, FaultSpec
from .streams import Frames, chat_error_frame, chat_finish
from .wire import sse

#: provider -> what its stream looks like, and where that shape is documented.
PROVIDERS: dict[str, str] = {
    "azure": "Azure OpenAI: a first chunk with `choices: []`, `id: \"\"`, `model: \"\"`, `object: \"\"` and "
    "`prompt_filter_results`; `content_filter_results` on every choice; the content-filter stop carries "
    "`filtered: true` (learn.microsoft.com, Azure OpenAI content filtering, streaming)",
    "vllm": "vLLM OpenAI server: `stop_reason` on each choice; with `stream_options.continuous_usage_stats` "
    "usage on every chunk; an in-band error is `data: {\"error\": {message, type, param, code}}` followed "
    "by `data: [DONE]` (vllm/entrypoints/openai serving_chat.py, create_streaming_error_response)",
    "ollama": "Ollama OpenAI compatibility (openai/openai.go): `system_fingerprint: fp_ollama`, the role on "
    "every delta, reasoning models stream `delta.reasoning` before the content (reasoning=K deltas)",
    "deepseek": "DeepSeek API: `: keep-alive` SSE comments while the request waits, a `reasoning_content` "
    "phase before the content (deepseek-reasoner), finish_reason `insufficient_system_resource` "
    "(api-docs.deepseek.com: rate limit, create chat completion)",
    "openrouter": "OpenRouter: `: OPENROUTER PROCESSING` comments, `gen-` ids, `provider` and "
    "`native_finish_reason`; a mid-stream error is one chunk with a top-level `error` and "
    "`finish_reason: \"error\"`, then the stream ends (openrouter.ai/docs, streaming: errors during streaming)",
    "together": "Together AI: `text` and `delta.token_id` on each choice, usage on the last chunk; older "
    "models end with finish_reason `eos` (openai/openai-dotnet#267)",
    "groq": "Groq: `x_groq.id` on the first chunk, `x_groq.usage` on the last (console.groq.com, API reference)",
    "litellm": "LiteLLM proxy: when the upstream sent no finish_reason it fills `finish_reason: \"stop\"` "
    "(BerriAI/litellm#25825: chunk.get(\"done_reason\", \"stop\")), so a truncation looks healthy",
}

SAFE = {"filtered": False, "severity": "safe"}
FILTER_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
ENGINE_DEAD = "EngineCore encountered an issue. See stack trace (above) for the root cause."


@dataclass
class _Stream:
    """One provider stream being built: ids, the running token count, the chunk decorations."""

    provider: str
    cid: str
    model: str
    created: int
    continuous_usage: bool
    tokens: int = 0

    def chunk(self, delta: dict[str, Any], finish: Any = None, *, with_finish_key: bool = True,
              usage: dict[str, Any] | None = None) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": dict(delta), "logprobs": None}
        if with_finish_key:
            choice["finish_reason"] = finish
        data: dict[str, Any] = {"id": self.cid, "object": "chat.completion.chunk", "created": self.created,
                                "model": self.model, "choices": [choice]}
        _DECORATE.get(self.provider, _plain)(self, data, choice, finish)
        if self.continuous_usage:
            data["usage"] = _usage(12, self.tokens)
        if usage is not None:
            data["usage"] = usage
        return sse(data)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    """The usage block OpenAI-compatible servers send (no OpenAI-only detail objects)."""
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _plain(st: _Stream, data: dict[str, Any], choice: dict[str, Any], finish: Any) -> None:
    data["system_fingerprint"] = None


def _azure(st: _Stream, data: dict[str, Any], choice: dict[str, Any], finish: Any) -> None:
    data["system_fingerprint"] = "fp_b705f0c291"
    filtered = finish == "content_filter"
    results = {c: ({"filtered": True, "severity": "medium"} if filtered and c == "violence" else SAFE)
               for c in FILTER_CATEGORIES}
    choice["content_filter_results"] = results if (choice["delta"].get("content") or filtered) else {}


def _vllm(st: _Stream, data: dict[str, Any], choice: dict[str, Any], finish: Any) -> None:
    choice["stop_reason"] = None


def _ollama(st: _Stream, data: dict[str, Any], choice: dict[str, Any], finish: Any) -> None:
    data["system_fingerprint"] = "fp_ollama"
    choice["delta"] = {"role": "assistant", "content": "", **choice["delta"]}
    choice.pop("logprobs", None)


def _deepseek(st: _Stream, data: dict[str, Any], choice: dict[str, Any], finish: Any) -> None:
    data["system_fingerprint"] = "fp_3a5770e1b4_prod0225"


def _openrouter(st: _Stream, data: dict[str, Any], choice: dict[str, Any], finish: Any) -> None:
    data["provider"] = "OpenAI"
    data["system_fingerprint"] = None
    choice["native_finish_reason"] = finish


def _together(st: _Stream, data: dict[str, Any], choice: dict[str, Any], finish: Any) -> None:
    delta = choice["delta"]
    choice["text"] = delta.get("content") or ""
    choice["seed"] = None
    delta.setdefault("role", "assistant")
    delta["token_id"] = 1000 + st.tokens
    delta["tool_calls"] = None
    data["usage"] = _usage(12, st.tokens) if finish is not None else None


def _groq(st: _Stream, data: dict[str, Any], choice: dict[str, Any], finish: Any) -> None:
    data["system_fingerprint"] = "fp_c5f20b5bb1"
    if finish is not None:
        data["x_groq"] = {"id": "req_sim" + st.cid[-6:], "usage": {**_usage(12, st.tokens), "queue_time": 0.02}}
    elif st.tokens == 0:
        data["x_groq"] = {"id": "req_sim" + st.cid[-6:]}


_DECORATE: dict[str, Callable[[_Stream, dict[str, Any], dict[str, Any], Any], None]] = {
    "azure": _azure, "vllm": _vllm, "ollama": _ollama, "deepseek": _deepseek, "openrouter": _openrouter,
    "together": _together, "groq": _groq,
}
_ID_PREFIX = {"openrouter": "gen-", "together": "", "groq": "chatcmpl-"}
_MODEL = {"azure": "gpt-4o-2024-11-20", "deepseek": "deepseek-reasoner", "openrouter": "openai/gpt-4o-mini",
          "together": "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"}
_REASONING_FIELD = {"deepseek": "reasoning_content", "ollama": "reasoning"}
_COMMENTS = {"deepseek": b": keep-alive\n\n", "openrouter": b": OPENROUTER PROCESSING\n\n"}


def check_provider(name: str) -> None:
    """Refuse an unknown ``provider=`` value when the request is parsed (an HTTP 400, not a stream)."""
    if name not in PROVIDERS:
        raise FaultError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")


def provider_chat_frames(body: dict[str, Any], fault: FaultSpec, ids: p.Ids) -> Frames:
    """A streamed chat answer in the provider's shape, ending as the fault says, then ``[DONE]``."""
    name = str(fault.get("provider"))
    options = body.get("stream_options") or {}
    include_usage = bool(options.get("include_usage")) or fault.name == "usage"
    cid = ids.new("chatcmpl")
    cid = _ID_PREFIX.get(name, "chatcmpl-") + cid.split("-", 1)[1]
    st = _Stream(name, cid, _MODEL.get(name) or str(body.get("model") or "gpt-4o-mini"), p.now(),
                 continuous_usage=name == "vllm" and include_usage and bool(options.get("continuous_usage_stats")))
    frames = [_COMMENTS[name]] * 2 if name in _COMMENTS else []
    if name == "azure":  # the prompt's filter verdict comes first, before the completion has an id or a model
        frames.append(sse({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                           "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
                               c: SAFE for c in FILTER_CATEGORIES}}]}))
    reasoning = _REASONING_FIELD.get(name)
    if name != "ollama":  # Ollama's first chunk already carries content
        role: dict[str, Any] = {"role": "assistant", "content": "" if reasoning is None else None}
        if reasoning == "reasoning_content":
            role[reasoning] = ""
        frames.append(st.chunk(role))
    for piece in p.pieces(fault.int("reasoning", 3 if name == "deepseek" else 0)) if reasoning else ():
        st.tokens += 1
        frames.append(st.chunk({"content": None, reasoning: piece} if name == "deepseek" else {reasoning: piece}))
    for piece in p.pieces(fault.int("n", 5), fault.get("text")):
        st.tokens += 1
        frames.append(st.chunk({"content": piece, reasoning: None} if name == "deepseek" else {"content": piece}))
    finish = chat_finish(fault)
    if finish is None and name == "litellm":
        finish = "stop"  # the proxy's default when its upstream named no reason
    if fault.name == "length":
        st.tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or st.tokens)
    frames.append(st.chunk({"content": ""}, finish, with_finish_key=fault.name != "finish-absent" or name == "litellm"))
    if include_usage:
        final = {"id": cid, "object": "chat.completion.chunk", "created": st.created, "model": st.model,
                 "choices": [], "usage": _usage(12, st.tokens)}
        frames.append(sse(final))
    frames.append(sse("[DONE]"))
    return Frames(frames, terminal=1)


def provider_error_frame(fault: FaultSpec) -> bytes:
    """The provider's in-band error (``error-event`` fault), with what it sends after it."""
    name = str(fault.get("provider"))
    if name == "vllm":
        code = fault.int("status", 500)
        err = {"message": str(fault.get("message", ENGINE_DEAD)),
               "type": str(fault.get("type", "InternalServerError" if code >= 500 else "BadRequestError")),
               "param": None, "code": code}
        return sse({"error": err}) + sse("[DONE]")
    if name == "openrouter":
        err = {"code": fault.get("code", "server_error"),
               "message": str(fault.get("message", "Provider disconnected unexpectedly"))}
        return sse({"id": "gen-error", "object": "chat.completion.chunk", "created": p.now(),
                    "model": _MODEL["openrouter"], "provider": "OpenAI", "error": err,
                    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                                 "native_finish_reason": "error"}]})
    return chat_error_frame(fault)
