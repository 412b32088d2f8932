"""The three wrapper shapes every hook uses, each written once for sync and async methods.

A wrapper calls the original exactly as the app did and returns/raises exactly what it
returned/raised; the hook's own steps run guarded. The per-chunk generators in ``streams`` keep
their own sync/async twins: they are the measured fast path (``bench/bench_hooks.py micro``).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from .._safety import guarded

E = TypeVar("E")


def around(
    orig: Callable,
    is_async: bool,
    enter: Callable[[Any, tuple, dict], E | None],
    leave: Callable[[E, BaseException | None, Any], None],
) -> Callable:
    """``enter`` before the call (``None``: not ours, call straight through), ``leave`` after it with
    the exception or the result. ``enter``/``leave`` guard themselves."""
    if is_async:

        @functools.wraps(orig)
        async def awrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            entered = enter(self, args, kwargs)
            if entered is None:
                return await orig(self, *args, **kwargs)
            try:
                result = await orig(self, *args, **kwargs)
            except BaseException as exc:
                leave(entered, exc, None)
                raise
            leave(entered, None, result)
            return result

        return awrapper

    @functools.wraps(orig)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        entered = enter(self, args, kwargs)
        if entered is None:
            return orig(self, *args, **kwargs)
        try:
            result = orig(self, *args, **kwargs)
        except BaseException as exc:
            leave(entered, exc, None)
            raise
        leave(entered, None, result)
        return result

    return wrapper


def before(orig: Callable, is_async: bool, where: str, look: Callable[[Any, tuple, dict], None]) -> Callable:
    """Let ``look`` (guarded) see the receiver and arguments, then call the original."""
    if is_async:

        @functools.wraps(orig)
        async def awrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            guarded(where, look, self, args, kwargs)
            return await orig(self, *args, **kwargs)

        return awrapper

    @functools.wraps(orig)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        guarded(where, look, self, args, kwargs)
        return orig(self, *args, **kwargs)

    return wrapper


def on_raise(orig: Callable, is_async: bool, where: str, saw: Callable[[Any, BaseException], None]) -> Callable:
    """Call the original; an exception it raises is shown to ``saw`` (guarded) and re-raised."""
    if is_async:

        @functools.wraps(orig)
        async def awrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await orig(self, *args, **kwargs)
            except BaseException as exc:
                guarded(where, saw, self, exc)
                raise

        return awrapper

    @functools.wraps(orig)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return orig(self, *args, **kwargs)
        except BaseException as exc:
            guarded(where, saw, self, exc)
            raise

    return wrapper
