"""The hook points: class-level patches on the openai SDK (1.x >= 1.40, 2.x, 3.x), sync and async.

- ``SyncAPIClient.request`` / ``AsyncAPIClient.request``: one call span (or poll span) per SDK call,
  covering retries; ``_process_response`` and ``_sleep_for_retry``/``_retry_request`` give the HTTP
  status, retry count and poll-after header.
- ``Stream.__stream__`` / ``_iter_events``: every stream event once, at the raw layer the helpers
  read too (no double counting); ``close``/``__exit__`` and a GC finalizer catch abandoned streams.
- Stream managers of the chat/responses/assistants helpers: helper name, context exit, the
  exception the app saw (the Assistants helper unwraps transport errors).
- Polling helpers: one call span per loop, parent of its polls.

Patches are plain class attribute swaps, restored by ``unpatch_all``. Every wrapper calls the
original exactly as the app did and returns/raises exactly what it returned/raised.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import sys
import weakref
from collections.abc import Callable
from time import monotonic_ns
from typing import Any

from opentelemetry import context as otel_context

from . import errors
from ._safety import count, guarded, hook_failed
from .calls import CallState, Config
from .observers import OBSERVERS, observe_result
from .polls import PollCall
from .routes import RequestInfo, classify, fingerprint, read_timeout

ATTR = "_streamtriage_call"
_CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("streamtriage_current", default=None)
_HELPER: contextvars.ContextVar[Any] = contextvars.ContextVar("streamtriage_helper", default=None)
_POLL_HELPER: contextvars.ContextVar[Any] = contextvars.ContextVar("streamtriage_poll_helper", default=None)

_CFG: Config | None = None
_PATCHED: list[tuple[Any, str, Any]] = []


# ---------------------------------------------------------------------------------------------
# call start
# ---------------------------------------------------------------------------------------------
def _sdk_attributes() -> dict[str, Any]:
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
    cfg = cfg or _CFG
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
    cfg = _CFG
    if cfg is None:
        return None
    options = args[1] if len(args) > 1 else kwargs.get("options")
    info = classify(options)
    if info is None:
        return None
    if info.mode == "poll":
        return PollCall(cfg, info, _POLL_HELPER.get())
    helper = _HELPER.get()
    helper_name = helper[0] if helper is not None else None
    path = str(getattr(options, "url", ""))
    if helper_name == "threads.runs.stream" and path.rstrip("/").endswith("submit_tool_outputs"):
        helper_name = "threads.runs.submit_tool_outputs_stream"
    st = CallState(cfg, info, call_attributes(info, path, client, helper_name), None, helper_name)
    timeout = read_timeout(options, client)
    if timeout is not None:
        st.span.set_attribute("streamtriage.request.timeout_s", timeout)
    if helper is not None:
        helper[1].append(st)
    return st


def _request_failed(rec: Any, exc: BaseException) -> None:
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
            _DEFERRED[key] = rec
            rec.finalizer = weakref.finalize(result, guarded, "raw_response_gc", _deferred_gc, key, rec)
            return
        observe_result(rec, result)
        rec.stream_ended = True
        rec.outcome = rec.outcome or "completed"
        rec.finish()
    else:
        rec.request_done(result)


def wrap_request_sync(orig: Callable, begin: Callable[[Any, tuple, dict], Any] = _begin) -> Callable:
    """``begin`` starts the call's record (another SDK's hook passes its own)."""

    @functools.wraps(orig)
    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            rec = begin(self, args, kwargs)
        except Exception as exc:
            hook_failed("begin_request", exc)
            rec = None
        if rec is None:
            return orig(self, *args, **kwargs)
        token = _CURRENT.set(rec)
        try:
            result = orig(self, *args, **kwargs)
        except BaseException as exc:
            _CURRENT.reset(token)
            guarded("request_failed", _request_failed, rec, exc)
            raise
        _CURRENT.reset(token)
        guarded("request_done", _request_done, rec, result)
        return result

    return request


def wrap_request_async(orig: Callable, begin: Callable[[Any, tuple, dict], Any] = _begin) -> Callable:
    @functools.wraps(orig)
    async def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            rec = begin(self, args, kwargs)
        except Exception as exc:
            hook_failed("begin_request", exc)
            rec = None
        if rec is None:
            return await orig(self, *args, **kwargs)
        token = _CURRENT.set(rec)
        try:
            result = await orig(self, *args, **kwargs)
        except BaseException as exc:
            _CURRENT.reset(token)
            guarded("request_failed", _request_failed, rec, exc)
            raise
        _CURRENT.reset(token)
        guarded("request_done", _request_done, rec, result)
        return result

    return request


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
    rec = _CURRENT.get()
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
    rec = _CURRENT.get()
    if rec is None:
        return
    rt = kwargs.get("retries_taken")
    rec.retries = (rt + 1) if isinstance(rt, int) else rec.retries + 1
    response = kwargs.get("response")
    ra = _headers_ms(getattr(response, "headers", None), "retry-after-ms", "retry-after")
    if ra is not None:
        rec.retry_after_ms = ra


def wrap_observer(orig: Callable, fn: Callable[[dict], None], is_async: bool) -> Callable:
    """Wrap a keyword-argument SDK internal to look at its arguments first."""
    if is_async:

        @functools.wraps(orig)
        async def awrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            guarded(fn.__name__, fn, kwargs)
            return await orig(self, *args, **kwargs)

        return awrapper

    @functools.wraps(orig)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        guarded(fn.__name__, fn, kwargs)
        return orig(self, *args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------------
# raw streams
# ---------------------------------------------------------------------------------------------
_DEFERRED: dict[int, CallState] = {}


def _deferred_gc(key: int, st: CallState) -> None:
    """A raw-response wrapper of a stream call was dropped without parsing its stream."""
    if _DEFERRED.get(key) is st:
        del _DEFERRED[key]
    if not st.attached and not st.ended:
        st.cancelled("gc")


def _abandoned(st: CallState) -> None:
    """GC finalizer of a raw stream the app dropped without closing."""
    if not st.ended:
        count("streams_abandoned")
        st.cancelled("gc")


def _attach(st: CallState, stream: Any) -> None:
    st.attached = True
    if st.finalizer is not None:
        st.finalizer.detach()
    stream.__dict__[ATTR] = st
    st.finalizer = weakref.finalize(stream, guarded, "stream_gc", _abandoned, st)
    if st.cfg.flusher is not None:
        st.cfg.flusher.track(st)


def _observe_sync(st: CallState, inner: Any, observe: Callable) -> Any:
    try:
        for item in inner:
            try:
                observe(st, item)
            except Exception as exc:
                hook_failed("observe", exc)
            yield item
    except GeneratorExit:
        try:
            close = getattr(inner, "close", None)
            if close is not None:
                close()
        finally:
            guarded("generator_exit", st.cancelled, "generator_exit")
        raise
    except BaseException as exc:
        guarded("stream_failed", st.stream_failed, exc)
        raise
    else:
        guarded("stream_finished", st.stream_finished)


async def _observe_async(st: CallState, inner: Any, observe: Callable) -> Any:
    try:
        async for item in inner:
            try:
                observe(st, item)
            except Exception as exc:
                hook_failed("observe", exc)
            yield item
    except GeneratorExit:
        try:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            guarded("generator_exit", st.cancelled, "generator_exit")
        raise
    except BaseException as exc:
        guarded("stream_failed", st.stream_failed, exc)
        raise
    else:
        guarded("stream_finished", st.stream_finished)


def _claim(stream: Any) -> CallState | None:
    rec = _CURRENT.get()
    if rec is None:
        # ``with_raw_response`` / ``with_streaming_response``: the Stream is built later by the
        # app's ``.parse()``; the request hook left the call on the HTTP response object
        rec = _DEFERRED.pop(id(getattr(stream, "response", None)), None)
    if type(rec) is not CallState or rec.attached or rec.info.mode != "stream":
        return None
    observe = OBSERVERS.get(rec.api)
    if observe is None:
        return None
    _attach(rec, stream)
    return rec


def wrap_stream(orig: Callable, is_async: bool) -> Callable:
    def __stream__(self: Any) -> Any:
        inner = orig(self)
        try:
            st = _claim(self)
        except Exception as exc:
            hook_failed("attach_stream", exc)
            return inner
        if st is None:
            return inner
        observe = OBSERVERS[st.api]
        return _observe_async(st, inner, observe) if is_async else _observe_sync(st, inner, observe)

    __stream__.__wrapped__ = orig  # type: ignore[attr-defined]
    return __stream__


def _done_marker(st: CallState, event: str | None) -> None:
    if st.api == "chat.completions":
        st.done_seen = True
        st.event("[DONE]", {"streamtriage.terminal": True})
    else:
        st.event(event or "[DONE]", None)


def _sse_marker(st: CallState, sse: Any) -> None:
    """Only SSEs with an ``event:`` name or ``[``-data get here (never a chat chunk)."""
    if sse.event == "error":
        st.sse_error = True
        st.fast = False
    elif sse.data.startswith("[DONE]"):
        guarded("done_marker", _done_marker, st, sse.event)


def _watch_sse_sync(st: CallState, inner: Any, mark: Callable[[Any, Any], None] = _sse_marker) -> Any:
    """Every SSE with an ``event:`` name or ``[``-data goes to ``mark`` (the Anthropic hook passes its own)."""
    try:
        for sse in inner:
            try:
                if sse._event is not None or sse._data[:1] == "[":
                    mark(st, sse)
            except Exception as exc:
                hook_failed("sse_marker", exc)
            yield sse
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            close()


async def _watch_sse_async(st: CallState, inner: Any, mark: Callable[[Any, Any], None] = _sse_marker) -> Any:
    try:
        async for sse in inner:
            try:
                if sse._event is not None or sse._data[:1] == "[":
                    mark(st, sse)
            except Exception as exc:
                hook_failed("sse_marker", exc)
            yield sse
    finally:
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()


def wrap_iter_events(orig: Callable, is_async: bool) -> Callable:
    def _iter_events(self: Any) -> Any:
        inner = orig(self)
        st = self.__dict__.get(ATTR)
        if st is None or st.ended or st.api == "responses":
            return inner  # Responses has no [DONE] and yields its error events: nothing to watch here
        return _watch_sse_async(st, inner) if is_async else _watch_sse_sync(st, inner)

    _iter_events.__wrapped__ = orig  # type: ignore[attr-defined]
    return _iter_events


def _on_close(obj: Any) -> None:
    st = obj.__dict__.get(ATTR)
    if st is not None and not st.ended and not st.exiting:
        unwinding = sys.exc_info()[1]  # a close() in an except/finally block: the app's exception stopped it
        if unwinding is not None and isinstance(unwinding, Exception):
            st.cancelled("close", app_exc=unwinding)
        else:
            st.cancelled("close")


def _on_exit(obj: Any, exc: BaseException | None) -> None:
    st = obj.__dict__.get(ATTR)
    if st is None or st.ended:
        return
    st.exiting = True
    _exit_state(st, exc)


def _exit_state(st: CallState, exc: BaseException | None) -> None:
    """A ``with`` block around the stream was left: decide how the call ended."""
    if st.ended:
        return
    if not st.stream_ended:
        if exc is None:
            st.cancelled("context_exit")
        elif errors.outcome_of(exc, in_stream=False) == "cancelled":
            st.cancelled(errors.cancel_reason(exc), app_exc=None if isinstance(exc, asyncio.CancelledError) else exc)
        else:
            st.cancelled("context_exit", app_exc=exc)
        return
    if exc is not None:
        seen = st.exc
        if seen is not None and exc is not seen and (seen.__cause__ is exc or exc.__context__ is seen):
            st.exc = exc  # the helper unwrapped the SDK's exception: record what the app saw
        elif seen is None and st.outcome in ("completed", "no_terminal", "error_event") and st.helper_error is exc:
            st.set_exception(exc, in_stream=False)
    st.finish()


def wrap_close(orig: Callable, is_async: bool) -> Callable:
    if is_async:

        @functools.wraps(orig)
        async def aclose(self: Any, *args: Any, **kwargs: Any) -> Any:
            guarded("close", _on_close, self)
            return await orig(self, *args, **kwargs)

        return aclose

    @functools.wraps(orig)
    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        guarded("close", _on_close, self)
        return orig(self, *args, **kwargs)

    return close


def _exit_wrapper(orig: Callable, is_async: bool, where: str, on_exit: Callable[[Any, Any], None]) -> Callable:
    """``__exit__``/``__aexit__`` that tells the hook (guarded) which exception, if any, left the block."""
    if is_async:

        @functools.wraps(orig)
        async def __aexit__(self: Any, exc_type: Any, exc: Any, tb: Any) -> Any:
            guarded(where, on_exit, self, exc)
            return await orig(self, exc_type, exc, tb)

        return __aexit__

    @functools.wraps(orig)
    def __exit__(self: Any, exc_type: Any, exc: Any, tb: Any) -> Any:
        guarded(where, on_exit, self, exc)
        return orig(self, exc_type, exc, tb)

    return __exit__


def wrap_exit(orig: Callable, is_async: bool) -> Callable:
    return _exit_wrapper(orig, is_async, "exit", _on_exit)


# ---------------------------------------------------------------------------------------------
# stream helpers (managers)
# ---------------------------------------------------------------------------------------------
def _adopt(mgr: Any, result: Any, holder: list) -> None:
    if holder:
        st = holder[0]
        mgr.__dict__[ATTR] = st
        try:
            result.__dict__[ATTR] = st
        except Exception:
            pass


def wrap_manager_enter(orig: Callable, helper: str, is_async: bool) -> Callable:
    if is_async:

        @functools.wraps(orig)
        async def __aenter__(self: Any) -> Any:
            holder: list = []
            token = _HELPER.set((helper, holder))
            try:
                result = await orig(self)
            finally:
                _HELPER.reset(token)
            guarded("helper_enter", _adopt, self, result, holder)
            return result

        return __aenter__

    @functools.wraps(orig)
    def __enter__(self: Any) -> Any:
        holder: list = []
        token = _HELPER.set((helper, holder))
        try:
            result = orig(self)
        finally:
            _HELPER.reset(token)
        guarded("helper_enter", _adopt, self, result, holder)
        return result

    return __enter__


def _helper_exit(mgr: Any, exc: BaseException | None) -> None:
    st = mgr.__dict__.get(ATTR)
    if st is not None:
        st.exiting = True
        _exit_state(st, exc)


def wrap_manager_exit(orig: Callable, is_async: bool) -> Callable:
    return _exit_wrapper(orig, is_async, "helper_exit", _helper_exit)


def _helper_raised(obj: Any, exc: BaseException) -> None:
    st = obj.__dict__.get(ATTR)
    if st is not None and not st.ended:
        st.helper_error = exc
        if st.exc is None and st.stream_ended:
            st.set_exception(exc, in_stream=False)


def wrap_helper_final(orig: Callable, is_async: bool) -> Callable:
    """``get_final_*``: an exception the helper raises after the stream (LengthFinishReasonError...)."""
    if is_async:

        @functools.wraps(orig)
        async def afinal(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await orig(self, *args, **kwargs)
            except BaseException as exc:
                guarded("helper_final", _helper_raised, self, exc)
                raise

        return afinal

    @functools.wraps(orig)
    def final(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return orig(self, *args, **kwargs)
        except BaseException as exc:
            guarded("helper_final", _helper_raised, self, exc)
            raise

    return final


# ---------------------------------------------------------------------------------------------
# polling helpers
# ---------------------------------------------------------------------------------------------
def _start_poll_helper(helper: str, api: str, args: tuple, kwargs: dict) -> CallState | None:
    cfg = _CFG
    if cfg is None:
        return None
    object_id = kwargs.get("run_id") or kwargs.get("file_id") or kwargs.get("batch_id")
    if object_id is None and helper.endswith(".poll") and args and isinstance(args[0], str):
        object_id = args[0]
    info = RequestInfo(
        api,
        "poll",
        model=kwargs.get("model") if isinstance(kwargs.get("model"), str) else None,
        object_id=object_id if isinstance(object_id, str) else None,
        thread_id=kwargs.get("thread_id") if isinstance(kwargs.get("thread_id"), str) else None,
        vector_store_id=kwargs.get("vector_store_id") if isinstance(kwargs.get("vector_store_id"), str) else None,
        body={k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, bool, list, dict))},
    )
    st = CallState(cfg, info, call_attributes(info, helper, None, helper), None, helper)
    interval = kwargs.get("poll_interval_ms")
    if isinstance(interval, (int, float)) and not isinstance(interval, bool):
        st.poll_interval_ms = float(interval)
    return st


def _poll_done(st: CallState, result: Any) -> None:
    observe_result(st, result)
    st.stream_ended = True
    st.outcome = st.outcome or "completed"
    st.finish()


def _enter_poll_helper(helper: str, api: str, args: Any, kwargs: Any) -> tuple[CallState, Any, Any] | None:
    """Start the loop's call span and make it current; None when an outer helper's loop already owns the
    polls (helpers call each other) or the hook is off or failed to start."""
    if _POLL_HELPER.get() is not None or _CFG is None:
        return None
    st = guarded("poll_helper", _start_poll_helper, helper, api, args, kwargs)
    if st is None:
        return None
    return st, _POLL_HELPER.set(st), otel_context.attach(st.ctx)


def _leave_poll_helper(entered: tuple[CallState, Any, Any], exc: BaseException | None, result: Any) -> None:
    """Restore the caller's context first, then record how the loop ended (guarded)."""
    st, token, ctx_token = entered
    otel_context.detach(ctx_token)
    _POLL_HELPER.reset(token)
    if exc is not None:
        guarded("poll_helper_failed", _request_failed, st, exc)
    else:
        guarded("poll_helper_done", _poll_done, st, result)


def wrap_poll_helper(orig: Callable, helper: str, api: str, is_async: bool) -> Callable:
    if is_async:

        @functools.wraps(orig)
        async def apoll(self: Any, *args: Any, **kwargs: Any) -> Any:
            entered = _enter_poll_helper(helper, api, args, kwargs)
            if entered is None:
                return await orig(self, *args, **kwargs)
            try:
                result = await orig(self, *args, **kwargs)
            except BaseException as exc:
                _leave_poll_helper(entered, exc, None)
                raise
            _leave_poll_helper(entered, None, result)
            return result

        return apoll

    @functools.wraps(orig)
    def poll(self: Any, *args: Any, **kwargs: Any) -> Any:
        entered = _enter_poll_helper(helper, api, args, kwargs)
        if entered is None:
            return orig(self, *args, **kwargs)
        try:
            result = orig(self, *args, **kwargs)
        except BaseException as exc:
            _leave_poll_helper(entered, exc, None)
            raise
        _leave_poll_helper(entered, None, result)
        return result

    return poll


# ---------------------------------------------------------------------------------------------
# install / uninstall
# ---------------------------------------------------------------------------------------------
def _patch(owner: Any, name: str, make: Callable[[Callable], Callable]) -> bool:
    orig = owner.__dict__.get(name)
    if orig is None:
        return False
    setattr(owner, name, make(orig))
    _PATCHED.append((owner, name, orig))
    return True


def patch_all(cfg: Config) -> None:
    """Install every hook this SDK version has. Idempotent through the instrumentor."""
    global _CFG
    from openai import _base_client, _streaming

    _CFG = cfg
    for cls, is_async in ((_base_client.SyncAPIClient, False), (_base_client.AsyncAPIClient, True)):
        _patch(cls, "request", wrap_request_async if is_async else wrap_request_sync)
        _patch(cls, "_process_response", lambda o, a=is_async: wrap_observer(o, _saw_response, a))
        if "_sleep_for_retry" in cls.__dict__:
            _patch(cls, "_sleep_for_retry", lambda o, a=is_async: wrap_observer(o, _saw_retry, a))
        else:
            _patch(cls, "_retry_request", lambda o, a=is_async: _wrap_legacy_retry(o, a))
    for cls, is_async in ((_streaming.Stream, False), (_streaming.AsyncStream, True)):
        _patch(cls, "__stream__", lambda o, a=is_async: wrap_stream(o, a))
        _patch(cls, "_iter_events", lambda o, a=is_async: wrap_iter_events(o, a))
        _patch(cls, "close", lambda o, a=is_async: wrap_close(o, a))
        if is_async:
            _patch(cls, "aclose", lambda o: wrap_close(o, True))
            _patch(cls, "__aexit__", lambda o: wrap_exit(o, True))
        else:
            _patch(cls, "__exit__", lambda o: wrap_exit(o, False))
    for mod_name in _MODULE_PATCHES:
        _when_imported(mod_name)


# Helper and polling modules are patched when the app imports them (they are heavy: the Assistants
# helper alone loads ~13 MB of types), not imported by the hook.
_HELPER_MANAGERS = {
    "openai.lib.streaming.chat._completions": ("ChatCompletionStreamManager", "AsyncChatCompletionStreamManager", "chat.completions.stream",
                                               "ChatCompletionStream", "AsyncChatCompletionStream", "get_final_completion"),
    "openai.lib.streaming.responses._responses": ("ResponseStreamManager", "AsyncResponseStreamManager", "responses.stream",
                                                  "ResponseStream", "AsyncResponseStream", "get_final_response"),
    "openai.lib.streaming._assistants": ("AssistantStreamManager", "AsyncAssistantStreamManager", "threads.runs.stream",
                                         "AssistantEventHandler", "AsyncAssistantEventHandler", "get_final_run"),
}
_POLL_MODULES = {
    "openai.resources.beta.threads.runs.runs": ("Runs", "AsyncRuns", "assistants.runs", "threads.runs"),
    "openai.resources.vector_stores.files": ("Files", "AsyncFiles", "vector_stores.files", "vector_stores.files"),
    "openai.resources.beta.vector_stores.files": ("Files", "AsyncFiles", "vector_stores.files", "vector_stores.files"),
    "openai.resources.vector_stores.file_batches": ("FileBatches", "AsyncFileBatches", "vector_stores.file_batches", "vector_stores.file_batches"),
    "openai.resources.beta.vector_stores.file_batches": ("FileBatches", "AsyncFileBatches", "vector_stores.file_batches", "vector_stores.file_batches"),
}
_APPLIED: set[str] = set()
_REGISTERED: set[str] = set()


def _patch_helper_module(module: Any) -> None:
    mgr_sync, mgr_async, helper, stream_sync, stream_async, final = _HELPER_MANAGERS[module.__name__]
    for name, is_async in ((mgr_sync, False), (mgr_async, True)):
        cls = getattr(module, name, None)
        if cls is None:
            continue
        enter, exit_ = ("__aenter__", "__aexit__") if is_async else ("__enter__", "__exit__")
        _patch(cls, enter, lambda o, h=helper, a=is_async: wrap_manager_enter(o, h, a))
        _patch(cls, exit_, lambda o, a=is_async: wrap_manager_exit(o, a))
    for name, is_async in ((stream_sync, False), (stream_async, True)):
        cls = getattr(module, name, None)
        if cls is None:
            continue
        _patch(cls, final, lambda o, a=is_async: wrap_helper_final(o, a))
        _patch(cls, "close", lambda o, a=is_async: wrap_close(o, a))


def _patch_poll_module(module: Any) -> None:
    sync_name, async_name, api, prefix = _POLL_MODULES[module.__name__]
    for name, is_async in ((sync_name, False), (async_name, True)):
        cls = getattr(module, name, None)
        if cls is None:
            continue
        for meth in ("poll", "create_and_poll", "submit_tool_outputs_and_poll"):
            if meth in cls.__dict__:
                _patch(cls, meth, lambda o, h=f"{prefix}.{meth}", a=is_async, api=api: wrap_poll_helper(o, h, api, a))


_MODULE_PATCHES: dict[str, Callable[[Any], None]] = {
    **{m: _patch_helper_module for m in _HELPER_MANAGERS},
    **{m: _patch_poll_module for m in _POLL_MODULES},
}


def _apply(module: Any) -> None:
    name = module.__name__
    if _CFG is None or name in _APPLIED:
        return  # not instrumented (any more), or already patched in this instrumentation
    _APPLIED.add(name)
    guarded(f"patch {name}", _MODULE_PATCHES[name], module)


def _when_imported(mod_name: str) -> None:
    module = sys.modules.get(mod_name)
    if module is not None:
        _apply(module)
    elif mod_name not in _REGISTERED:
        import wrapt

        _REGISTERED.add(mod_name)
        wrapt.register_post_import_hook(_apply, mod_name)


def _wrap_legacy_retry(orig: Callable, is_async: bool) -> Callable:
    """SDK < 1.80: ``_retry_request`` is called once per retry."""

    def bump(kwargs: dict) -> None:
        rec = _CURRENT.get()
        if rec is not None:
            rec.retries += 1

    bump.__name__ = "legacy_retry"
    return wrap_observer(orig, bump, is_async)


def unpatch_all() -> None:
    global _CFG
    _APPLIED.clear()
    while _PATCHED:
        owner, name, orig = _PATCHED.pop()
        setattr(owner, name, orig)
    _CFG = None
