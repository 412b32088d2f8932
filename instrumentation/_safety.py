"""Self-protection for the hook: every piece of hook logic runs guarded, failures are counted.

The hook must never hurt the app, so an exception inside streamtriage code is swallowed here and
counted instead of raised; ``stats()`` exposes the counters so a broken hook is still visible.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("streamtriage.instrumentation")

_COUNTERS: dict[str, int] = {
    "hook_errors": 0,
    "calls_started": 0,
    "calls_ended": 0,
    "event_spans": 0,
    "poll_spans": 0,
    "streams_abandoned": 0,
}
_LAST_ERROR: list[str] = []
_LOCK = threading.Lock()


def count(name: str, n: int = 1) -> None:
    """Bump a counter; cheap enough for per-call (not per-chunk) use."""
    with _LOCK:
        _COUNTERS[name] = _COUNTERS.get(name, 0) + n


def hook_failed(where: str, exc: BaseException) -> None:
    """Record a failure inside the hook; never raises."""
    try:
        count("hook_errors")
        msg = f"{where}: {type(exc).__name__}: {exc}"
        _LAST_ERROR[:] = [msg[:500]]
        log.debug("streamtriage hook failure in %s", where, exc_info=exc)
    except Exception:  # pragma: no cover - logging itself failed
        pass


def guarded(where: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; a failure is counted and ``None`` returned instead of raising into the app."""
    try:
        return fn(*args)
    except Exception as exc:
        hook_failed(where, exc)
        return None


def stats() -> dict[str, Any]:
    """Snapshot of the hook's own health counters (and the last internal error, if any)."""
    with _LOCK:
        out: dict[str, Any] = dict(_COUNTERS)
    out["calls_open"] = out["calls_started"] - out["calls_ended"]  # streams still being read (or leaked)
    out["last_error"] = _LAST_ERROR[0] if _LAST_ERROR else None
    return out


def reset_stats() -> None:
    """Zero the counters (tests)."""
    with _LOCK:
        for k in _COUNTERS:
            _COUNTERS[k] = 0
        _LAST_ERROR.clear()
