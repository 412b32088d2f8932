"""Poll spans and the object registry that ties a long-lived object's polls to its creating call.

A job polled for minutes must read as one story: the registry remembers, per object id, the span
context of the call that created it (a background ``responses.create``, a ``runs.create``, a vector
store file create) and the poll history (attempts, last status, when it changed). Bounded LRU, so
an app polling millions of objects cannot grow it without limit.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from time import monotonic_ns, time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import errors
from ._safety import count
from .observers import POLL_ACTIVE
from .routes import RequestInfo

_TIES = {"responses": ("background",), "assistants.runs": ("request", "stream"), "vector_stores.files": ("request",), "vector_stores.file_batches": ("request",)}


class _Obj:
    __slots__ = ("ctx", "first_seen", "attempts", "status", "status_since", "model", "thread_id")

    def __init__(self, now: int) -> None:
        self.ctx: Any = None
        self.first_seen = now
        self.attempts = 0
        self.status: str | None = None
        self.status_since = now
        self.model: str | None = None
        self.thread_id: str | None = None


class Registry:
    """Object id -> creating span context and poll history (LRU, ``capacity`` entries)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, _Obj] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, object_id: str, create: bool = True) -> _Obj | None:
        with self._lock:
            obj = self._items.get(object_id)
            if obj is not None:
                self._items.move_to_end(object_id)
            elif create:
                obj = self._items[object_id] = _Obj(monotonic_ns())
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            return obj

    def created(self, st: Any) -> None:
        """A call ended that created a pollable object: remember its span for later polls."""
        modes = _TIES.get(st.api)
        if not modes or st.info.mode not in modes:
            return
        oid = st.object_id if st.api != "responses" else (st.response_id or st.object_id)
        if not oid:
            return
        obj = self.get(oid)
        if obj is not None and obj.ctx is None:
            obj.ctx = st.ctx
            obj.model = st.info.model
            obj.thread_id = st.thread_id


def _status_of(info: RequestInfo, result: Any) -> tuple[str | None, int | None]:
    counts = getattr(result, "file_counts", None)
    in_progress = getattr(counts, "in_progress", None) if counts is not None else None
    status = getattr(result, "status", None)
    if info.api == "vector_stores" and isinstance(in_progress, int):
        return ("in_progress" if in_progress > 0 else str(status or "completed")), in_progress
    return (str(status) if status is not None else None), in_progress if isinstance(in_progress, int) else None


class PollCall:
    """One status read (GET) of a long-lived object; the span is created when the answer is parsed."""

    def __init__(self, cfg: Any, info: RequestInfo, helper: Any) -> None:
        self.cfg = cfg
        self.info = info
        self.helper = helper
        self.wall0 = time_ns()
        self.retries = 0
        self.http_status: int | None = None
        self.poll_after_ms: float | None = None
        self.retry_after_ms: float | None = None

    def request_done(self, result: Any) -> None:
        if type(result).__name__ == "LegacyAPIResponse":
            # the SDK's poll helpers read through ``with_raw_response``; parse() is cached, so the
            # helper's own parse() gets this same object
            result = result.parse()
        self._emit(result, None)

    def request_failed(self, exc: BaseException) -> None:
        self._emit(None, exc)

    def _emit(self, result: Any, exc: BaseException | None) -> None:
        info = self.info
        reg = self.cfg.registry
        now = monotonic_ns()
        obj = reg.get(info.object_id) if info.object_id else None
        attrs: dict[str, Any] = {
            "streamtriage.span": "poll",
            "streamtriage.api": info.api,
            "streamtriage.object.id": info.object_id or "",
        }
        status, in_progress = _status_of(info, result) if result is not None else (None, None)
        attrs["streamtriage.status"] = status or ("error" if exc is not None else "unknown")
        if in_progress is not None:
            attrs["streamtriage.file_counts.in_progress"] = in_progress
        parent = None
        helper = self.helper
        if obj is not None:
            obj.attempts += 1
            attrs["streamtriage.poll.attempt"] = obj.attempts
            attrs["streamtriage.poll.first_seen_ms"] = (now - obj.first_seen) / 1e6
            if status is not None and status != obj.status:
                obj.status = status
                obj.status_since = now
            attrs["streamtriage.poll.status_since_ms"] = (now - obj.status_since) / 1e6
            if helper is None:
                parent = obj.ctx
            model = info.model or obj.model
            if model:
                attrs["gen_ai.request.model"] = model
        else:
            attrs["streamtriage.poll.attempt"] = 1
        interval = None
        if helper is not None:
            helper.poll_count += 1
            if status is not None:
                helper.status = status  # the loop's call span reports the last status it saw
            if info.object_id and not helper.object_id:
                helper.object_id = info.object_id
            interval = helper.poll_interval_ms
            if interval is None:
                interval = self.poll_after_ms or helper.poll_after_ms or 1000.0
                if self.poll_after_ms and helper.poll_after_ms is None and status in POLL_ACTIVE:
                    helper.poll_after_ms = self.poll_after_ms  # the SDK keeps the first header value
        elif self.poll_after_ms is not None:
            interval = self.poll_after_ms
        if interval is not None:
            attrs["streamtriage.poll.interval_ms"] = float(interval)
        le = getattr(result, "last_error", None) or getattr(result, "error", None)
        code = getattr(le, "code", None) if le is not None else None
        if code:
            attrs["streamtriage.error.code"] = str(code)
        tid = info.thread_id or (obj.thread_id if obj is not None else None)
        if tid:
            attrs["streamtriage.thread.id"] = tid
        if exc is not None:
            attrs["error.type"] = errors.qualified(exc)
        if self.http_status is not None:
            attrs["http.response.status_code"] = self.http_status
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if isinstance(parent, trace.SpanContext) else parent
        span = self.cfg.tracer.start_span(f"poll {info.api}", context=ctx, kind=SpanKind.CLIENT, start_time=self.wall0, attributes=attrs)
        if exc is not None:
            span.set_status(Status(StatusCode.ERROR, errors.message(exc)))
        span.end()
        count("poll_spans")
