"""One SDK call's state: the call span, the coalesced event spans and the outcome.

The per-event methods (``delta``/``event``) are the hot path: no span per delta, no attribute dicts
per delta, one monotonic clock read and a handful of integer updates. Event spans are created only
when a group is flushed, with explicit start/end times, so coalescing costs nothing extra.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from time import monotonic_ns, time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import errors
from ._safety import count, hook_failed
from .routes import RequestInfo

CONTRACT_VERSION = 1
FAILED_TERMINAL_STATUSES = frozenset({"failed", "expired", "incomplete", "cancelled"})


@dataclass
class Config:
    """Instrumentor options shared by every call."""

    tracer: Any
    coalesce_deltas: bool = True
    flush_after_ms: float = 1000.0
    flush_after_events: int = 256
    capture_content: bool = False
    static_attributes: dict | None = None
    flusher: Any = None
    registry: Any = None


class CallState:
    """Everything the hook tracks for one call; ended exactly once (``finish``)."""

    __slots__ = (
        "api",
        "app_exc",
        "attached",
        "cancel_reason",
        "cfg",
        "coalesce",
        "content",
        "ctx",
        "delta_bytes",
        "deltas",
        "done_seen",
        "ended",
        "error_code",
        "error_event",
        "error_type",
        "events",
        "exc",
        "exiting",
        "finalizer",
        "finish_reasons",
        "first_attrs",
        "first_ns",
        "flush_events",
        "flush_ns",
        "headers_ns",
        "helper",
        "helper_error",
        "helper_owned",
        "http_status",
        "incomplete_reason",
        "info",
        "last_ns",
        "last_type",
        "lock",
        "max_gap",
        "object_id",
        "outcome",
        "p_bytes0",
        "p_deadline",
        "p_deltas0",
        "p_first",
        "p_gap",
        "p_index",
        "p_limit",
        "p_max_gap",
        "p_type",
        "poll_after_ms",
        "poll_count",
        "poll_interval_ms",
        "response_id",
        "response_model",
        "retries",
        "retry_after_ms",
        "span",
        "sse_error",
        "status",
        "stream_ended",
        "t0",
        "terminal_event",
        "thread_id",
        "usage",
        "wall0",
        "nchoices",
        "fast",
    )

    def __init__(self, cfg: Config, info: RequestInfo, attributes: dict, parent_ctx: Any = None, helper: str | None = None):
        self.cfg = cfg
        self.info = info
        self.api = info.api
        self.helper = helper
        self.helper_owned = helper is not None and info.mode == "stream"
        self.lock = threading.Lock()
        self.t0 = monotonic_ns()
        self.wall0 = time_ns()
        self.span = cfg.tracer.start_span(
            info.span_name(), context=parent_ctx, kind=SpanKind.CLIENT, start_time=self.wall0, attributes=attributes
        )
        self.ctx = trace.set_span_in_context(self.span)
        self.first_attrs = {
            k: attributes[k]
            for k in ("streamtriage.api", "gen_ai.request.model", "streamtriage.request.fingerprint")
            if k in attributes
        }
        self.coalesce = cfg.coalesce_deltas
        self.flush_ns = int(cfg.flush_after_ms * 1e6)
        self.flush_events = cfg.flush_after_events
        # stream facts
        self.events = 0
        self.deltas = 0
        self.delta_bytes = 0
        self.last_ns = self.t0
        self.first_ns = 0
        self.max_gap = 0
        self.last_type: str | None = None
        self.terminal_event: str | None = None
        self.done_seen = False
        self.error_event = False
        self.sse_error = False
        self.attached = False
        self.status: str | None = None
        self.incomplete_reason: str | None = None
        self.error_code: str | None = None
        self.error_type: str | None = None
        self.finish_reasons: dict[int, str | None] = {}
        self.nchoices = 0
        self.fast = False  # chat fast path allowed (set after the first chunk; cleared by an SSE error)
        self.usage: dict[str, int] = {}
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.object_id: str | None = info.object_id
        self.thread_id: str | None = info.thread_id
        self.content: list[str] | None = [] if cfg.capture_content else None
        # pending coalesced group (counts are derived from the call totals at flush time)
        self.p_type: str | None = None
        self.p_first = 0
        self.p_gap = 0
        self.p_max_gap = 0
        self.p_index = 0
        self.p_deltas0 = 0
        self.p_bytes0 = 0
        self.p_limit = 0
        self.p_deadline = 0
        # call facts
        self.retries = 0
        self.retry_after_ms: float | None = None
        self.http_status: int | None = None
        self.poll_count = 0
        self.poll_interval_ms: float | None = None
        self.poll_after_ms: float | None = None
        self.exc: BaseException | None = None
        self.outcome: str | None = None
        self.cancel_reason: str | None = None
        self.app_exc: BaseException | None = None
        self.stream_ended = False
        self.exiting = False
        self.helper_error: BaseException | None = None
        self.headers_ns = 0
        self.ended = False
        self.finalizer: weakref.finalize | None = None
        count("calls_started")

    # ---- time -------------------------------------------------------------------------------
    def wall(self, mono: int) -> int:
        return self.wall0 + (mono - self.t0)

    # ---- hot path ---------------------------------------------------------------------------
    def delta(self, etype: str, nbytes: int) -> None:
        """A content delta: counted, and appended to the open group of its type when there is one.

        The append path is lock-free on purpose (it runs per chunk); group start/flush take the
        lock, as does the timed flusher, which re-checks under it. A delta racing a timed flush can
        be counted in the next group's span instead of this one; call totals are unaffected.
        """
        now = monotonic_ns()
        gap = now - self.last_ns
        self.last_ns = now
        self.events += 1
        d = self.deltas + 1
        self.deltas = d
        self.delta_bytes += nbytes
        if self.p_type == etype:
            if gap > self.p_max_gap:
                self.p_max_gap = gap
            if d >= self.p_limit or now >= self.p_deadline:
                self.flush_locked()
            return
        self._delta_slow(etype, nbytes, now, gap)

    def flush_locked(self) -> None:
        with self.lock:
            self._flush()

    def _delta_slow(self, etype: str, nbytes: int, now: int, gap: int) -> None:
        with self.lock:
            idx = self.events - 1
            self.last_type = etype
            if idx == 0:
                self.first_ns = now
                if gap > self.max_gap:
                    self.max_gap = gap
                if not self.ended:
                    self._emit(etype, idx, 1, nbytes, now - self.t0, 0, now, now, None)
                return
            if gap > self.max_gap:
                self.max_gap = gap
            if self.ended:
                return
            if self.p_type is not None:
                self._flush()
            if not self.coalesce:
                self._emit(etype, idx, 1, nbytes, gap, 0, now, now, None)
                return
            self.p_type = etype
            self.p_first = now
            self.p_gap = gap
            self.p_max_gap = 0
            self.p_index = idx
            self.p_deltas0 = self.deltas - 1
            self.p_bytes0 = self.delta_bytes - nbytes
            self.p_limit = self.p_deltas0 + self.flush_events
            self.p_deadline = now + self.flush_ns

    def event(self, etype: str, attrs: dict | None = None, nbytes: int = 0) -> None:
        """A non-delta event (or the first event): always its own span, ended at once."""
        now = monotonic_ns()
        with self.lock:
            gap = now - self.last_ns
            self.last_ns = now
            idx = self.events
            self.events = idx + 1
            span_gap = gap
            if idx == 0:
                self.first_ns = now
                span_gap = now - self.t0
            if gap > self.max_gap:
                self.max_gap = gap
            self.last_type = etype
            if nbytes:
                self.delta_bytes += nbytes
            if self.ended:
                return
            if self.p_type is not None:
                self._flush()
            self._emit(etype, idx, 1, nbytes, span_gap, 0, now, now, attrs)

    # ---- span emission (called with the lock held) -------------------------------------------
    def _flush(self) -> None:
        etype = self.p_type
        if etype is None:
            return
        self.p_type = None
        count = self.deltas - self.p_deltas0
        nbytes = self.delta_bytes - self.p_bytes0
        last = self.p_first if count <= 1 else self.last_ns
        if self.p_max_gap > self.max_gap:
            self.max_gap = self.p_max_gap
        self._emit(etype, self.p_index, count, nbytes, self.p_gap, self.p_max_gap, self.p_first, last, None)

    def _emit(self, etype: str, idx: int, n: int, nbytes: int, gap: int, max_gap: int, first: int, last: int, extra: dict | None) -> None:
        try:
            attrs: dict[str, Any] = {
                "streamtriage.span": "event",
                "streamtriage.event.type": etype,
                "streamtriage.event.index": idx,
                "streamtriage.event.count": n,
                "streamtriage.event.gap_ms": gap / 1e6,
            }
            if nbytes:
                attrs["streamtriage.event.bytes"] = nbytes
            if n > 1:
                attrs["streamtriage.event.max_gap_ms"] = max_gap / 1e6
            if idx == 0:
                attrs.update(self.first_attrs)
            if extra:
                attrs.update(extra)
            span = self.cfg.tracer.start_span(
                etype, context=self.ctx, kind=SpanKind.INTERNAL, start_time=self.wall(first), attributes=attrs
            )
            span.end(end_time=self.wall(last))
            count("event_spans")
        except Exception as exc:
            hook_failed("emit_event_span", exc)

    def flush_if_old(self, now: int) -> None:
        """Timed flush (background thread): a stalled stream's pending deltas become visible."""
        if self.p_type is None:
            return
        with self.lock:
            if self.p_type is not None and not self.ended and now >= self.p_deadline:
                self._flush()

    # ---- outcome ----------------------------------------------------------------------------
    def stream_finished(self) -> None:
        """The SDK's stream ended without an exception."""
        self.stream_ended = True
        if self.error_event:
            outcome = "error_event"
        elif self.done_seen or self.terminal_event is not None:
            outcome = "completed"
        else:
            outcome = "no_terminal"
        self.outcome = self.outcome or outcome
        if not self.helper_owned:
            self.finish()

    def stream_failed(self, exc: BaseException) -> None:
        """The SDK's stream raised ``exc`` into the app."""
        self.stream_ended = True
        if self.outcome is None:
            self.set_exception(exc, in_stream=True)
        if not self.helper_owned:
            self.finish()

    def set_exception(self, exc: BaseException, *, in_stream: bool) -> None:
        outcome = errors.outcome_of(exc, in_stream=in_stream)
        if outcome == "cancelled":
            self.outcome = outcome
            self.cancel_reason = self.cancel_reason or errors.cancel_reason(exc)
            if self.cancel_reason == "interrupted":
                self.app_exc = exc
            return
        self.exc = exc
        if outcome == "http_error" and self.events:
            outcome = "error"
        self.outcome = outcome
        if outcome in ("http_error", "error_event", "error"):
            code, etype = errors.api_error_fields(exc)
            self.error_code = self.error_code or code
            self.error_type = self.error_type or etype
        status_code = getattr(exc, "status_code", None)
        if isinstance(status_code, int):
            self.http_status = status_code

    def cancelled(self, reason: str, app_exc: BaseException | None = None) -> None:
        """The consumer stopped before the end; only ends the span when the stream already ended."""
        if self.ended:
            return
        if not self.stream_ended:
            self.stream_ended = True
            self.outcome = "app_error" if app_exc is not None and reason != "interrupted" else "cancelled"
            if app_exc is not None:
                self.app_exc = app_exc
            self.cancel_reason = reason
        self.finish()

    def finish(self) -> None:
        """End the call span exactly once with every fact known so far."""
        with self.lock:
            if self.ended:
                return
            self.ended = True
            if self.p_type is not None:
                self._flush()
        try:
            self._end_span()
        except Exception as exc:
            hook_failed("finish_call", exc)
            try:
                self.span.end()
            except Exception:
                pass
        finally:
            count("calls_ended")
            if self.cfg.flusher is not None:
                self.cfg.flusher.untrack(self)
            fin = self.finalizer
            if fin is not None:
                fin.detach()

    def _end_span(self) -> None:
        now = monotonic_ns()
        outcome = self.outcome or "completed"
        a: dict[str, Any] = {"streamtriage.outcome": outcome}
        terminal_seen = self.done_seen or self.terminal_event is not None
        a["streamtriage.terminal.seen"] = terminal_seen
        if self.done_seen:
            a["streamtriage.terminal.event"] = "[DONE]"
        elif self.terminal_event is not None:
            a["streamtriage.terminal.event"] = self.terminal_event
        if self.status is not None:
            a["streamtriage.status"] = self.status
        if self.incomplete_reason is not None:
            a["streamtriage.incomplete_reason"] = self.incomplete_reason
        if self.response_model:
            a["gen_ai.response.model"] = self.response_model
        if self.response_id:
            a["gen_ai.response.id"] = self.response_id
        if self.finish_reasons or self.nchoices:
            n = max(max(self.finish_reasons, default=-1) + 1, self.nchoices)
            a["gen_ai.response.finish_reasons"] = [self.finish_reasons.get(i) or "" for i in range(n)]
        for k, v in self.usage.items():
            a[k] = v
        if self.info.mode == "stream" or self.events:
            a["streamtriage.event.count"] = self.events
            a["streamtriage.delta.count"] = self.deltas
            a["streamtriage.delta.bytes"] = self.delta_bytes
            if self.events:
                a["streamtriage.ttfe_ms"] = (self.first_ns - self.t0) / 1e6
                a["streamtriage.max_gap_ms"] = self.max_gap / 1e6
                a["streamtriage.last_event.age_ms"] = (now - self.last_ns) / 1e6
            if self.last_type is not None:
                a["streamtriage.last_event.type"] = self.last_type
        exc = self.exc
        if exc is not None:
            q = errors.qualified(exc)
            a["error.type"] = q
            a["streamtriage.exception.type"] = q
            a["streamtriage.exception.message"] = errors.message(exc)
            a["streamtriage.exception.chain"] = errors.chain(exc)
        elif self.error_code is not None and outcome == "error_event":
            a["error.type"] = self.error_code
        if self.error_code is not None:
            a["streamtriage.error.code"] = self.error_code
        if self.error_type is not None:
            a["streamtriage.error.type"] = self.error_type
        if self.http_status is not None:
            a["http.response.status_code"] = self.http_status
        a["streamtriage.retry.count"] = self.retries
        if self.retry_after_ms is not None:
            a["streamtriage.retry.after_ms"] = self.retry_after_ms
        if self.cancel_reason is not None and outcome in ("cancelled", "app_error"):
            a["streamtriage.cancel.reason"] = self.cancel_reason
        if self.app_exc is not None:
            a["streamtriage.app_exception.type"] = errors.qualified(self.app_exc)
            a["streamtriage.app_exception.message"] = errors.message(self.app_exc)
        if self.object_id:
            a["streamtriage.object.id"] = self.object_id
        if self.thread_id:
            a["streamtriage.thread.id"] = self.thread_id
        if self.poll_count:
            a["streamtriage.poll.count"] = self.poll_count
        if self.content is not None and self.content:
            import json

            a["gen_ai.output.messages"] = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "".join(self.content)}]}])
        span = self.span
        span.set_attributes(a)
        failed_terminal = self.status in FAILED_TERMINAL_STATUSES or self.terminal_event in ("response.failed", "response.incomplete")
        if outcome not in ("completed", "cancelled") or failed_terminal:
            span.set_status(Status(StatusCode.ERROR, errors.message(exc) if exc is not None else outcome))
        if self.cfg.registry is not None and self.info.mode in ("background", "request", "stream"):
            self.cfg.registry.created(self)
        span.end(end_time=self.wall(now))
