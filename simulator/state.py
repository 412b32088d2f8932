"""In-memory state of the simulator: polled objects with their fault, attempt counts and the request log.

Polled objects keep the fault of the request that created them so that plain GETs (which carry no
fault header) follow the scripted status timeline: ``stuck`` never leaves its status, ``slow-done``
and ``healthy`` finish after a few polls.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .faults import FaultSpec


@dataclass
class LogEntry:
    """What the server saw for one request. Times are seconds since the server started."""

    seq: int
    method: str
    path: str
    fault: str
    run: str | None  # x-streamtriage-run header: groups the requests of one driver run
    retry_count: int | None  # x-stainless-retry-count
    poll_helper: bool
    started: float
    status: int | None = None
    events_sent: int = 0
    ended: float | None = None
    end: str | None = None  # complete | cut-fin | cut-rst | drop-fin | drop-rst | client-hangup | error
    hangup_at: float | None = None  # when the client closed while the response was still open
    query: str = ""  # the request target's query string

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunState:
    id: str
    thread_id: str
    assistant_id: str
    model: str
    fault: FaultSpec
    created: int
    status: str = "queued"
    polls: int = 0
    last_error: dict[str, Any] | None = None
    incomplete_reason: str | None = None
    required_action: dict[str, Any] | None = None
    expired: bool = False


@dataclass
class PolledObject:
    """A background response, vector store file or file batch: a status driven by GET count."""

    id: str
    kind: str
    fault: FaultSpec
    created: int
    status: str
    polls: int = 0
    payload: dict[str, Any] = field(default_factory=dict)


class SimState:
    """Everything the server remembers; guarded by one lock (the server's loop and test threads read it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.log: list[LogEntry] = []
        self.runs: dict[str, RunState] = {}
        self.threads: dict[str, list[dict[str, Any]]] = {}
        self.objects: dict[str, PolledObject] = {}
        self.vector_stores: dict[str, dict[str, Any]] = {}
        self._attempts: dict[str, int] = {}

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 4)

    def new_entry(self, method: str, path: str, fault: str, headers: dict[str, str], query: str = "") -> LogEntry:
        retry = headers.get("x-stainless-retry-count")
        with self.lock:
            entry = LogEntry(
                seq=len(self.log) + 1, method=method, path=path, fault=fault,
                run=headers.get("x-streamtriage-run"),
                retry_count=int(retry) if retry and retry.isdigit() else None,
                poll_helper=headers.get("x-stainless-poll-helper", "").lower() == "true",
                started=self.now(), query=query,
            )
            self.log.append(entry)
        return entry

    def attempt(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
        """0-based attempt number of this request: the SDK's retry-count header, else a per-fingerprint count."""
        retry = headers.get("x-stainless-retry-count")
        if retry and retry.isdigit():
            return int(retry)
        key = hashlib.sha256(b"%s %s %s %s" % (method.encode(), path.encode(),
                                               headers.get("x-streamtriage-run", "").encode(), body)).hexdigest()
        with self.lock:
            n = self._attempts.get(key, 0)
            self._attempts[key] = n + 1
        return n

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e.to_dict() for e in self.log]

    def reset(self) -> None:
        with self.lock:
            self.log.clear()
            self._attempts.clear()
