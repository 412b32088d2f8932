"""Timed flush of coalesced delta spans for streams that stall.

A coalesced group is normally ended by the next event; when no event comes (a stall, a hang) this
background thread ends groups older than ``flush_after_ms`` so the collector sees the last deltas
about one second late at most, while the stream is still open.
"""
from __future__ import annotations

import threading
from time import monotonic_ns
from typing import Any

from ._safety import hook_failed


class Flusher:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = max(0.02, interval_s)
        self._active: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, st: Any) -> None:
        with self._lock:
            self._active[id(st)] = st
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="streamtriage-flusher", daemon=True)
                self._thread.start()

    def untrack(self, st: Any) -> None:
        with self._lock:
            self._active.pop(id(st), None)

    def active(self) -> int:
        with self._lock:
            return len(self._active)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                states = list(self._active.values())
            now = monotonic_ns()
            for st in states:
                try:
                    st.flush_if_old(now)
                except Exception as exc:
                    hook_failed("timed_flush", exc)

    def stop(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2)
        self._thread = None
