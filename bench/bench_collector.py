"""Collector throughput: OTLP protobuf over HTTP from 8 concurrent exporters -> stored and queryable,
against a bare clickhouse-connect insert of the same rows into the same chDB store, in one run.

    python bench/bench_collector.py [--spans 80000] [--batch 500] [--exporters 8] [--modes insert,wal]

Phases (each store user is its own process: chDB allows one engine per process and directory):
1. build the export requests (LLM-like call + event spans, serialized once);
2. ``bare``: a subprocess converts the same requests to rows (untimed) and times
   ``client.insert(otel_traces, rows)`` in 10k-row batches into database ``bare1`` of data dir D;
   repeated after step 3 (``bare2``): the machine is shared, the reference is the mean of both;
3. per durability mode: ``streamtriage serve --store chdb://D`` (database ``m_<mode>``), 8 threads POST
   the requests over keep-alive connections; timed until every request is acknowledged *and*
   the service reports them all stored (then ``count()`` is checked in the store). Per-request
   latency p50/p99, and the peak RSS (VmHWM) of the collector plus its decoder workers.
Prints a markdown table; writes JSON to bench/results/collector.json.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_requests(total: int, batch: int) -> list[bytes]:
    """LLM-shaped spans: per call, one call span (~20 attributes, an event) and 5 event spans."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    def kv(k: str, v) -> KeyValue:
        if isinstance(v, bool):
            return KeyValue(key=k, value=AnyValue(bool_value=v))
        if isinstance(v, int):
            return KeyValue(key=k, value=AnyValue(int_value=v))
        if isinstance(v, float):
            return KeyValue(key=k, value=AnyValue(double_value=v))
        if isinstance(v, list):
            return KeyValue(key=k, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=x) for x in v])))
        return KeyValue(key=k, value=AnyValue(string_value=v))

    resource = Resource(attributes=[kv("service.name", "bench-app"), kv("telemetry.sdk.language", "python"),
                                    kv("telemetry.sdk.version", "1.45.2")])
    scope = InstrumentationScope(name="streamtriage.instrumentation.openai", version="0.1.0")
    now = time.time_ns()
    requests: list[bytes] = []
    spans: list[Span] = []
    i = 0
    while i < total:
        trace = os.urandom(16)
        call_id = os.urandom(8)
        start = now + i * 1000
        call = Span(trace_id=trace, span_id=call_id, name="chat gpt-4o-mini", kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=start, end_time_unix_nano=start + 2_500_000_000)
        call.attributes.extend(kv(k, v) for k, v in {
            "streamtriage.span": "call", "streamtriage.contract": 1, "streamtriage.api": "chat.completions",
            "streamtriage.call.mode": "stream", "streamtriage.outcome": "transport_error" if i % 7 == 0 else "completed",
            "streamtriage.terminal.seen": i % 7 != 0, "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": ["gpt-4o-mini", "gpt-4.1", "o3"][i % 3], "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.usage.input_tokens": 120 + i % 50, "gen_ai.usage.output_tokens": 300 + i % 90,
            "streamtriage.event.count": 42, "streamtriage.delta.count": 40, "streamtriage.ttfe_ms": 250.5 + i % 100,
            "streamtriage.max_gap_ms": 812.25, "streamtriage.request.fingerprint": trace.hex()[:16],
            "streamtriage.sdk.name": "openai-python", "streamtriage.sdk.version": "3.54.0",
            "streamtriage.transport.name": "httpx2", "server.address": "api.openai.com", "server.port": 443,
        }.items())
        ev = call.events.add(time_unix_nano=start + 5, name="exception")
        ev.attributes.append(kv("exception.type", "httpx2.RemoteProtocolError"))
        spans.append(call)
        for j in range(5):
            s = Span(trace_id=trace, span_id=os.urandom(8), parent_span_id=call_id, name="chat.completion.chunk",
                     kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=start + j * 1_000_000,
                     end_time_unix_nano=start + j * 1_000_000 + 900_000)
            s.attributes.extend(kv(k, v) for k, v in {
                "streamtriage.span": "event", "streamtriage.event.type": "chat.completion.chunk",
                "streamtriage.event.index": j, "streamtriage.event.count": 8, "streamtriage.event.bytes": 64,
                "streamtriage.event.gap_ms": 12.5}.items())
            spans.append(s)
        i += 6
        while len(spans) >= batch:
            chunk, spans = spans[:batch], spans[batch:]
            requests.append(ExportTraceServiceRequest(resource_spans=[ResourceSpans(
                resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=chunk)])]).SerializeToString())
    if spans:
        requests.append(ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)])]).SerializeToString())
    return requests


