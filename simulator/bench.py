"""Simulator throughput, so benchmarks know the load generator is not their bottleneck.

``python -m streamtriage.simulator.bench [--chunks 1000] [--streams 20]`` prints one table: a
gap-0 stream read from a raw socket, the same stream through the real SDK (sync and async), and
N concurrent async SDK streams. Ratios are within one run on one machine; no absolute claims.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import time
import warnings

from .faults import fault_model
from .server import run_simulator


def _raw_stream(port: int, chunks: int) -> tuple[float, int]:
    body = json.dumps({"model": fault_model("healthy", n=chunks), "messages": [], "stream": True}).encode()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        total = 0
        while data := sock.recv(1 << 16):
            total += len(data)
    return time.perf_counter() - start, total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import openai

    model = fault_model("healthy", n=args.chunks)
    rows: list[tuple[str, float, float]] = []
    with run_simulator() as sim:
        raw = [_raw_stream(sim.port, args.chunks) for _ in range(args.repeat)]
        t_raw = statistics.median(t for t, _ in raw)
        rows.append((f"raw socket, 1 stream x {args.chunks} chunks ({raw[0][1] // 1024} KiB)", t_raw,
                     args.chunks / t_raw))

        client = openai.OpenAI(api_key="sk-sim", base_url=sim.base_url, max_retries=0)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            n = sum(1 for _ in client.chat.completions.create(model=model, messages=[], stream=True))
            times.append(time.perf_counter() - start)
        client.close()
        t_sync = statistics.median(times)
        rows.append((f"openai {openai.__version__} sync, 1 stream x {n} chunks", t_sync, n / t_sync))

        async def one(aclient: openai.AsyncOpenAI) -> int:
            return sum([1 async for _ in await aclient.chat.completions.create(model=model, messages=[],
                                                                              stream=True)])

        async def run(parallel: int) -> tuple[float, int]:
            aclient = openai.AsyncOpenAI(api_key="sk-sim", base_url=sim.base_url, max_retries=0)
            start = time.perf_counter()
            counts = await asyncio.gather(*(one(aclient) for _ in range(parallel)))
            elapsed = time.perf_counter() - start
            await aclient.close()
            return elapsed, sum(counts)

        singles = [asyncio.run(run(1)) for _ in range(args.repeat)]
        t_async, n_async = statistics.median(t for t, _ in singles), singles[0][1]
        rows.append((f"openai async, 1 stream x {n_async} chunks", t_async, n_async / t_async))
        t_par, n_par = asyncio.run(run(args.streams))
        rows.append((f"openai async, {args.streams} concurrent streams ({n_par} chunks)", t_par, n_par / t_par))

    print(f"| case | seconds (median of {args.repeat}) | chunks/s | vs raw |")
    print("|---|---:|---:|---:|")
    for label, seconds, rate in rows:
        print(f"| {label} | {seconds:.4f} | {rate:,.0f} | {rate / rows[0][2]:.2f} |")


if __name__ == "__main__":
    main()
