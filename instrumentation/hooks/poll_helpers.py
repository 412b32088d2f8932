"""Polling-helper hooks (``create_and_poll``, ``poll``, ``submit_tool_outputs_and_poll``): one call
span per loop, current while the loop runs, so every poll span it makes is its child.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from .._safety import guarded
from ..calls import CallState
from ..observers import observe_result
from ..routes import RequestInfo
from . import state
from .requests import call_attributes, request_failed
from .wrapping import around


def _start_poll_helper(helper: str, api: str, args: tuple, kwargs: dict) -> CallState | None:
    cfg = state.CFG
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


def _enter_poll_helper(helper: str, api: str, args: tuple, kwargs: dict) -> tuple[CallState, Any, Any] | None:
    """Start the loop's call span and make it current; None when an outer helper's loop already owns the
    polls (helpers call each other) or the hook is off or failed to start."""
    if state.POLL_HELPER.get() is not None or state.CFG is None:
        return None
    st = guarded("poll_helper", _start_poll_helper, helper, api, args, kwargs)
    if st is None:
        return None
    return st, state.POLL_HELPER.set(st), otel_context.attach(st.ctx)


def _leave_poll_helper(entered: tuple[CallState, Any, Any], exc: BaseException | None, result: Any) -> None:
    """Restore the caller's context first, then record how the loop ended (guarded)."""
    st, token, ctx_token = entered
    otel_context.detach(ctx_token)
    state.POLL_HELPER.reset(token)
    if exc is not None:
        guarded("poll_helper_failed", request_failed, st, exc)
    else:
        guarded("poll_helper_done", _poll_done, st, result)


def wrap_poll_helper(orig: Callable, helper: str, api: str, is_async: bool) -> Callable:
    def enter(_self: Any, args: tuple, kwargs: dict) -> tuple[CallState, Any, Any] | None:
        return _enter_poll_helper(helper, api, args, kwargs)

    return around(orig, is_async, enter, _leave_poll_helper)
