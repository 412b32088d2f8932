"""What every hook shares: the active configuration and the call the current context is making.

``CFG`` is ``None`` while the hook is not installed; wrappers left on a class after
``unpatch_all`` (an app holding a bound method) then call straight through.
"""
from __future__ import annotations

import contextvars
from typing import Any

from ..calls import CallState, Config

ATTR = "_streamtriage_call"
"""Instance attribute on a stream, manager or helper stream that carries its ``CallState``."""

CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("streamtriage_current", default=None)
"""The ``CallState``/``PollCall`` of the SDK request running in this context."""
HELPER: contextvars.ContextVar[Any] = contextvars.ContextVar("streamtriage_helper", default=None)
"""``(helper name, holder list)`` while a stream manager's ``__enter__`` runs."""
POLL_HELPER: contextvars.ContextVar[Any] = contextvars.ContextVar("streamtriage_poll_helper", default=None)
"""The loop's ``CallState`` while a polling helper runs."""

CFG: Config | None = None

DEFERRED: dict[int, CallState] = {}
"""Stream calls made through ``with_raw_response``: keyed by ``id(http_response)`` until ``.parse()``."""
