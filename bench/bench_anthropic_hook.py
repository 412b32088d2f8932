"""CPU cost per stream event of the Anthropic Messages hook vs. the bare anthropic SDK.

The same paired method as ``bench_hooks.py``: each variant runs in its own subprocess against the
simulator's healthy Anthropic stream (``message_start``, ``ping``, 1,000 ``content_block_delta``,
``message_delta``, ``message_stop``), read with ``messages.create(stream=True)``; the child snapshots
every attribute of every ``anthropic`` module and class, instruments, diffs the snapshot to find what
the hook patched, then alternates a bare stream (originals swapped back) and a hooked stream. "Added"
is the median of the per-pair differences; the ``bare`` child pairs bare with bare (the noise floor).
Spans go through the real ``BatchSpanProcessor`` into an in-memory exporter; CPU is process CPU time.
The SDK's own OpenTelemetry tracing (anthropic 2.x) is off in both (``ANTHROPIC_OPEN_TELEMETRY=false``)
so only streamtriage's cost is measured.

Transports: ``socket`` (real HTTP to the simulator) and ``replay`` (the same bytes from memory through
``httpx2.MockTransport`` on 2.x / ``httpx.MockTransport`` on 0.x).

    python bench/bench_anthropic_hook.py [--chunks 1000] [--reps 10] [--rounds 3] [--python PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hooks import PAIRED, _simulator, table  # noqa: E402  (same measurement, same table)

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ["bare", "streamtriage"]

CHILD = r'''
import gc, json, resource, sys, time
variant, url, chunks, reps, transport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(exporter))
import anthropic
base = url.removesuffix("/v1")
model = "fault/healthy;n=%d" % chunks
if transport == "replay":
    major = int(anthropic.__version__.split(".")[0])
    http = __import__("httpx2" if major >= 1 else "httpx")
    body = http.post(base + "/v1/messages", json={"model": model, "max_tokens": 4096, "messages": [],
                                                   "stream": True}, timeout=60).content
    def handler(request):
        return http.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    client = anthropic.Anthropic(base_url=base, api_key="bench", max_retries=0,
                                 http_client=http.Client(transport=http.MockTransport(handler)))
else:
    client = anthropic.Anthropic(base_url=base, api_key="bench", max_retries=0)
def one():
    n = 0
    for event in client.messages.create(model=model, max_tokens=4096, stream=True,
                                        messages=[{"role": "user", "content": "bench"}]):
        n += 1
    return n
SDK = "anthropic"
def instrument(variant):
    if variant == "streamtriage":
        from streamtriage.instrumentation import AnthropicInstrumentor
        AnthropicInstrumentor().instrument(tracer_provider=provider)
''' + PAIRED + r'''
print(json.dumps({"variant": variant, "per_chunk_us": hooked, "bare_us": bare, "added_us": added, "chunks": got,
                  "patched": len(patched), "spans_per_stream": len(exporter.get_finished_spans()) / reps,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "sdk": anthropic.__version__}))
'''


def run(python: str, chunks: int, reps: int, rounds: int, transport: str) -> tuple[dict[str, dict], str]:
    results: dict[str, dict] = {v: {"per_chunk_us": [], "bare_us": [], "added_us": [], "peak_rss_mb": 0.0,
                                    "spans_per_stream": 0.0, "patched": 0} for v in VARIANTS}
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(REPO), "ANTHROPIC_OPEN_TELEMETRY": "false"}
    sdk = "?"
    with _simulator() as sim:
        for _ in range(rounds):
            order = VARIANTS[:]
            rng.shuffle(order)
            for v in order:
                out = subprocess.run([python, "-c", CHILD, v, sim.base_url, str(chunks), str(reps), transport],
                                     env=env, capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    raise SystemExit(f"{v} failed:\n{out.stderr[-2000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                for key in ("per_chunk_us", "bare_us", "added_us"):
                    results[v][key] += r[key]
                for key in ("patched", "spans_per_stream", "chunks"):
                    results[v][key] = r[key]
                results[v]["peak_rss_mb"] = max(results[v]["peak_rss_mb"], r["peak_rss_mb"])
                sdk = r["sdk"]
    return results, sdk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--python", nargs="+", default=[sys.executable],
                    help="interpreters to measure (e.g. .venv-openai1/bin/python for anthropic 0.x)")
    ap.add_argument("--transport", nargs="+", choices=["socket", "replay"], default=["socket", "replay"])
    args = ap.parse_args()
    parts = []
    for python in args.python:
        for transport in args.transport:
            results, sdk = run(python, args.chunks, args.reps, args.rounds, transport)
            parts.append(f"### anthropic {sdk}, {transport}")
            parts.append(table(results, VARIANTS).replace("1,000 content chunks + role and finish chunks",
                                                "message_start, ping, 1,000 content_block_delta, message_delta, "
                                                "message_stop; the SDK yields all but ping"))
    print("\n\n".join(parts))


if __name__ == "__main__":
    main()