def bare_main(data_dir: str, payload_file: str, insert_batch: int, db: str) -> None:
    """Child process: same rows, straight into otel_traces with clickhouse-connect."""
    import clickhouse_connect
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from streamtriage.collector.migrate import apply_migrations
    from streamtriage.collector.span_rows import INSERT_COLUMNS, convert

    requests = pickle.loads(Path(payload_file).read_bytes())
    rows = [r for body in requests for r in convert(ExportTraceServiceRequest.FromString(body)).rows]
    client = clickhouse_connect.get_client(dsn=f"chdb://{data_dir}")
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.database = db
    apply_migrations(client, db, 30, 90)
    started = time.perf_counter()
    for k in range(0, len(rows), insert_batch):
        client.insert("otel_traces", rows[k:k + insert_batch], column_names=list(INSERT_COLUMNS), database=db)
    elapsed = time.perf_counter() - started
    count = client.query(f"SELECT count() FROM {db}.otel_traces").result_rows[0][0]
    print(json.dumps({"rows": len(rows), "stored": int(count), "seconds": elapsed}))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of the collector plus its decoder worker processes."""
    import psutil

    total = 0.0
    for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def _cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user+system, all threads) of the collector's main process and of its decoder workers:
    where the ingest work goes."""
    import psutil

    main = psutil.Process(pid)
    workers = main.children(recursive=True)
    t = main.cpu_times()
    return {"main": t.user + t.system, "decoders": sum(w.cpu_times().user + w.cpu_times().system for w in workers)}


