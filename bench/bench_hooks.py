"""CPU cost per stream chunk of the streamtriage hook vs. the bare SDK and two peer instrumentations.

Against the simulator's healthy 1,000-chunk chat stream, each variant runs in its own subprocess
(so patches never mix): ``bare`` (no hook), ``streamtriage``, ``openai-v2``
(``opentelemetry-instrumentation-openai-v2``) and ``openllmetry``
(``opentelemetry-instrumentation-openai``). Every hooked variant exports through the real
``BatchSpanProcessor`` into an in-memory exporter. The child measures process CPU time
(``time.process_time``: all threads, user + system, so the span processor's thread counts too) for
each full stream. On a shared machine the load drifts more between processes than a hook costs, so
each child measures pairs: one bare stream, then (hook instrumented) one hooked stream, then the
hook is uninstrumented again; "added" is the median of these paired differences. The table also
shows the hooked median per chunk, spans per stream and peak RSS.

    python bench/bench_hooks.py [--chunks 1000] [--reps 25] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ["bare", "streamtriage", "openai-v2", "openllmetry"]

CHILD = r'''
import gc, json, resource, sys, time
variant, url, chunks, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(exporter))
inst = None
if variant == "streamtriage":
    from streamtriage.instrumentation import OpenAIInstrumentor
    inst = OpenAIInstrumentor()
elif variant == "openai-v2":
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    inst = OpenAIInstrumentor()
elif variant == "openllmetry":
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    inst = OpenAIInstrumentor()
import openai
client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)
def one():
    n = 0
    for chunk in client.chat.completions.create(model="fault/healthy;n=%d" % chunks,
            messages=[{"role": "user", "content": "bench"}], stream=True):
        n += 1
    return n
def measure():
    gc.collect()
    t0 = time.process_time()
    got = one()
    provider.force_flush()  # the span processor's export work is part of the cost
    return (time.process_time() - t0) / got * 1e6, got
if inst is not None:
    inst.instrument(tracer_provider=provider)
for _ in range(3):
    one()
if inst is not None:
    inst.uninstrument()
provider.force_flush()
exporter.clear()
bare, hooked, diffs = [], [], []
got = 0
for _ in range(reps):
    # paired: a bare stream and a hooked stream back to back in the same process, so machine
    # load drift hits both sides of each difference alike
    b, got = measure()
    bare.append(b)
    if inst is not None:
        inst.instrument(tracer_provider=provider)
        h, got = measure()
        inst.uninstrument()
        hooked.append(h)
        diffs.append(h - b)
spans = len(exporter.get_finished_spans()) / reps
print(json.dumps({"variant": variant, "bare_us": bare, "hooked_us": hooked or bare, "added_us": diffs or [0.0] * reps,
                  "chunks": got, "spans_per_stream": spans,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def _simulator():
    try:
        from streamtriage.simulator import run_simulator  # type: ignore[attr-defined]
    except ImportError:
        from streamtriage.simulator.server import run_simulator
    return run_simulator()


def run(chunks: int, reps: int, rounds: int) -> dict[str, dict]:
    results: dict[str, dict] = {v: {"bare_us": [], "hooked_us": [], "added_us": [], "peak_rss_mb": 0.0,
                                    "spans_per_stream": 0.0} for v in VARIANTS}
    env = {**os.environ, "PYTHONPATH": str(REPO), "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ""}
    with _simulator() as sim:
        for _ in range(rounds):
            for v in VARIANTS:
                out = subprocess.run([sys.executable, "-c", CHILD, v, sim.base_url, str(chunks), str(reps)],
                                     env=env, capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    raise SystemExit(f"{v} failed:\n{out.stderr[-2000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                for key in ("bare_us", "hooked_us", "added_us"):
                    results[v][key] += r[key]
                results[v]["peak_rss_mb"] = max(results[v]["peak_rss_mb"], r["peak_rss_mb"])
                results[v]["spans_per_stream"] = r["spans_per_stream"]
                results[v]["chunks"] = r["chunks"]
    return results


def table(results: dict[str, dict]) -> str:
    bare = statistics.median(results["bare"]["bare_us"])
    lines = [
        "| variant | CPU µs/chunk (median) | added µs/chunk (median of paired diffs) | added % of bare | spans/stream | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        med = statistics.median(results[v]["hooked_us"])
        added = statistics.median(results[v]["added_us"])
        lines.append(
            f"| {v} | {med:.2f} | {added:+.2f} | {added / bare * 100:+.1f}% | {results[v]['spans_per_stream']:.0f} | "
            f"{results[v]['peak_rss_mb']:.1f} |"
        )
    n = len(results["bare"]["bare_us"])
    lines.append("")
    lines.append(f"{results['bare'].get('chunks')} events per stream (1,000 content chunks + role and finish chunks), "
                 f"{n} streams per variant; bare median {bare:.2f} µs/chunk.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", help="also write raw results here")
    args = ap.parse_args()
    results = run(args.chunks, args.reps, args.rounds)
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    print(table(results))


if __name__ == "__main__":
    main()
