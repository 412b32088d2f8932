"""The hook points on the anthropic SDK (0.x on httpx, 1.x/2.x on httpx2), sync and async.

The SDK is generated from the same template as openai's, so the same wrappers apply
(``instrumentation/patches.py``): ``request`` gives one call span per ``messages.create`` /
``messages.stream`` (retries included), ``_process_response`` / ``_sleep_for_retry`` the status and
retries, ``close`` / ``__exit__`` the early stops, and the ``MessageStreamManager`` / ``MessageStream``
wrappers the helper (``get_final_message``, ``text_stream``, ``until_done`` all read the same raw stream).
Anthropic-specific:

* the call is attached to its ``Stream`` in ``__init__``: 2.x iterates a *copy* of the stream
  (``copy(self).__stream__()``), which carries the attachment along;
* ``_iter_events`` sees the ``ping`` and ``error`` SSEs the SDK drops or raises on;
* ``MessageStream.__stream__`` records an exception the helper itself raises (unparseable tool JSON);
* ``messages.create`` records a call the SDK refuses before any request ("Streaming is required for
  operations that may take longer than 10 minutes").

Nothing is imported from ``anthropic`` until the app imports it: ``install`` registers an import hook.
"""
from __future__ import annotations

import contextvars
import functools
import sys
from collections.abc import Callable
from typing import Any

from ._safety import guarded, hook_failed
from .anthropic_calls import (
    AnthropicCall,
    classify,
    observe_message,
    observe_message_result,
    request_info,
    sdk_attributes,
)
from .calls import CallState, Config
from .hooks import exits, helpers, requests, state, streams
from .hooks.wrapping import around
from .observers import RESULT_OBSERVERS

HELPER = "messages.stream"
_CFG: Config | None = None
_PATCHED: list[tuple[Any, str, Any]] = []
_APPLIED = False
_HOOK_REGISTERED = False
# Calls begun inside one ``messages.create``: empty when the SDK raised before sending anything.
_CREATE: contextvars.ContextVar[list | None] = contextvars.ContextVar("streamtriage_anthropic_create", default=None)


# ---------------------------------------------------------------------------------------------
# call start
# ---------------------------------------------------------------------------------------------
def _start(cfg: Config, info: Any, path: str, client: Any, options: Any) -> AnthropicCall:
    helper = state.HELPER.get()
    mine = helper is not None and helper[0] == HELPER
    return requests.open_call(AnthropicCall, cfg, info, path, client, options, HELPER if mine else None,
                              helper[1] if mine and helper is not None else None)


def _begin(client: Any, args: tuple, kwargs: dict) -> AnthropicCall | None:
    cfg = _CFG
    if cfg is None:
        return None
    options = args[1] if len(args) > 1 else kwargs.get("options")
    info = classify(options)
    if info is None:
        return None
    st = _start(cfg, info, str(getattr(options, "url", "")), client, options)
    begun = _CREATE.get()
    if begun is not None:
        begun.append(st)
    return st


def _refused(client: Any, kwargs: dict, exc: BaseException) -> None:
    """``messages.create`` raised before any request (argument checks, the 10-minute rule)."""
    cfg = _CFG
    if cfg is None:
        return
    st = _start(cfg, request_info(kwargs), "/v1/messages", getattr(client, "_client", None), None)
    st.stream_ended = True
    st.set_exception(exc, in_stream=False)
    st.finish()


def _enter_create(client: Any, args: tuple, kwargs: dict) -> tuple[Any, dict, list, Any]:
    """Collect the calls this ``messages.create`` begins (none: it was refused before any request)."""
    begun: list = []
    return client, kwargs, begun, _CREATE.set(begun)


def _left_create(entered: tuple[Any, dict, list, Any], exc: BaseException | None, result: Any) -> None:
    """``messages.create`` returned or raised; a failure with no call begun was refused before any request."""
    client, kwargs, begun, token = entered
    _CREATE.reset(token)
    if exc is not None and not begun and isinstance(exc, Exception):
        guarded("anthropic_refused", _refused, client, kwargs, exc)


def wrap_create(orig: Callable, is_async: bool) -> Callable:
    return around(orig, is_async, _enter_create, _left_create)


# ---------------------------------------------------------------------------------------------
# raw streams
# ---------------------------------------------------------------------------------------------
def _claim(stream: Any) -> None:
    rec = state.CURRENT.get()
    if type(rec) is AnthropicCall and not rec.attached and rec.info.mode == "stream":
        streams._attach(rec, stream)


def wrap_stream_init(orig: Callable) -> Callable:
    @functools.wraps(orig)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        guarded("attach_stream", _claim, self)  # before the SDK's __init__: 0.x builds its iterator there
        orig(self, *args, **kwargs)

    return __init__


def wrap_stream(orig: Callable, is_async: bool) -> Callable:
    def __stream__(self: Any) -> Any:
        inner = orig(self)
        st = self.__dict__.get(state.ATTR)
        if st is None or st.ended:
            return inner
        if is_async:
            return streams._observe_async(st, inner, observe_message)
        return streams._observe_sync(st, inner, observe_message)

    __stream__.__wrapped__ = orig  # type: ignore[attr-defined]
    return __stream__


def _sse(st: AnthropicCall, sse: Any) -> None:
    """The SSEs the SDK drops (``ping``) or raises on (``error``); the others are read parsed."""
    name = sse.event
    if name == "ping":
        st.ping()
    elif name == "error":
        st.in_band_error(sse.data)


