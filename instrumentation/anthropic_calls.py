"""What the hook records for an Anthropic Messages call: its identity, its stream events, its result.

The Messages stream runs ``message_start`` -> ``content_block_start`` -> ``content_block_delta``... ->
``content_block_stop`` -> ``message_delta`` (carrying ``stop_reason``) -> ``message_stop`` (the terminal
marker), with ``ping`` events in between. Facts in the span contract's vocabulary (docs/span-contract.md):
API kind ``messages``, provider ``anthropic``, ``stop_reason`` as the finish reason.

Two things differ from OpenAI streams and live here:

* **pings** are not content and do not reset the gap clock: each is an event span named ``ping`` whose
  ``gap_ms`` is the time since the last non-ping event, and ``streamtriage.ping.count`` on the call
  span counts them. A generation that died while the API keeps pinging therefore shows its real gap
  (the SDK drops pings before the app, and they keep the read timeout from ever firing);
* an in-band ``event: error`` reaches the app as ``APIStatusError`` with ``status_code=200``, which the
  generic mapping would call an HTTP error: the SSE watcher marks the call, and the outcome is
  ``error_event``.
"""
from __future__ import annotations

import importlib
import json
import sys
from time import monotonic_ns
from typing import Any

from .calls import CallState
from .routes import RequestInfo, with_body

API = "messages"
TERMINAL = "message_stop"
DELTA = "content_block_delta"


def sdk_attributes() -> dict[str, Any]:
    """Static call-span attributes of the installed anthropic SDK (0.x runs on httpx, 1.x and later on httpx2)."""
    import anthropic

    version = getattr(anthropic, "__version__", "unknown")
    major = version.split(".")[0]
    transport = "httpx2" if major.isdigit() and int(major) >= 1 else "httpx"
    try:
        mod = sys.modules.get(transport) or importlib.import_module(transport)
        transport_version = getattr(mod, "__version__", "unknown")
    except ImportError:
        transport_version = "unknown"
    return {
        "streamtriage.sdk.name": "anthropic-python",
        "streamtriage.sdk.version": version,
        "streamtriage.transport.name": transport,
        "streamtriage.transport.version": transport_version,
        "gen_ai.provider.name": "anthropic",
        "gen_ai.system": "anthropic",
        "streamtriage.contract": 1,
    }


def classify(options: Any) -> RequestInfo | None:
    """``POST /v1/messages`` (streamed or not); every other Anthropic endpoint is left alone."""
    if str(getattr(options, "method", "")).lower() != "post":
        return None
    url = str(getattr(options, "url", "")).split("?", 1)[0].rstrip("/")
    if not (url == "/v1/messages" or url.endswith("/v1/messages") or url == "messages"):
        return None
    body = getattr(options, "json_data", None)
    body = body if isinstance(body, dict) else None
    return with_body(RequestInfo(API, "stream" if body and body.get("stream") is True else "request"), body)


def request_info(kwargs: dict[str, Any]) -> RequestInfo:
    """A call's identity from the arguments of ``messages.create`` (for a call refused before any request)."""
    body = {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, bool, list, dict))}
    return with_body(RequestInfo(API, "stream" if kwargs.get("stream") is True else "request"), body)


class AnthropicCall(CallState):
    """A ``CallState`` that counts pings apart and knows that an in-band error arrives as an HTTP 200 error."""

    __slots__ = ("pings",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pings = 0

    def ping(self) -> None:
        """A ``ping``: its own event span; the gap clock keeps running from the last non-ping event."""
        now = monotonic_ns()
        with self.lock:
            self.pings += 1
            idx = self.events
            self.events = idx + 1
            if idx == 0:
                self.first_ns = now
            if self.ended:
                return
            if self.p_type is not None:
                self._flush()
            self._emit("ping", idx, 1, 0, now - (self.last_ns if idx else self.t0), 0, now, now, None)

    def in_band_error(self, data: str) -> None:
        """An ``event: error`` SSE: the SDK raises right after it; keep its error type."""
        self.sse_error = True
        etype = None
        try:
            err = json.loads(data).get("error")
            etype = err.get("type") if isinstance(err, dict) else None
        except (ValueError, AttributeError):
            pass
        if isinstance(etype, str):
            self.error_type = self.error_type or etype
            self.error_code = self.error_code or etype
        self.error_event = True
        self.event("error", {"streamtriage.error.code": etype} if isinstance(etype, str) else None)

    def set_exception(self, exc: BaseException, *, in_stream: bool) -> None:
        super().set_exception(exc, in_stream=in_stream)
        if self.error_event and self.outcome in ("http_error", "error") and getattr(exc, "status_code", None) == 200:
            self.outcome = "error_event"
        if self.error_code is None and self.error_type is not None:
            self.error_code = self.error_type  # Anthropic errors have a type and no code

    def _end_span(self) -> None:
        if self.pings:
            self.span.set_attribute("streamtriage.ping.count", self.pings)
        super()._end_span()


def _nbytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def observe_message(st: CallState, ev: Any) -> None:
    """One parsed stream event (the SDK has already dropped pings and raised on errors)."""
    t = ev.type
    if t == DELTA:  # hot path: almost every event of a healthy stream
        d = ev.delta
        dt = d.type
        text = d.text if dt == "text_delta" else d.partial_json if dt == "input_json_delta" else getattr(d, "thinking", None)
        if text:
            if st.content is not None and dt == "text_delta":
                st.content.append(text)
            st.delta(DELTA, len(text) if text.isascii() else _nbytes(text))
        else:
            st.delta(DELTA, 0)
        return
    attrs: dict[str, Any] | None = None
    if t == "message_start":
        msg = ev.message
        st.response_id = getattr(msg, "id", None) or st.response_id
        st.response_model = getattr(msg, "model", None) or st.response_model
        st.nchoices = 1  # one "choice": its stop_reason is "" until message_delta brings it
        _usage(st, getattr(msg, "usage", None))
    elif t == "message_delta":
        reason = getattr(ev.delta, "stop_reason", None)
        if reason is not None:
            st.finish_reasons[0] = str(reason)
            attrs = {"streamtriage.finish_reason": str(reason)}
        _usage(st, getattr(ev, "usage", None))
    elif t == TERMINAL:
        st.terminal_event = TERMINAL
        attrs = {"streamtriage.terminal": True}
    st.event(t, attrs)


def _usage(st: CallState, usage: Any) -> None:
    if usage is None:
        return
    for src, dst in (("input_tokens", "gen_ai.usage.input_tokens"), ("output_tokens", "gen_ai.usage.output_tokens")):
        v = getattr(usage, src, None)
        if isinstance(v, int):
            st.usage[dst] = v


def observe_message_result(st: CallState, msg: Any) -> None:
    """A non-streamed ``Message``: the body is the terminal marker, ``stop_reason`` the finish reason."""
    st.response_id = getattr(msg, "id", None)
    model = getattr(msg, "model", None)
    st.response_model = model if isinstance(model, str) else None
    reason = getattr(msg, "stop_reason", None)
    st.finish_reasons[0] = str(reason) if reason is not None else ""
    st.nchoices = 1
    _usage(st, getattr(msg, "usage", None))
    if st.content is not None:
        st.content.extend(b.text for b in getattr(msg, "content", None) or () if getattr(b, "type", None) == "text")
    st.terminal_event = str(getattr(msg, "type", None) or "message")
