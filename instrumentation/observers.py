"""Per-API readers of stream items and response objects.

Each stream item is read once, at the raw ``Stream`` layer (the helpers consume that same raw
stream, so reading there counts every event exactly once). The readers touch only a few attributes
and hand deltas to ``CallState.delta`` without building dictionaries.
"""
from __future__ import annotations

from collections.abc import Callable
from time import monotonic_ns
from typing import Any

from .calls import CallState

CHAT_EVENT = "chat.completion.chunk"
RESPONSES_TERMINALS = frozenset({"response.completed", "response.incomplete", "response.failed"})
RUN_TERMINALS = frozenset(
    {
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.incomplete",
        "thread.run.requires_action",
    }
)
ASSISTANT_DELTAS = frozenset({"thread.message.delta", "thread.run.step.delta"})
POLL_ACTIVE = frozenset({"queued", "in_progress", "cancelling"})


def _nbytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _usage(st: CallState, usage: Any) -> None:
    if usage is None:
        return
    u = st.usage
    for src, dst in (
        ("prompt_tokens", "gen_ai.usage.input_tokens"),
        ("input_tokens", "gen_ai.usage.input_tokens"),
        ("completion_tokens", "gen_ai.usage.output_tokens"),
        ("output_tokens", "gen_ai.usage.output_tokens"),
    ):
        v = getattr(usage, src, None)
        if isinstance(v, int):
            u[dst] = v
    for details in ("completion_tokens_details", "output_tokens_details"):
        d = getattr(usage, details, None)
        r = getattr(d, "reasoning_tokens", None) if d is not None else None
        if isinstance(r, int):
            u["streamtriage.usage.reasoning_tokens"] = r


def _extra(obj: Any, key: str) -> Any:
    extra = getattr(obj, "model_extra", None) or {}
    return extra.get(key)


def observe_chat(st: CallState, chunk: Any) -> None:
    choices = chunk.choices
    # fast path: one choice carrying only a text fragment (almost every chunk of a healthy stream),
    # appended to the open coalesced group; this inlines CallState.delta's append path. A chunk with
    # content is a delta whatever else it carries: usage on every chunk (vLLM's continuous_usage_stats)
    # is recorded without leaving the path.
    if st.fast and choices and len(choices) == 1:
        c = choices[0]
        if c.finish_reason is None and c.index < st.nchoices:
            d = c.delta
            if d is not None and not d.tool_calls:
                u = chunk.usage
                if u is not None:
                    _usage(st, u)
                t = d.content
                nbytes = (len(t) if t.isascii() else len(t.encode("utf-8", "surrogatepass"))) if t else 0
                if st.p_type is CHAT_EVENT:
                    now = monotonic_ns()
                    gap = now - st.last_ns
                    st.last_ns = now
                    st.events += 1
                    n = st.deltas + 1
                    st.deltas = n
                    st.delta_bytes += nbytes
                    if gap > st.p_max_gap:
                        st.p_max_gap = gap
                    if n >= st.p_limit or now >= st.p_deadline:
                        st.flush_locked()
                    return
                st.delta(CHAT_EVENT, nbytes)
                return
    _observe_chat_slow(st, chunk, choices)


def _observe_chat_slow(st: CallState, chunk: Any, choices: Any) -> None:
    if not (st.response_id and st.response_model):
        _identify(st, chunk)
    if st.sse_error:
        st.sse_error = False
        _in_band_error(st, chunk)
        return
    if not st.fast and choices:
        # from the first chunk with choices on (Azure's first chunk has none, and no id or model);
        # content capture needs every fragment: no fast path
        st.fast = st.content is None
    nbytes = 0
    fr = None
    if choices:
        for c in choices:
            d = c.delta
            if d is not None:
                t = d.content
                if t:
                    nbytes += _nbytes(t)
                    if st.content is not None:
                        st.content.append(t)
                tcs = d.tool_calls
                if tcs:
                    for tc in tcs:
                        f = tc.function
                        if f is not None and f.arguments:
                            nbytes += _nbytes(f.arguments)
            f = c.finish_reason
            idx = c.index
            if idx >= st.nchoices:
                st.nchoices = idx + 1
            if f is not None:
                st.finish_reasons[idx] = f
                if fr is None:
                    fr = f
    usage = chunk.usage
    _usage(st, usage)
    if fr is None and choices:  # a content chunk, whether or not it also carries usage
        st.delta(CHAT_EVENT, nbytes)
        return
    st.event(CHAT_EVENT, {"streamtriage.finish_reason": fr} if fr is not None else None, nbytes)


def _identify(st: CallState, chunk: Any) -> None:
    """Response id and model from the first chunk that has them (Azure's first chunk has both empty)."""
    if not st.response_id:
        rid = getattr(chunk, "id", None)
        if rid:
            st.response_id = rid
    if not st.response_model:
        model = getattr(chunk, "model", None)
        if model and isinstance(model, str):
            st.response_model = model


def _in_band_error(st: CallState, obj: Any) -> None:
    """An ``event: error`` the SDK parsed into a regular item instead of raising."""
    st.error_event = True
    err = getattr(obj, "error", None) or _extra(obj, "error")
    code = getattr(obj, "code", None) or _extra(obj, "code")
    etype = _extra(obj, "type")
    if isinstance(err, dict):
        code = code or err.get("code")
        etype = etype or err.get("type")
    elif err is not None:
        code = code or getattr(err, "code", None)
        etype = etype or getattr(err, "type", None)
    if code is not None:
        st.error_code = str(code)
    if etype is not None and etype != "error":
        st.error_type = str(etype)
    st.event("error", {"streamtriage.error.code": str(code)} if code is not None else None)


