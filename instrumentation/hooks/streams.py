"""Stream hooks: ``__stream__`` sees every parsed event once, at the raw layer the SDK's helpers
read too (no double counting); ``_iter_events`` sees the ``[DONE]`` marker and ``event: error``
frames the SDK does not yield. A GC finalizer per stream catches streams the app dropped.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from .._safety import count, guarded, hook_failed
from ..calls import CallState
from ..observers import OBSERVERS
from . import state
from .state import ATTR


def deferred_gc(key: int, st: CallState) -> None:
    """A raw-response wrapper of a stream call was dropped without parsing its stream."""
    if state.DEFERRED.get(key) is st:
        del state.DEFERRED[key]
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


# The two generators below run once per chunk: they stay sync/async twins with the observer call
# inlined (a shared step function costs a call per chunk; measured by ``bench/bench_hooks.py micro``).
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
    rec = state.CURRENT.get()
    if rec is None:
        # ``with_raw_response`` / ``with_streaming_response``: the Stream is built later by the
        # app's ``.parse()``; the request hook left the call on the HTTP response object
        rec = state.DEFERRED.pop(id(getattr(stream, "response", None)), None)
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


# Per-SSE fast path, twins for the same reason as ``_observe_sync``/``_observe_async``.
# ``mark`` gets every SSE with an ``event:`` name or ``[``-data (the Anthropic hook passes its own).
def _watch_sse_sync(st: CallState, inner: Any, mark: Callable[[Any, Any], None] = _sse_marker) -> Any:
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
