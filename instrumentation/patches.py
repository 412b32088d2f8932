"""The patch registry: which hook goes on which class of the openai SDK (1.x >= 1.40, 2.x, 3.x),
sync and async, and how to take them all off again.

Patches are plain class attribute swaps, restored by ``unpatch_all``. The hooks themselves live in
``hooks/`` (one module per seam: requests, streams, exits, helpers, poll helpers).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from ._safety import guarded
from .calls import Config
from .hooks import state
from .hooks.exits import wrap_close, wrap_exit
from .hooks.helpers import wrap_helper_final, wrap_manager_enter, wrap_manager_exit
from .hooks.poll_helpers import wrap_poll_helper
from .hooks.requests import (
    sdk_attributes,
    wrap_legacy_retry,
    wrap_process_response,
    wrap_request,
    wrap_sleep_for_retry,
)
from .hooks.streams import wrap_iter_events, wrap_stream

__all__ = ["patch_all", "unpatch_all", "sdk_attributes"]

_PATCHED: list[tuple[Any, str, Any]] = []


def _patch(owner: Any, name: str, make: Callable[[Callable], Callable]) -> bool:
    orig = owner.__dict__.get(name)
    if orig is None:
        return False
    setattr(owner, name, make(orig))
    _PATCHED.append((owner, name, orig))
    return True


def patch_all(cfg: Config) -> None:
    """Install every hook this SDK version has. Idempotent through the instrumentor."""
    from openai import _base_client, _streaming

    state.CFG = cfg
    for cls, is_async in ((_base_client.SyncAPIClient, False), (_base_client.AsyncAPIClient, True)):
        _patch(cls, "request", partial(wrap_request, is_async=is_async))
        _patch(cls, "_process_response", partial(wrap_process_response, is_async=is_async))
        if "_sleep_for_retry" in cls.__dict__:
            _patch(cls, "_sleep_for_retry", partial(wrap_sleep_for_retry, is_async=is_async))
        else:
            _patch(cls, "_retry_request", partial(wrap_legacy_retry, is_async=is_async))
    for stream_cls, is_async in ((_streaming.Stream, False), (_streaming.AsyncStream, True)):
        _patch(stream_cls, "__stream__", partial(wrap_stream, is_async=is_async))
        _patch(stream_cls, "_iter_events", partial(wrap_iter_events, is_async=is_async))
        _patch(stream_cls, "close", partial(wrap_close, is_async=is_async))
        if is_async:
            _patch(stream_cls, "aclose", partial(wrap_close, is_async=True))
        _patch(stream_cls, "__aexit__" if is_async else "__exit__", partial(wrap_exit, is_async=is_async))
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
        _patch(cls, enter, partial(wrap_manager_enter, helper=helper, is_async=is_async))
        _patch(cls, exit_, partial(wrap_manager_exit, is_async=is_async))
    for name, is_async in ((stream_sync, False), (stream_async, True)):
        cls = getattr(module, name, None)
        if cls is None:
            continue
        _patch(cls, final, partial(wrap_helper_final, is_async=is_async))
        _patch(cls, "close", partial(wrap_close, is_async=is_async))


def _patch_poll_module(module: Any) -> None:
    sync_name, async_name, api, prefix = _POLL_MODULES[module.__name__]
    for name, is_async in ((sync_name, False), (async_name, True)):
        cls = getattr(module, name, None)
        if cls is None:
            continue
        for meth in ("poll", "create_and_poll", "submit_tool_outputs_and_poll"):
            if meth in cls.__dict__:
                _patch(cls, meth, partial(wrap_poll_helper, helper=f"{prefix}.{meth}", api=api, is_async=is_async))


_MODULE_PATCHES: dict[str, Callable[[Any], None]] = {
    **{m: _patch_helper_module for m in _HELPER_MANAGERS},
    **{m: _patch_poll_module for m in _POLL_MODULES},
}


def _apply(module: Any) -> None:
    name = module.__name__
    if state.CFG is None or name in _APPLIED:
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


def unpatch_all() -> None:
    _APPLIED.clear()
    while _PATCHED:
        owner, name, orig = _PATCHED.pop()
        setattr(owner, name, orig)
    state.CFG = None
