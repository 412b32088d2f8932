"""The downstream leg: an ASGI middleware that records one relay span per WebSocket connection and
per HTTP response the app streams to a browser, and ties it to the LLM calls made while serving it.

Why a middleware of our own: OpenTelemetry's ASGI middleware records one span per *send* with a
status of 200 and no WebSocket close code, so "the browser saw the socket die" and "the person got
half an answer" are invisible there. Here one span per connection carries who ended it (the app's
close and its code, the client's disconnect and its code, or a crash, which the server answers by
dropping the TCP connection: close code 1006), what was sent (counted, never a span per message),
the escaped exception chain, and what the LLM calls under it did.

The LLM call spans made while serving the connection are **children** of the relay span (the
middleware makes it the current span around the app), so both legs are one trace. A span processor
notes each child call's outcome as it ends, so the relay span itself carries its upstream facts and
the classifier can judge the relay without joining spans (docs/span-contract.md, "Relay span").

The middleware never changes a message and never raises into the app: bookkeeping failures are
counted and swallowed (instrumentation/_safety.py).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from time import time_ns
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import errors
from ._safety import hook_failed

SCOPE = "streamtriage.instrumentation.relay"
FAILED_UPSTREAM = frozenset({"transport_error", "timeout", "error_event", "http_error", "error", "no_terminal",
                             "app_error"})
ABNORMAL_CLOSE = 1006  # what a browser reports when the server drops the connection without a close frame
_ERROR_MARKERS = (b'"error"', b"event: error")


@dataclass
class RelayState:
    """What one relayed connection did; written by the ASGI wrappers and the span processor."""

    kind: str
    route: str
    start_ns: int = field(default_factory=time_ns)
    accepted: bool = False
    status: int | None = None
    content_type: str = ""
    messages: int = 0
    bytes: int = 0
    last_send_ns: int = 0
    error_sends: list[int] = field(default_factory=list)  # when a message that carries an error was sent
    app_close_code: int | None = None
    client_code: int | None = None
    client_gone_ns: int = 0
    completed: bool = False
    exc: BaseException | None = None
    streamed: bool = False
    upstream: list[dict[str, Any]] = field(default_factory=list)
    upstream_open: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ms(self, t_ns: int) -> float:
        return round((t_ns - self.start_ns) / 1e6, 3)


class _UpstreamCollector(SpanProcessor):
    """Notes each LLM call span that starts and ends under an active relay span."""

    def __init__(self) -> None:
        self.active: dict[int, RelayState] = {}  # relay span id -> state

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        parent = span.parent
        if parent is None or not self.active:
            return
        st = self.active.get(parent.span_id)
        if st is not None and (span.attributes or {}).get("streamtriage.span") == "call":
            with st.lock:
                st.upstream_open += 1

    def on_end(self, span: ReadableSpan) -> None:
        parent = span.parent
        if parent is None or not self.active:
            return
        st = self.active.get(parent.span_id)
        attrs = span.attributes or {}
        if st is None or attrs.get("streamtriage.span") != "call":
            return
        reasons = attrs.get("gen_ai.response.finish_reasons")
        first_reason = str(reasons[0]) if isinstance(reasons, (list, tuple)) and reasons else ""
        with st.lock:
            st.upstream_open -= 1
            st.upstream.append({
                "outcome": attrs.get("streamtriage.outcome", ""),
                "api": attrs.get("streamtriage.api", ""),
                "terminal_seen": bool(attrs.get("streamtriage.terminal.seen")),
                "finish_reason": first_reason,
                "exception_type": attrs.get("streamtriage.exception.type") or attrs.get("error.type") or "",
                "end_ns": span.end_time or time_ns(),
            })

    def shutdown(self) -> None:
        self.active.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def upstream_failed(call: dict[str, Any]) -> bool:
    """The answer the relay forwarded is not whole: the call failed, never ended, or was truncated."""
    return call["outcome"] in FAILED_UPSTREAM or call["finish_reason"] in ("length", "content_filter")


def relay_attributes(st: RelayState, end_ns: int) -> dict[str, Any]:
    """The relay span's attributes (docs/span-contract.md, "Relay span"); the one place they are named."""
    if st.client_gone_ns and not st.completed and st.app_close_code is None:
        end = "client_disconnect"
    elif st.exc is not None:
        end = "server_crash"
    elif st.kind == "websocket":
        end = "app_close" if st.app_close_code is not None else "app_return"
    else:
        end = "completed" if st.completed else "server_crash"
    outcome = {"server_crash": "app_error", "client_disconnect": "cancelled"}.get(end, "completed")
    attrs: dict[str, Any] = {
        "streamtriage.span": "call",
        "streamtriage.contract": 1,
        "streamtriage.api": "relay",
        "streamtriage.call.mode": "relay",
        "streamtriage.outcome": outcome,
        "streamtriage.terminal.seen": end in ("app_close", "completed"),
        "streamtriage.relay.kind": st.kind,
        "streamtriage.relay.route": st.route,
        "streamtriage.relay.end": end,
        "streamtriage.relay.messages": st.messages,
        "streamtriage.relay.bytes": st.bytes,
        "streamtriage.relay.upstream.calls": len(st.upstream) + max(st.upstream_open, 0),
        "streamtriage.relay.upstream.open": max(st.upstream_open, 0),
    }
    if st.last_send_ns:
        attrs["streamtriage.relay.last_send_ms"] = st.ms(st.last_send_ns)
    if st.kind == "websocket":
        if end in ("server_crash", "app_return"):
            code = ABNORMAL_CLOSE if st.accepted else None
        elif end == "client_disconnect":
            code = st.client_code
        else:
            code = st.app_close_code
        if code is not None:
            attrs["streamtriage.relay.close_code"] = int(code)
    elif st.status is not None:
        attrs["http.response.status_code"] = st.status
    if st.client_gone_ns:
        attrs["streamtriage.relay.client_gone_ms"] = st.ms(st.client_gone_ns)
    if end == "client_disconnect":
        attrs["streamtriage.cancel.reason"] = "client_disconnect"
    if st.exc is not None:
        chain = errors.chain(st.exc)
        attrs["streamtriage.exception.type"] = chain[0]
        attrs["streamtriage.exception.chain"] = chain
        attrs["streamtriage.exception.message"] = errors.message(st.exc)
        attrs["error.type"] = chain[0]
    failed = [c for c in st.upstream if upstream_failed(c)]
    last = failed[-1] if failed else (st.upstream[-1] if st.upstream else None)
    if last is not None:
        attrs["streamtriage.relay.upstream.outcome"] = last["outcome"]
        attrs["streamtriage.relay.upstream.api"] = last["api"]
        attrs["streamtriage.relay.upstream.terminal_seen"] = last["terminal_seen"]
        attrs["streamtriage.relay.upstream.end_ms"] = st.ms(last["end_ns"])
        if last["finish_reason"]:
            attrs["streamtriage.relay.upstream.finish_reason"] = last["finish_reason"]
        if last["exception_type"]:
            attrs["streamtriage.relay.upstream.exception.type"] = last["exception_type"]
    if failed:
        t_fail = failed[-1]["end_ns"]
        told = any(t >= t_fail for t in st.error_sends) or (
            st.app_close_code is not None and st.app_close_code not in (1000, 1001))
        attrs["streamtriage.relay.told_client"] = told
    attrs["streamtriage.relay.error_sent"] = bool(st.error_sends)
    return attrs