def observe_responses(st: CallState, ev: Any) -> None:
    t = ev.type
    if t[-6:] == ".delta" and not st.sse_error:
        d = getattr(ev, "delta", None)
        if isinstance(d, str):
            n = len(d) if d.isascii() else len(d.encode("utf-8", "surrogatepass"))
            if st.content is not None and t == "response.output_text.delta":
                st.content.append(d)
        else:
            n = 0
        st.delta(t, n)
        return
    if t == "error" or st.sse_error:
        st.sse_error = False
        _in_band_error(st, ev)
        return
    attrs: dict | None = None
    resp = getattr(ev, "response", None)
    if resp is not None:
        status = getattr(resp, "status", None)
        if status is not None:
            st.status = status
            attrs = {"streamtriage.status": status}
        st.response_id = getattr(resp, "id", None) or st.response_id
        st.response_model = getattr(resp, "model", None) or st.response_model
        if t in RESPONSES_TERMINALS:
            st.terminal_event = t
            attrs = attrs or {}
            attrs["streamtriage.terminal"] = True
            _response_final(st, resp)
            if st.error_code:
                attrs["streamtriage.error.code"] = st.error_code
    st.event(t, attrs)


def _response_final(st: CallState, resp: Any) -> None:
    _usage(st, getattr(resp, "usage", None))
    details = getattr(resp, "incomplete_details", None)
    reason = getattr(details, "reason", None) if details is not None else None
    if reason:
        st.incomplete_reason = str(reason)
    err = getattr(resp, "error", None)
    if err is not None:
        code = getattr(err, "code", None)
        if code:
            st.error_code = str(code)


def _message_delta_bytes(data: Any) -> int:
    n = 0
    delta = getattr(data, "delta", None)
    for block in getattr(delta, "content", None) or ():
        text = getattr(block, "text", None)
        value = getattr(text, "value", None) if text is not None else None
        if isinstance(value, str):
            n += _nbytes(value)
    return n


def observe_assistants(st: CallState, ev: Any) -> None:
    name = getattr(ev, "event", None)
    if st.sse_error or name is None or name == "error":
        st.sse_error = False
        _in_band_error(st, getattr(ev, "data", None) if name == "error" else ev)
        return
    if name in ASSISTANT_DELTAS:
        st.delta(name, _message_delta_bytes(ev.data) if name == "thread.message.delta" else 0)
        return
    attrs: dict | None = None
    if name.startswith("thread.run.") and not name.startswith("thread.run.step."):
        run = ev.data
        status = getattr(run, "status", None)
        st.status = status
        st.object_id = getattr(run, "id", None) or st.object_id
        st.thread_id = getattr(run, "thread_id", None) or st.thread_id
        st.response_model = getattr(run, "model", None) or st.response_model
        attrs = {"streamtriage.status": status} if status else {}
        le = getattr(run, "last_error", None)
        if le is not None and getattr(le, "code", None):
            st.error_code = str(le.code)
            attrs["streamtriage.error.code"] = st.error_code
        if name in RUN_TERMINALS:
            st.terminal_event = name
            attrs["streamtriage.terminal"] = True
            _usage(st, getattr(run, "usage", None))
            details = getattr(run, "incomplete_details", None)
            if details is not None and getattr(details, "reason", None):
                st.incomplete_reason = str(details.reason)
    st.event(name, attrs)


OBSERVERS: dict[str, Callable[[CallState, Any], None]] = {
    "chat.completions": observe_chat,
    "responses": observe_responses,
    "assistants.runs": observe_assistants,
}


# Readers of a non-streamed result for API kinds whose objects differ from OpenAI's (Anthropic ``messages``).
RESULT_OBSERVERS: dict[str, Callable[[CallState, Any], None]] = {}


def observe_result(st: CallState, obj: Any) -> None:
    """A non-streamed response object: the body is the call's terminal marker."""
    special = RESULT_OBSERVERS.get(st.api)
    if special is not None:
        special(st, obj)
        return
    st.response_id = getattr(obj, "id", None)
    st.response_model = getattr(obj, "model", None) if isinstance(getattr(obj, "model", None), str) else None
    status = getattr(obj, "status", None)
    if isinstance(status, str):
        st.status = status
    choices = getattr(obj, "choices", None)
    if isinstance(choices, list):
        for c in choices:
            st.finish_reasons[getattr(c, "index", len(st.finish_reasons))] = getattr(c, "finish_reason", None)
        if st.content is not None:
            for c in choices:
                msg = getattr(c, "message", None)
                text = getattr(msg, "content", None)
                if text:
                    st.content.append(text)
    _usage(st, getattr(obj, "usage", None))
    _response_final(st, obj)
    le = getattr(obj, "last_error", None)
    if le is not None and getattr(le, "code", None):
        st.error_code = str(le.code)
    if st.api != "chat.completions":
        st.object_id = st.response_id or st.object_id
        tid = getattr(obj, "thread_id", None)
        if isinstance(tid, str):
            st.thread_id = tid
    st.terminal_event = status if isinstance(status, str) else str(getattr(obj, "object", "response"))
