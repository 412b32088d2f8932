"""CPU cost per relayed message of the relay middleware (instrument_asgi) vs. the bare ASGI app.

The app is a Starlette WebSocket endpoint that relays N messages (the shape of a relayed LLM answer:
one JSON delta per message), driven directly through the ASGI interface the way a server drives it
(receive/send coroutines, no sockets), so the figure is the middleware's own cost and not the
server's. Spans go through the real ``BatchSpanProcessor`` into an in-memory exporter; CPU is process
CPU time (all threads, so the span processor's thread counts too).

Same paired method as bench_hooks.py: bare and instrumented runs alternate in one process and
"added" is the median of the per-pair differences; a bare/bare pairing gives the noise floor.

    python bench/bench_relay.py [--messages 2000] [--pairs 30]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from streamtriage.instrumentation.relay import instrument_asgi


def build_app(n: int) -> Starlette:
    payloads = [json.dumps({"delta": f"token {i} "}) for i in range(n)]

    async def relay(ws: Any) -> None:
        await ws.accept()
        for p in payloads:
            await ws.send_text(p)
        await ws.close(1000)

    return Starlette(routes=[WebSocketRoute("/ws", relay)])


async def drive(app: Any) -> int:
    """One WebSocket connection through the raw ASGI interface; returns the messages sent."""
    incoming = [{"type": "websocket.connect"}]
    sent = 0

    async def receive() -> dict[str, Any]:
        return incoming.pop() if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        sent += message["type"] == "websocket.send"

    scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "headers": [], "query_string": b"",
             "scheme": "ws", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000), "subprotocols": [],
             "asgi": {"version": "3.0"}, "root_path": "", "app": app}
    await app(scope, receive, send)
    return sent


def cpu_of(app: Any) -> float:
    t0 = time.process_time()
    asyncio.run(drive(app))
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=30)
    args = ap.parse_args()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    bare = build_app(args.messages)
    hooked = instrument_asgi(build_app(args.messages), provider)
    for app in (bare, hooked):  # warm up imports and caches
        cpu_of(app)
    n = args.messages
    floor = [(cpu_of(bare) - cpu_of(bare)) / n * 1e6 for _ in range(args.pairs)]
    added, base = [], []
    for _ in range(args.pairs):
        b = cpu_of(bare)
        h = cpu_of(hooked)
        base.append(b / n * 1e6)
        added.append((h - b) / n * 1e6)
    provider.force_flush()
    spans = len(exporter.get_finished_spans())

    def q(xs: list[float]) -> str:
        qs = statistics.quantiles(xs, n=4)
        return f"{statistics.median(xs):+.2f} ({qs[0]:+.2f} to {qs[2]:+.2f})"

    print(f"relay middleware, {n} messages per connection, {args.pairs} bare/hooked pairs\n")
    print("| variant | added µs/message, median of pairs (p25–p75) | % of bare | spans per connection |")
    print("|---|---|---:|---:|")
    med_base = statistics.median(base)
    print(f"| bare A/A (noise floor) | {q(floor)} | {statistics.median(floor) / med_base:+.1%} | 0 |")
    print(f"| instrument_asgi | {q(added)} | {statistics.median(added) / med_base:+.1%} | "
          f"{spans / (args.pairs + 1):.0f} |")
    print(f"\nbare app: median {med_base:.2f} µs CPU per relayed message")


if __name__ == "__main__":
    main()