class RelayMiddleware:
    """Pure ASGI middleware (Starlette/FastAPI: ``app.add_middleware(RelayMiddleware)``)."""

    def __init__(self, app: Any, tracer_provider: Any = None) -> None:
        self.app = app
        provider = tracer_provider or trace.get_tracer_provider()
        from streamtriage import __version__

        self.tracer = provider.get_tracer(SCOPE, __version__)
        self.collector = _collector_for(provider)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            st = RelayState("websocket" if kind == "websocket" else "http", str(scope.get("path", "")))
            span = self.tracer.start_span(f"relay {st.kind} {st.route}", kind=SpanKind.SERVER, start_time=st.start_ns,
                                          attributes={"streamtriage.span": "call", "streamtriage.api": "relay"})
            if self.collector is not None:
                self.collector.active[span.get_span_context().span_id] = st
            token = context.attach(trace.set_span_in_context(span))
        except Exception as exc:  # noqa: BLE001 - the app runs unobserved rather than not at all
            hook_failed("relay_start", exc)
            await self.app(scope, receive, send)
            return

        async def wrapped_receive() -> Any:
            message = await receive()
            try:
                mtype = message.get("type")
                if mtype == "websocket.disconnect" or (mtype == "http.disconnect" and not st.completed):
                    if not st.client_gone_ns:
                        st.client_gone_ns = time_ns()
                        st.client_code = message.get("code", 1005)
            except Exception as exc:  # noqa: BLE001
                hook_failed("relay_receive", exc)
            return message

        async def wrapped_send(message: Any) -> None:
            try:
                await send(message)
            except OSError:  # the server's way of saying the client is gone (uvicorn: ClientDisconnected)
                if not st.client_gone_ns:
                    st.client_gone_ns = time_ns()
                raise
            try:  # only what reached the server counts as sent (a close after the client left is not one)
                _note_send(st, message)
            except Exception as exc:  # noqa: BLE001
                hook_failed("relay_send", exc)

        try:
            await self.app(scope, wrapped_receive, wrapped_send)
        except BaseException as exc:
            st.exc = exc
            raise
        finally:
            self._finish(st, span, token)

    def _finish(self, st: RelayState, span: Any, token: Any) -> None:
        try:
            context.detach(token)
        except Exception as exc:  # noqa: BLE001
            hook_failed("relay_detach", exc)
        try:
            end_ns = time_ns()
            if self.collector is not None:
                self.collector.active.pop(span.get_span_context().span_id, None)
            if st.kind == "http" and (st.streamed or "text/event-stream" in st.content_type):
                st.kind = "sse" if "text/event-stream" in st.content_type else "http_stream"
            attrs = relay_attributes(st, end_ns)
            span.set_attributes(attrs)
            if attrs["streamtriage.outcome"] == "app_error":
                span.set_status(Status(StatusCode.ERROR, attrs.get("streamtriage.exception.message", "")))
            span.end(end_time=end_ns)
        except Exception as exc:  # noqa: BLE001
            hook_failed("relay_finish", exc)


