"""Stream-manager hooks of the chat / responses / assistants helpers: the helper's name, its
context exit, and the exception the app saw (``get_final_*`` raising after the stream, the
Assistants helper unwrapping a transport error).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .._safety import guarded
from . import exits, state
from .state import ATTR
from .wrapping import on_raise


def _adopt(mgr: Any, result: Any, holder: list) -> None:
    if holder:
        st = holder[0]
        mgr.__dict__[ATTR] = st
        try:
            result.__dict__[ATTR] = st
        except Exception:
            pass


def wrap_manager_enter(orig: Callable, helper: str, is_async: bool) -> Callable:
    """``__enter__``: the request the manager makes inside it is tagged with the helper's name."""
    if is_async:

        @functools.wraps(orig)
        async def __aenter__(self: Any) -> Any:
            holder: list = []
            token = state.HELPER.set((helper, holder))
            try:
                result = await orig(self)
            finally:
                state.HELPER.reset(token)
            guarded("helper_enter", _adopt, self, result, holder)
            return result

        return __aenter__

    @functools.wraps(orig)
    def __enter__(self: Any) -> Any:
        holder: list = []
        token = state.HELPER.set((helper, holder))
        try:
            result = orig(self)
        finally:
            state.HELPER.reset(token)
        guarded("helper_enter", _adopt, self, result, holder)
        return result

    return __enter__


def _helper_exit(mgr: Any, exc: BaseException | None) -> None:
    st = mgr.__dict__.get(ATTR)
    if st is not None:
        st.exiting = True
        exits.exit_state(st, exc)


def wrap_manager_exit(orig: Callable, is_async: bool) -> Callable:
    return exits.exit_wrapper(orig, is_async, "helper_exit", _helper_exit)


def _helper_raised(obj: Any, exc: BaseException) -> None:
    st = obj.__dict__.get(ATTR)
    if st is not None and not st.ended:
        st.helper_error = exc
        if st.exc is None and st.stream_ended:
            st.set_exception(exc, in_stream=False)


def wrap_helper_final(orig: Callable, is_async: bool) -> Callable:
    """``get_final_*``: an exception the helper raises after the stream (LengthFinishReasonError...)."""
    return on_raise(orig, is_async, "helper_final", _helper_raised)
