"""Close and exit hooks: a stream's ``close()``/``aclose()`` and its ``with`` block decide how a
call the app stopped reading ended (``cancelled`` with a reason, or ``app_error``).
"""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from .. import errors
from ..calls import CallState
from .state import ATTR
from .wrapping import before


def on_close(obj: Any) -> None:
    """``close()`` on a stream (or a helper's stream) still being read."""
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
    exit_state(st, exc)


def exit_state(st: CallState, exc: BaseException | None) -> None:
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
    return before(orig, is_async, "close", lambda self, _args, _kwargs: on_close(self))


def exit_wrapper(orig: Callable, is_async: bool, where: str, on_exit: Callable[[Any, Any], None]) -> Callable:
    """``__exit__``/``__aexit__`` that tells the hook (guarded) which exception, if any, left the block."""
    return before(orig, is_async, where, lambda self, args, _kwargs: on_exit(self, args[1]))


def wrap_exit(orig: Callable, is_async: bool) -> Callable:
    return exit_wrapper(orig, is_async, "exit", _on_exit)
