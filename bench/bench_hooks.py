"""CPU cost per stream chunk of the streamtriage hook vs. the bare SDK and two peer instrumentations.

Against the simulator's healthy 1,000-chunk chat stream, each variant runs in its own subprocess
(so patches never mix): ``bare`` (no hook), ``streamtriage``, ``openai-v2``
(``opentelemetry-instrumentation-openai-v2``) and ``openllmetry``
(``opentelemetry-instrumentation-openai``). Every variant exports through the real
``BatchSpanProcessor`` into an in-memory exporter, and CPU is process CPU time
(``time.process_time``: all threads, user + system, so the span processor's thread counts too).

On a shared machine the load drifts far more between processes than a hook costs, so each child
measures pairs: it snapshots every attribute of every ``openai`` module and class, instruments,
and diffs the snapshot to find what the hook patched; it then alternates a bare stream (patched
attributes swapped back to the originals) and a hooked stream, and "added" is the median of the
per-pair differences (the difference of the fastest hooked and fastest bare stream is shown too:
for CPU-bound code the minimum is the least load-sensitive estimate). The ``bare`` child pairs
bare with bare: its "added" is the method's noise floor. (Swapping attributes rather than calling ``uninstrument()`` works for every peer: one of
them does not restore the SDK on ``uninstrument()``.)

Two transports: ``socket`` (real HTTP to the simulator) and ``replay`` (the simulator's bytes for the
same stream served from memory by ``httpx2.MockTransport``), because the CPU a socket read costs
depends on how many events each ``recv`` happens to return, which is scheduling noise on a busy
machine. Finally the streamtriage per-chunk path alone on pre-parsed chunks (deterministic).

    python bench/bench_hooks.py [--chunks 1000] [--reps 10] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ["bare", "streamtriage", "openai-v2", "openllmetry"]

# The paired measurement every child shares (bench_anthropic_hook.py too): a child defines SDK (module
# name), provider, exporter, one() (one stream, returns the events read) and instrument(variant) first.
PAIRED = r'''
def snapshot():
    # every attribute of every SDK module and class: what a hook patches shows up as a change
    snap = {}
    for mname, mod in list(sys.modules.items()):
        if mname != SDK and not mname.startswith(SDK + "."):
            continue
        for aname, val in list(vars(mod).items()):
            if type(val) in PLAIN:
                continue
            snap[(mod, aname)] = val
            # type(val), not isinstance(): the SDK's lazy module proxies would load on __class__
            if issubclass(type(val), type) and vars(val).get("__module__") == mname:
                for k, v in list(vars(val).items()):
                    if type(v) not in PLAIN:
                        snap[(val, k)] = v
    return snap
PLAIN = (int, float, str, bytes, bool, type(None), dict, list, tuple, set, frozenset)
for _ in range(2):
    one()  # bare warm-up: every module the stream path needs is imported now
rss_bare = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = snapshot()
instrument(variant)
for _ in range(2):
    one()
after = snapshot()
patched = [(k, before[k], after[k]) for k in before
           if k in after and after[k] is not before[k] and not k[1].startswith("__pydantic")]  # model rebuilds
def use(hooked):
    for (owner, name), old, new in patched:
        setattr(owner, name, new if hooked else old)
provider.force_flush()
exporter.clear()
gc.collect()
gc.freeze()
def measure(hooked):
    use(hooked)
    gc.collect()
    t0 = time.process_time()
    got = one()
    provider.force_flush()  # the span processor's export work is part of the cost
    return (time.process_time() - t0) / got * 1e6, got
bare, hooked, added = [], [], []
got = 0
for i in range(reps):
    # a bare and a hooked stream back to back (order alternating): machine-load drift hits both
    first = i % 2 == 0
    a, got = measure(first)
    b, got = measure(not first)
    h, x = (a, b) if first else (b, a)
    hooked.append(h); bare.append(x); added.append(h - x)
'''

CHILD = r'''
import gc, json, resource, sys, time
variant, url, chunks, reps, transport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(exporter))
import openai
if transport == "replay":
    # the simulator's bytes for this stream, replayed from memory: no socket timing in the CPU figure
    import httpx2
    body = httpx2.post(url + "/chat/completions", json={"model": "fault/healthy;n=%d" % chunks, "messages": [],
                                                         "stream": True}, timeout=60).content
    def handler(request):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0,
                           http_client=openai.DefaultHttpx2Client(transport=httpx2.MockTransport(handler)))
else:
    client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)
def one():
    n = 0
    for chunk in client.chat.completions.create(model="fault/healthy;n=%d" % chunks,
            messages=[{"role": "user", "content": "bench"}], stream=True):
        n += 1
    return n
SDK = "openai"
def instrument(variant):
    if variant == "streamtriage":
        from streamtriage.instrumentation import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif variant == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=provider)
''' + PAIRED + r'''
print(json.dumps({"variant": variant, "per_chunk_us": hooked, "bare_us": bare, "added_us": added, "chunks": got,
                  "patched": len(patched), "spans_per_stream": len(exporter.get_finished_spans()) / reps,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": rss_bare,
                  "patched_names": sorted(getattr(o, "__name__", "?") + "." + n for (o, n), _, _ in patched)}))
'''


MICRO = r'''
import json, statistics, time
from openai._streaming import ServerSentEvent
from openai.types.chat import ChatCompletionChunk
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from streamtriage.instrumentation import OpenAIInstrumentor, calls, observers, routes
from streamtriage.instrumentation.hooks import state, streams
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
OpenAIInstrumentor().instrument(tracer_provider=provider)
N = 1000
chunks = [ChatCompletionChunk.model_validate({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
          "choices": [{"index": 0, "delta": {"content": "tok%d " % i}, "finish_reason": None}]}) for i in range(N)]
sses = [ServerSentEvent(data='{"id":"c"}') for _ in range(N)]
def gen(items):
    yield from items
def bare():
    for _ in gen(iter(gen(chunks))): pass
    for _ in gen(iter(gen(sses))): pass
def hooked():
    st = calls.CallState(state.CFG, routes.RequestInfo("chat.completions", "stream", model="m"), {"streamtriage.api": "chat.completions"})
    for _ in gen(streams._observe_sync(st, gen(chunks), observers.observe_chat)): pass
    for _ in gen(streams._watch_sse_sync(st, gen(sses))): pass
    st.stream_finished()
    provider.force_flush()
out = {}
for f in (bare, hooked):
    f()
    ts = []
    for _ in range(60):
        t0 = time.process_time(); f(); ts.append((time.process_time() - t0) / N * 1e6)
    out[f.__name__] = statistics.median(ts)
print(json.dumps(out))
'''


def micro() -> dict[str, float]:
    """The hook's own per-chunk path without SDK parsing or sockets: the deterministic part of the cost."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", MICRO], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"micro failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _simulator():
    try:
        from streamtriage.simulator import run_simulator  # type: ignore[attr-defined]
    except ImportError:
        from streamtriage.simulator.server import run_simulator
    return run_simulator()


