"""Hand-built stream records in the span contract's own vocabulary (attribute strings, as stored)."""
from __future__ import annotations

from typing import Any

from streamtriage.classifier.fixtures import stored
from streamtriage.classifier.record import ChildEvent, ChildPoll, RecordSource, build_record

NOW = 1_800_000_000_000_000_000  # a fixed "now" (ns) so idle times are exact


def call(attrs: dict[str, Any], events: list[ChildEvent] | None = None, polls: list[ChildPoll] | None = None,
         duration_ms: float = 1000.0, now_ns: int = NOW) -> dict[str, Any]:
    """A finished call: contract attribute names -> values (stringified as the store keeps them)."""
    base = {"streamtriage.span": "call", "streamtriage.contract": 1, "streamtriage.request.fingerprint": "ab" * 8}
    base.update(attrs)
    src = RecordSource(trace_id="t" * 32, span_id="s" * 16, service="svc", start_ns=now_ns - int(duration_ms * 1e6),
                       duration_ns=int(duration_ms * 1e6), call_attrs={k: stored(v) for k, v in base.items()},
                       events=events or [], polls=polls or [])
    return build_record(src, now_ns)


def open_call(events: list[ChildEvent] | None = None, polls: list[ChildPoll] | None = None,
              started_ms_ago: float = 1000.0, now_ns: int = NOW) -> dict[str, Any]:
    """A call whose call span has not arrived: only event / poll spans."""
    src = RecordSource(trace_id="t" * 32, span_id="s" * 16, service="svc",
                       start_ns=now_ns - int(started_ms_ago * 1e6), call_attrs=None,
                       events=events or [], polls=polls or [])
    return build_record(src, now_ns)


def chat_stream(**extra: Any) -> dict[str, Any]:
    """Attributes of a streamed chat call, healthy unless overridden."""
    a = {
        "streamtriage.api": "chat.completions", "streamtriage.call.mode": "stream",
        "gen_ai.request.model": "gpt-4o-mini", "streamtriage.outcome": "completed",
        "streamtriage.terminal.seen": True, "streamtriage.terminal.event": "[DONE]",
        "gen_ai.response.finish_reasons": ["stop"], "streamtriage.event.count": 12,
        "streamtriage.delta.count": 10, "streamtriage.delta.bytes": 60, "streamtriage.ttfe_ms": 120.0,
        "streamtriage.max_gap_ms": 60.0, "http.response.status_code": 200, "streamtriage.retry.count": 0,
        "gen_ai.usage.output_tokens": 12, "gen_ai.request.max_tokens": 256,
    }
    a.update(extra)
    return a


def cut(exc_module: str = "httpx2", **extra: Any) -> dict[str, Any]:
    """A chat stream cut by the peer after content (3.x wraps it in APIConnectionError)."""
    chain = (["openai.APIConnectionError"] if exc_module == "httpx2" else []) + [
        f"{exc_module}.RemoteProtocolError", f"{exc_module.replace('httpx', 'httpcore')}.RemoteProtocolError",
        "h11._util.RemoteProtocolError"]
    a = chat_stream(**{
        "streamtriage.outcome": "transport_error", "streamtriage.terminal.seen": False,
        "gen_ai.response.finish_reasons": [""], "streamtriage.exception.type": chain[0],
        "error.type": chain[0], "streamtriage.exception.chain": chain,
        "streamtriage.exception.message": "peer closed connection without sending complete message body "
                                          "(incomplete chunked read)" if exc_module == "httpx" else "Connection error.",
        "streamtriage.event.count": 3, "streamtriage.delta.count": 3,
    })
    a.pop("streamtriage.terminal.event")
    a.update(extra)
    return a