def wrap_iter_events(orig: Callable, is_async: bool) -> Callable:
    def _iter_events(self: Any) -> Any:
        inner = orig(self)
        st = self.__dict__.get(state.ATTR)
        if type(st) is not AnthropicCall or st.ended:
            return inner
        return streams._watch_sse_async(st, inner, _sse) if is_async else streams._watch_sse_sync(st, inner, _sse)

    _iter_events.__wrapped__ = orig  # type: ignore[attr-defined]
    return _iter_events


# ---------------------------------------------------------------------------------------------
# the messages.stream() helper
# ---------------------------------------------------------------------------------------------
def _helper_failed(helper_stream: Any, exc: BaseException) -> None:
    """The helper raised while the raw stream was fine (its parser rejected the tool input JSON)."""
    st = helper_stream.__dict__.get(state.ATTR)
    if isinstance(st, CallState) and not st.ended and st.outcome is None:
        st.helper_error = exc
        st.set_exception(exc, in_stream=False)
        st.stream_ended = True


def wrap_helper_stream(orig: Callable, is_async: bool) -> Callable:
    if is_async:

        async def astream(self: Any) -> Any:
            inner = orig(self)
            try:
                async for item in inner:
                    yield item
            except Exception as exc:
                guarded("anthropic_helper", _helper_failed, self, exc)
                raise
            finally:
                await inner.aclose()

        astream.__wrapped__ = orig  # type: ignore[attr-defined]
        return astream

    def stream(self: Any) -> Any:
        try:
            yield from orig(self)
        except Exception as exc:
            guarded("anthropic_helper", _helper_failed, self, exc)
            raise

    stream.__wrapped__ = orig  # type: ignore[attr-defined]
    return stream


# ---------------------------------------------------------------------------------------------
# install / uninstall
# ---------------------------------------------------------------------------------------------
def _patch(owner: Any, name: str, make: Callable[[Callable], Callable]) -> None:
    orig = owner.__dict__.get(name)
    if orig is not None:
        setattr(owner, name, make(orig))
        _PATCHED.append((owner, name, orig))


Wrap = Callable[[Callable], Callable]



def _wrappers(is_async: bool) -> dict[str, Wrap]:
    """Every wrapper of one flavour (sync or async), by what it wraps."""
    return {
        "request": functools.partial(requests.wrap_request, is_async=is_async, begin=_begin),
        "_process_response": lambda o: requests.wrap_observer(o, requests._saw_response, is_async),
        "_sleep_for_retry": lambda o: requests.wrap_observer(o, requests._saw_retry, is_async),
        "__stream__": lambda o: wrap_stream(o, is_async),
        "_iter_events": lambda o: wrap_iter_events(o, is_async),
        "close": lambda o: exits.wrap_close(o, is_async),
        "exit": lambda o: exits.wrap_exit(o, is_async),
        "enter_helper": lambda o: helpers.wrap_manager_enter(o, HELPER, is_async),
        "exit_helper": lambda o: helpers.wrap_manager_exit(o, is_async),
        "get_final_message": lambda o: helpers.wrap_helper_final(o, is_async),
        "helper_stream": lambda o: wrap_helper_stream(o, is_async),
        "create": lambda o: wrap_create(o, is_async),
    }


def _apply(module: Any = None) -> None:
    """Patch the SDK (from the import hook, or at once when the app already imported it)."""
    global _APPLIED
    if _CFG is None or _APPLIED:
        return
    _APPLIED = True
    _CFG.static_attributes = sdk_attributes()
    from anthropic import _base_client, _streaming
    from anthropic.lib.streaming import _messages
    from anthropic.resources.messages import messages

    flavours: tuple[tuple[bool, Any, Any, Any, Any, Any], ...] = (
        (False, _base_client.SyncAPIClient, _streaming.Stream, _messages.MessageStreamManager,
         _messages.MessageStream, messages.Messages),
        (True, _base_client.AsyncAPIClient, _streaming.AsyncStream, _messages.AsyncMessageStreamManager,
         _messages.AsyncMessageStream, messages.AsyncMessages),
    )
    for is_async, client, stream, manager, helper_stream, resource in flavours:
        w = _wrappers(is_async)
        for name in ("request", "_process_response", "_sleep_for_retry"):
            _patch(client, name, w[name])
        _patch(stream, "__init__", wrap_stream_init)
        for name in ("__stream__", "_iter_events", "close"):
            _patch(stream, name, w[name])
        _patch(stream, "__aexit__" if is_async else "__exit__", w["exit"])
        _patch(manager, "__aenter__" if is_async else "__enter__", w["enter_helper"])
        _patch(manager, "__aexit__" if is_async else "__exit__", w["exit_helper"])
        _patch(helper_stream, "get_final_message", w["get_final_message"])
        _patch(helper_stream, "close", w["close"])
        _patch(helper_stream, "__stream__", w["helper_stream"])
        _patch(resource, "create", w["create"])


def install(cfg: Config) -> None:
    """Hook the anthropic SDK now if the app imported it, else as soon as it does."""
    global _CFG, _HOOK_REGISTERED
    _CFG = cfg
    RESULT_OBSERVERS["messages"] = observe_message_result
    if "anthropic" in sys.modules:
        guarded("patch anthropic", _apply)
    elif not _HOOK_REGISTERED:
        import wrapt

        _HOOK_REGISTERED = True
        wrapt.register_post_import_hook(lambda m: guarded("patch anthropic", _apply, m), "anthropic")


def uninstall() -> None:
    global _CFG, _APPLIED
    _CFG = None
    _APPLIED = False
    RESULT_OBSERVERS.pop("messages", None)
    while _PATCHED:
        owner, name, orig = _PATCHED.pop()
        try:
            setattr(owner, name, orig)
        except Exception as exc:  # pragma: no cover
            hook_failed("unpatch anthropic", exc)
