"""Request hooks: ``request`` starts one call span (or poll span) per SDK call, covering retries;
``_process_response`` and ``_sleep_for_retry``/``_retry_request`` give the HTTP status, the retry
count and the poll-after header.
"""
from __future__ import annotations

import importlib
import sys
import weakref
from collections.abc import Callable
from functools import partial
from time import monotonic_ns
from typing import Any, TypeVar

from .._safety import guarded, hook_failed
from ..calls import CallState, Config
from ..observers import observe_result
from ..polls import PollCall
from ..routes import RequestInfo, classify, fingerprint, read_timeout
from . import state
from .streams import deferred_gc
from .wrapping import around, before


def sdk_attributes() -> dict[str, Any]:
    """Attributes every call span of this process carries: SDK, transport, provider, contract."""
    import openai

    version = getattr(openai, "__version__", "unknown")
    transport = "httpx2" if version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 3 else "httpx"
    mod = sys.modules.get(transport) or importlib.import_module(transport)
    return {
        "streamtriage.sdk.name": "openai-python",
        "streamtriage.sdk.version": version,
        "streamtriage.transport.name": transport,
        "streamtriage.transport.version": getattr(mod, "__version__", "unknown"),
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "streamtriage.contract": 1,
    }


def _server(client: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base = getattr(client, "base_url", None)
    host = getattr(base, "host", None)
    if host:
        out["server.address"] = str(host)
        port = getattr(base, "port", None)
        if port is None:
            port = 443 if getattr(base, "scheme", "") == "https" else 80
        out["server.port"] = int(port)
    return out


def call_attributes(info: RequestInfo, path: str, client: Any, helper: str | None,
                    cfg: Config | None = None) -> dict[str, Any]:
    """The call span's start attributes; ``cfg`` is another SDK's hook configuration (Anthropic)."""
    cfg = cfg or state.CFG
    assert cfg is not None
    a: dict[str, Any] = dict(cfg.static_attributes or {})
    a["streamtriage.span"] = "call"
    a["streamtriage.api"] = info.api
    a["streamtriage.call.mode"] = info.mode
    a["gen_ai.operation.name"] = info.operation
    if helper:
        a["streamtriage.helper"] = helper
    if info.model:
        a["gen_ai.request.model"] = info.model
    if info.max_tokens is not None:
        a["gen_ai.request.max_tokens"] = info.max_tokens
    a["streamtriage.request.fingerprint"] = fingerprint(info, path)
    if info.object_id:
        a["streamtriage.object.id"] = info.object_id
    if info.thread_id:
        a["streamtriage.thread.id"] = info.thread_id
    if info.vector_store_id:
        a["streamtriage.vector_store.id"] = info.vector_store_id
    if client is not None:
        a.update(_server(client))
    if cfg.capture_content and info.body:
        import json

        msgs = info.body.get("messages", info.body.get("input"))
        if msgs is not None:
            a["gen_ai.input.messages"] = json.dumps(msgs, default=str)[:65536]
    return a


def _begin(client: Any, args: tuple, kwargs: dict) -> Any:
    cfg = state.CFG
    if cfg is None:
        return None
    options = args[1] if len(args) > 1 else kwargs.get("options")
    info = classify(options)
    if info is None:
        return None
    if info.mode == "poll":
        return PollCall(cfg, info, state.POLL_HELPER.get())
    helper = state.HELPER.get()
    helper_name = helper[0] if helper is not None else None
    path = str(getattr(options, "url", ""))
    if helper_name == "threads.runs.stream" and path.rstrip("/").endswith("submit_tool_outputs"):
        helper_name = "threads.runs.submit_tool_outputs_stream"
    return open_call(CallState, cfg, info, path, client, options, helper_name,
                     helper[1] if helper is not None else None)


C = TypeVar("C", bound=CallState)


def open_call(cls: type[C], cfg: Config, info: RequestInfo, path: str, client: Any, options: Any,
              helper_name: str | None, helper_calls: list | None) -> C:
    """Start one request's call span (any SDK's ``CallState`` class): its start attributes, the read
    timeout in effect, and its place in the helper that made it (``helper_calls``)."""
    st = cls(cfg, info, call_attributes(info, path, client, helper_name, cfg), None, helper_name)
    timeout = read_timeout(options, client)
    if timeout is not None:
        st.span.set_attribute("streamtriage.request.timeout_s", timeout)
    if helper_calls is not None:
        helper_calls.append(st)
    return st


def request_failed(rec: Any, exc: BaseException) -> None:
    """The SDK call raised before a stream took over the call."""
    if isinstance(rec, CallState):
        rec.stream_ended = True
        if rec.outcome is None:
            rec.set_exception(exc, in_stream=False)
        rec.finish()
    else:
        rec.request_failed(exc)


def _request_done(rec: Any, result: Any) -> None:
    if isinstance(rec, CallState):
        if rec.attached:
            return  # the stream ends the call
        http_response = getattr(result, "http_response", None)
        if rec.info.mode == "stream" and http_response is not None:
            # a raw-response wrapper: wait for the app's .parse() to build the stream
            key = id(http_response)
            state.DEFERRED[key] = rec
            rec.finalizer = weakref.finalize(result, guarded, "raw_response_gc", deferred_gc, key, rec)
            return
        observe_result(rec, result)
        rec.stream_ended = True
        rec.outcome = rec.outcome or "completed"
        rec.finish()
    else:
        rec.request_done(result)


def _enter_request(client: Any, args: tuple, kwargs: dict,
                   begin: Callable[[Any, tuple, dict], Any] = _begin) -> tuple[Any, Any] | None:
    """Start the call and make it current; ``None`` when the request is not one we follow."""
    try:
        rec = begin(client, args, kwargs)
    except Exception as exc:
        hook_failed("begin_request", exc)
        return None
    if rec is None:
        return None
    return rec, state.CURRENT.set(rec)


def _leave_request(entered: tuple[Any, Any], exc: BaseException | None, result: Any) -> None:
    """Restore the caller's context first, then record how the request ended (guarded)."""
    rec, token = entered
    state.CURRENT.reset(token)
    if exc is not None:
        guarded("request_failed", request_failed, rec, exc)
    else:
        guarded("request_done", _request_done, rec, result)


def wrap_request(orig: Callable, is_async: bool, begin: Callable[[Any, tuple, dict], Any] = _begin) -> Callable:
    """``begin`` starts the call's record (another SDK's hook passes its own)."""
    enter = _enter_request if begin is _begin else partial(_enter_request, begin=begin)
    return around(orig, is_async, enter, _leave_request)


def _headers_ms(headers: Any, *names: str) -> float | None:
    if headers is None:
        return None
    for name in names:
        v = headers.get(name)
        if v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        return f * 1000.0 if name == "retry-after" else f
    return None


def _saw_response(kwargs: dict) -> None:
    rec = state.CURRENT.get()
    if rec is None:
        return
    response = kwargs.get("response")
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        rec.http_status = status
    rt = kwargs.get("retries_taken")
    if isinstance(rt, int):
        rec.retries = max(rec.retries, rt)
    if isinstance(rec, CallState) and rec.events == 0:
        rec.headers_ns = rec.last_ns = monotonic_ns()  # the first gap is measured from the headers
    pa = _headers_ms(getattr(response, "headers", None), "openai-poll-after-ms")
    if pa is not None:
        rec.poll_after_ms = pa


def _saw_retry(kwargs: dict) -> None:
    rec = state.CURRENT.get()
    if rec is None:
        return
    rt = kwargs.get("retries_taken")
    rec.retries = (rt + 1) if isinstance(rt, int) else rec.retries + 1
    response = kwargs.get("response")
    ra = _headers_ms(getattr(response, "headers", None), "retry-after-ms", "retry-after")
    if ra is not None:
        rec.retry_after_ms = ra


def legacy_retry(kwargs: dict) -> None:
    """SDK < 1.80: ``_retry_request`` is called once per retry."""
    rec = state.CURRENT.get()
    if rec is not None:
        rec.retries += 1


def wrap_observer(orig: Callable, fn: Callable[[dict], None], is_async: bool) -> Callable:
    """Wrap a keyword-argument SDK internal to look at its arguments first."""
    return before(orig, is_async, fn.__name__, lambda _self, _args, kwargs: fn(kwargs))


def wrap_process_response(orig: Callable, is_async: bool) -> Callable:
    return wrap_observer(orig, _saw_response, is_async)


def wrap_sleep_for_retry(orig: Callable, is_async: bool) -> Callable:
    return wrap_observer(orig, _saw_retry, is_async)


def wrap_legacy_retry(orig: Callable, is_async: bool) -> Callable:
    return wrap_observer(orig, legacy_retry, is_async)
