"""The relay middleware in-process (Starlette's TestClient drives the real ASGI app): it changes
nothing the browser receives, records one span per connection however many messages it carries,
never raises into the app, and derives `told_client` from what the app sent after an upstream failure."""
from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from streamtriage.instrumentation import _safety, relay
from streamtriage.instrumentation.relay import RelayState, instrument_asgi, relay_attributes


def _app() -> Starlette:
    async def ws_echo(ws: Any) -> None:
        await ws.accept()
        n = int(await ws.receive_text())
        for i in range(n):
            await ws.send_text(json.dumps({"delta": f"tok{i}"}))
        await ws.close(1000)

    async def sse(request: Any) -> StreamingResponse:
        async def body() -> Any:
            for i in range(5):
                yield f"data: {i}\n\n".encode()
        return StreamingResponse(body(), media_type="text/event-stream")

    return Starlette(routes=[WebSocketRoute("/ws", ws_echo), Route("/sse", sse)])


def _talk(app: Any, n: int = 100) -> tuple[list[str], str]:
    with TestClient(app) as client:
        with client.websocket_connect("/ws") as ws:
            ws.send_text(str(n))
            got = [ws.receive_text() for _ in range(n)]
        body = client.get("/sse").text
    return got, body


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_the_browser_receives_exactly_the_same(spans) -> None:
    provider, _ = spans
    assert _talk(_app()) == _talk(instrument_asgi(_app(), provider))


def test_one_span_per_connection_with_aggregated_sends(spans) -> None:
    provider, exporter = spans
    _talk(instrument_asgi(_app(), provider), n=300)
    relays = [s for s in exporter.get_finished_spans() if (s.attributes or {}).get("streamtriage.api") == "relay"]
    ws = next(s for s in relays if s.attributes["streamtriage.relay.kind"] == "websocket")
    sse = next(s for s in relays if s.attributes["streamtriage.relay.kind"] == "sse")
    assert len(relays) == 2 and len(exporter.get_finished_spans()) == 2, "no span per message"
    assert ws.attributes["streamtriage.relay.messages"] == 300
    assert ws.attributes["streamtriage.relay.end"] == "app_close" and ws.attributes["streamtriage.relay.close_code"] == 1000
    assert sse.attributes["streamtriage.relay.end"] == "completed" and sse.attributes["streamtriage.outcome"] == "completed"


def test_bookkeeping_failures_never_reach_the_app(spans, monkeypatch) -> None:
    provider, _ = spans
    _safety.reset_stats()

    def broken(*a: Any, **kw: Any) -> None:
        raise ValueError("hook bug")

    monkeypatch.setattr(relay, "_note_send", broken)
    monkeypatch.setattr(relay, "relay_attributes", broken)
    assert _talk(instrument_asgi(_app(), provider), n=10) == _talk(_app(), n=10)
    assert _safety.stats()["hook_errors"] > 0


def _failed_upstream(st: RelayState, at_ns: int) -> None:
    st.upstream.append({"outcome": "transport_error", "api": "chat.completions", "terminal_seen": False,
                        "finish_reason": "", "exception_type": "openai.APIConnectionError", "end_ns": at_ns})


def test_told_client_means_an_error_after_the_failure() -> None:
    st = RelayState("websocket", "/ws", start_ns=0, accepted=True, app_close_code=1000)
    _failed_upstream(st, 5_000_000)
    st.error_sends.append(1_000_000)  # an error sent *before* the upstream failed tells nothing about it
    assert relay_attributes(st, 9_000_000)["streamtriage.relay.told_client"] is False
    st.error_sends.append(6_000_000)
    assert relay_attributes(st, 9_000_000)["streamtriage.relay.told_client"] is True
    careful = RelayState("websocket", "/ws", start_ns=0, accepted=True, app_close_code=1011)
    _failed_upstream(careful, 5_000_000)
    assert relay_attributes(careful, 9_000_000)["streamtriage.relay.told_client"] is True


def test_a_crash_after_accept_is_close_code_1006() -> None:
    st = RelayState("websocket", "/ws", start_ns=0, accepted=True, exc=TypeError("not serializable"))
    a = relay_attributes(st, 1)
    assert a["streamtriage.relay.end"] == "server_crash" and a["streamtriage.relay.close_code"] == 1006
    assert a["streamtriage.outcome"] == "app_error" and a["streamtriage.exception.type"] == "builtins.TypeError"