def _note_send(st: RelayState, message: dict[str, Any]) -> None:
    mtype = message.get("type")
    if mtype == "websocket.send":  # the per-message path: a text frame is searched as it is, never encoded
        text = message.get("text")
        if text is not None:
            _sent(st, len(text), '"error"' in text)
        else:
            data = message.get("bytes") or b""
            _sent(st, len(data), _carries_error(data))
    elif mtype == "http.response.body":
        data = message.get("body") or b""
        if data:
            _sent(st, len(data), _carries_error(data))
        if message.get("more_body"):
            st.streamed = True
        else:
            st.completed = True
    elif mtype == "websocket.accept":
        st.accepted = True
    elif mtype == "websocket.close":
        st.app_close_code = int(message.get("code", 1000))
    elif mtype == "http.response.start":
        st.status = int(message.get("status", 200))
        for name, value in message.get("headers") or ():
            if name.lower() == b"content-type":
                st.content_type = value.decode("latin-1")


def _carries_error(data: bytes) -> bool:
    return any(m in data for m in _ERROR_MARKERS)


def _sent(st: RelayState, size: int, error: bool) -> None:
    now = time_ns()
    st.messages += 1
    st.bytes += size
    st.last_send_ns = now
    if error:
        st.error_sends.append(now)


_COLLECTORS: dict[int, _UpstreamCollector] = {}


def _collector_for(provider: Any) -> _UpstreamCollector | None:
    """One upstream collector per SDK tracer provider (a no-op provider has nothing to attach to)."""
    if not hasattr(provider, "add_span_processor"):
        return None
    got = _COLLECTORS.get(id(provider))
    if got is None:
        got = _COLLECTORS[id(provider)] = _UpstreamCollector()
        provider.add_span_processor(got)
    return got


def instrument_asgi(app: Any, tracer_provider: Any = None) -> Any:
    """Wrap an ASGI app (FastAPI, Starlette, or any) so every relayed stream gets a relay span.

    Returns the wrapped app; for FastAPI/Starlette, ``app.add_middleware(RelayMiddleware)`` is the same.
    """
    return RelayMiddleware(app, tracer_provider)