def run(chunks: int, reps: int, rounds: int, transport: str = "socket") -> dict[str, dict]:
    results: dict[str, dict] = {v: {"per_chunk_us": [], "bare_us": [], "added_us": [], "peak_rss_mb": 0.0,
                                    "spans_per_stream": 0.0, "patched": 0} for v in VARIANTS}
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ""}
    with _simulator() as sim:
        for _ in range(rounds):
            order = VARIANTS[:]
            rng.shuffle(order)  # no variant always runs first/last in a round
            for v in order:
                out = subprocess.run([sys.executable, "-c", CHILD, v, sim.base_url, str(chunks), str(reps), transport],
                                     env=env, capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    raise SystemExit(f"{v} failed:\n{out.stderr[-2000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                for key in ("per_chunk_us", "bare_us", "added_us"):
                    results[v][key] += r[key]
                results[v]["patched"] = r["patched"]
                results[v]["peak_rss_mb"] = max(results[v]["peak_rss_mb"], r["peak_rss_mb"])
                results[v]["spans_per_stream"] = r["spans_per_stream"]
                results[v]["chunks"] = r["chunks"]
    return results


def _q(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def table(results: dict[str, dict], variants: list[str] | None = None) -> str:
    bare = statistics.median(results["bare"]["bare_us"])
    lines = [
        "| variant | SDK attributes patched | CPU µs/chunk, hooked median | added µs/chunk, median of pairs (p25–p75) "
        "| added % of bare | added µs/chunk, min hooked − min bare | spans/stream | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in variants or VARIANTS:
        d = results[v]["added_us"]
        added = statistics.median(d)
        label = "bare (A/A: noise floor)" if v == "bare" else v
        lines.append(
            f"| {label} | {results[v]['patched']} | {statistics.median(results[v]['per_chunk_us']):.1f} | "
            f"{added:+.2f} ({_q(d, .25):+.1f} to {_q(d, .75):+.1f}) | {added / bare * 100:+.1f}% | "
            f"{min(results[v]['per_chunk_us']) - min(results[v]['bare_us']):+.2f} | "
            f"{results[v]['spans_per_stream']:.0f} | {results[v]['peak_rss_mb']:.1f} |"
        )
    n = len(results["bare"]["added_us"])
    lines.append("")
    lines.append(f"{results['bare'].get('chunks')} events per stream (1,000 content chunks + role and finish chunks), "
                 f"{n} bare/hooked pairs per variant; bare SDK median {bare:.1f} µs/chunk.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write raw results here")
    ap.add_argument("--out", help="also write the report (markdown tables) here")
    ap.add_argument("--transport", nargs="+", choices=["socket", "replay"], default=["socket", "replay"])
    args = ap.parse_args()
    everything: dict[str, object] = {}
    parts: list[str] = []
    for transport in args.transport:
        results = run(args.chunks, args.reps, args.rounds, transport)
        everything[transport] = results
        parts.append(f"### {transport}: " + ("real HTTP to the simulator on 127.0.0.1" if transport == "socket" else
                                             "the simulator's response bytes replayed in memory (httpx2.MockTransport)"))
        parts.append(table(results))
    m = micro()
    everything["micro"] = m
    parts.append("### hook path alone\n\nPre-parsed chunks through the two stream wrappers, span emission and export "
                 f"included, no SDK parsing, no socket: **{m['hooked'] - m['bare']:.2f} µs/chunk added** "
                 f"({m['hooked']:.2f} vs {m['bare']:.2f} µs for a bare two-generator pass).")
    report = "\n\n".join(parts) + "\n"
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(everything))
    if args.out:
        Path(args.out).write_text(report)

if __name__ == "__main__":
    main()
