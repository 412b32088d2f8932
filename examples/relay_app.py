"""A chat backend that relays an LLM stream to a browser over a WebSocket or SSE, written the way
many real apps are, with the relay bugs streamtriage explains (run with the fault simulator):

    streamtriage simulate --port 8900 &
    STREAMTRIAGE_UPSTREAM=http://127.0.0.1:8900/v1 python examples/relay_app.py --port 8000

The browser sends one JSON message ``{"model": ..., "variant": ...}``; the app answers with
``{"delta": ...}`` messages, then ``{"done": true}``, then closes (1000). Variants:

- ``raw`` (the seed failure): parses the provider's SSE by hand with httpx and reads
  ``chunk["choices"][0]["finish_reason"]``; when the provider omits the key that raises ``KeyError``,
  and the error handler then raises ``TypeError`` serialising the exception, so the server drops the
  socket without a close frame (the browser: "WebSocket connection died", code 1006).
- ``swallow``: the official SDK, but any upstream error is swallowed and the answer closed as if it
  were whole (the person is shown half an answer as complete).
- ``careful``: the official SDK; an upstream error is sent as ``{"error": ...}`` and the socket is
  closed with 1011.
- ``deaf``: keeps reading the upstream stream to the end even when the browser has gone (tokens paid
  for nothing).

``/sse/chat?model=...`` relays the same SDK stream as server-sent events.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import streamtriage

UPSTREAM = os.environ.get("STREAMTRIAGE_UPSTREAM", "http://127.0.0.1:8900/v1")
MESSAGES = [{"role": "user", "content": "Summarise the document."}]


def _client() -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=UPSTREAM, api_key="sk-relay", max_retries=0)


async def _raw_deltas(model: str) -> AsyncIterator[str]:
    """Hand-rolled SSE parsing, as the seed app did (no SDK)."""
    async with httpx.AsyncClient(timeout=30) as http, http.stream(
            "POST", f"{UPSTREAM}/chat/completions",
            json={"model": model, "messages": MESSAGES, "stream": True}) as resp:
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            choice = chunk["choices"][0]
            if choice["finish_reason"] is not None:  # KeyError when the provider omits the key
                return
            yield choice["delta"].get("content") or ""


async def _sdk_deltas(model: str) -> AsyncIterator[str]:
    stream = await _client().chat.completions.create(model=model, messages=MESSAGES, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content


def _trace_id() -> str:
    """The id support staff ask for: the relay span's trace, which holds the LLM calls too."""
    return format(trace.get_current_span().get_span_context().trace_id, "032x")


async def chat_ws(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text(json.dumps({"trace_id": _trace_id()}))
    ask = json.loads(await ws.receive_text())
    model, variant = ask["model"], ask.get("variant", "careful")
    if variant == "raw":
        try:
            async for delta in _raw_deltas(model):
                await ws.send_text(json.dumps({"delta": delta}))
        except Exception as exc:
            await ws.send_text(json.dumps({"error": exc}))  # TypeError: not JSON serializable
            raise
    elif variant == "swallow":
        with contextlib.suppress(Exception):
            async for delta in _sdk_deltas(model):
                await ws.send_text(json.dumps({"delta": delta}))
    elif variant == "deaf":
        async for delta in _sdk_deltas(model):
            with contextlib.suppress(Exception):  # the browser may be gone; keep going anyway
                await ws.send_text(json.dumps({"delta": delta}))
        with contextlib.suppress(Exception):
            await ws.send_text(json.dumps({"done": True}))
            await ws.close(1000)
        return
    else:
        try:
            async for delta in _sdk_deltas(model):
                await ws.send_text(json.dumps({"delta": delta}))
        except Exception as exc:
            await ws.send_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
            await ws.close(1011)
            return
    await ws.send_text(json.dumps({"done": True}))
    await ws.close(1000)


async def chat_sse(request: Request) -> StreamingResponse:
    model = request.query_params["model"]

    async def body() -> AsyncIterator[bytes]:
        with contextlib.suppress(Exception):  # an upstream error ends the answer as if it were whole
            async for delta in _sdk_deltas(model):
                yield f"data: {json.dumps({'delta': delta})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"x-trace-id": _trace_id()})


def build_app() -> Any:
    app = Starlette(routes=[WebSocketRoute("/ws/chat", chat_ws), Route("/sse/chat", chat_sse)])
    return streamtriage.instrument_asgi(app)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--collector", default=os.environ.get("STREAMTRIAGE_COLLECTOR", "http://127.0.0.1:4318"))
    parser.add_argument("--service", default="relay-app")
    args = parser.parse_args()
    streamtriage.instrument(endpoint=args.collector, service_name=args.service)
    upstream = httpx.URL(UPSTREAM)
    streamtriage.instrument_httpx(hosts=[f"{upstream.host}:{upstream.port}"])  # the hand-rolled "raw" variant
    uvicorn.run(build_app(), host=args.host, port=args.port, log_level="warning", ws="websockets")


if __name__ == "__main__":
    main()