def run_collector(data_dir: str, requests: list[bytes], exporters: int, mode: str, total: int,
                  workers: int) -> dict:
    port = _free_port()
    env = {**os.environ, "STREAMTRIAGE_DATABASE": f"m_{mode}_{workers + 1}", "STREAMTRIAGE_DURABILITY": mode,
           "STREAMTRIAGE_DECODE_WORKERS": str(workers)}
    log = open(Path(data_dir).parent / f"collector-{mode}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamtriage.cli", "serve", "--store", f"chdb://{data_dir}",
                             "--port", str(port), "--log-level", "warning"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("collector did not start; see " + log.name)
            time.sleep(0.1)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        lock = threading.Lock()

        def exporter(share: list[bytes]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for body in share:
                while True:
                    t0 = time.perf_counter()
                    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                    resp = conn.getresponse()
                    resp.read()
                    dt = time.perf_counter() - t0
                    with lock:
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                        if resp.status == 200:
                            latencies.append(dt)
                    if resp.status == 200:
                        break
                    time.sleep(float(resp.getheader("Retry-After") or 1))  # what a real exporter does
            conn.close()

        shares = [requests[k::exporters] for k in range(exporters)]
        threads = [threading.Thread(target=exporter, args=(s,)) for s in shares]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        acked = time.perf_counter() - started
        stored = 0
        while time.perf_counter() - started < 300:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            stored = int(float(next(ln.split()[1] for ln in text.splitlines()
                                    if ln.startswith("streamtriage_spans_stored_total "))))
            if stored >= total:
                break
            time.sleep(0.05)
        queryable = time.perf_counter() - started
        rss = _peak_rss_mb(proc.pid)
        cpu = _cpu_seconds(proc.pid)
        write_s = float(next(ln.split()[1] for ln in text.splitlines() if ln.startswith("streamtriage_store_write_seconds_sum")))
        writes = int(float(next(ln.split()[1] for ln in text.splitlines()
                                if ln.startswith("streamtriage_store_write_seconds_count"))))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    # Verify against the store itself (the service is down now, so the directory is free).
    out = subprocess.run([sys.executable, "-c",
                          "import clickhouse_connect,sys;c=clickhouse_connect.get_client(dsn='chdb://'+sys.argv[1]);"
                          "print(c.query(f'SELECT count() FROM m_{sys.argv[2]}.otel_traces').result_rows[0][0])",
                          data_dir, f"{mode}_{workers + 1}"], capture_output=True, text=True, check=True)
    latencies.sort()
    return {"mode": mode, "workers": workers, "spans": total, "stored_in_store": int(out.stdout.strip()), "seconds_acked": acked,
            "seconds_queryable": queryable, "spans_per_s": total / queryable,
            "p50_ms": statistics.median(latencies) * 1000, "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "peak_rss_mb": rss, "cpu_s": cpu, "statuses": statuses, "store_write_seconds": write_s, "store_writes": writes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=60_000)
    ap.add_argument("--batch", type=int, default=512, help="spans per export request (BatchSpanProcessor default)")
    ap.add_argument("--exporters", type=int, default=8)
    ap.add_argument("--insert-batch", type=int, default=10_000, help="rows per bare insert")
    ap.add_argument("--modes", default="insert,wal")
    ap.add_argument("--decode-workers", default="-1", help="comma list; -1 = the service default")
    ap.add_argument("--bare-child", nargs=3, metavar=("DATA_DIR", "PAYLOADS", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_child:
        bare_main(args.bare_child[0], args.bare_child[1], args.insert_batch, args.bare_child[2])
        return
    work = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    data_dir = str(work / "data")
    requests = build_requests(args.spans, args.batch)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    total = sum(len(ss.spans) for body in requests for rs in ExportTraceServiceRequest.FromString(body).resource_spans
                for ss in rs.scope_spans)
    payloads = work / "requests.pickle"
    payloads.write_bytes(pickle.dumps(requests))
    def run_bare(tag: str) -> dict:
        out = subprocess.run([sys.executable, __file__, "--insert-batch", str(args.insert_batch),
                              "--bare-child", data_dir, str(payloads), tag],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    # Bare before and after the collector runs: the machine is shared, so the reference is their mean.
    bare_runs = [run_bare("bare1")]
    results = [run_collector(data_dir, requests, args.exporters, m, total, int(w))
               for w in args.decode_workers.split(",") for m in args.modes.split(",")]
    bare_runs.append(run_bare("bare2"))
    bare = bare_runs[-1]
    bare_rate = statistics.mean(b["rows"] / b["seconds"] for b in bare_runs)
    print(f"\n{total} spans in {len(requests)} requests of <= {args.batch}, {args.exporters} exporters, "
          f"{os.cpu_count()} CPUs\n")
    print("| path | spans/s | % of bare | p50 ms | p99 ms | peak RSS MB | store inserts (s) | CPU s main / decoders | stored/sent |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    runs = " / ".join(f"{b['rows'] / b['seconds']:,.0f}" for b in bare_runs)
    print(f"| bare clickhouse-connect insert ({args.insert_batch}-row batches; mean of {runs}) | {bare_rate:,.0f} | "
          f"100% | - | - | - | {len(bare_runs)} x {bare['seconds']:.2f} | - | {bare['stored']}/{bare['rows']} |")
    for r in results:
        workers = "auto" if r["workers"] < 0 else r["workers"]
        print(f"| collector, durability={r['mode']}, decode_workers={workers} (OTLP/HTTP -> stored+queryable) | {r['spans_per_s']:,.0f} | "
              f"{100 * r['spans_per_s'] / bare_rate:.0f}% | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['peak_rss_mb']:.0f} | {r['store_writes']} in {r['store_write_seconds']:.2f} | "
              f"{r['cpu_s']['main']:.1f} / {r['cpu_s']['decoders']:.1f} | {r['stored_in_store']}/{total} |")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "collector.json").write_text(json.dumps({"bare": bare_runs, "bare_spans_per_s": bare_rate,
                                                    "collector": results}, indent=2))


if __name__ == "__main__":
    main()
