"""Classifier throughput on a large synthetic store (its own chDB directory, so run it as a script).

    python bench/bench_classifier.py [--calls 1000000] [--open 1000] [--dir /tmp/st-bench]

Spans are generated inside ClickHouse (``INSERT ... SELECT ... FROM numbers(N)``) in the exporter's
``otel_traces`` shape: per call one call span and three event spans (first chunk, coalesced deltas,
terminal), with a realistic mix of outcomes (~88 % healthy, the rest cuts, stalls, truncations,
in-band errors, cancels, HTTP errors). Then, in one run:

- full pass: every call assembled (SQL GROUP BY) and classified, labels written -> calls/s;
- incremental pass after 10,000 new calls arrive;
- open-call sweep: ``--open`` calls whose call span has not arrived (event spans only), re-evaluated.

Prints a table and writes ``bench/results/classifier.json``. Targets: >= 20,000 calls/s for the full
pass, sweep < 1 s.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Outcome mix by n % 100: (share, call attribute pairs). Values are what the hook writes (strings).
MIX_SQL = """
multiIf(
  m < 88, 'ok',
  m < 91, 'cut',
  m < 93, 'length',
  m < 94, 'timeout',
  m < 95, 'error_event',
  m < 96, 'cancelled',
  m < 97, 'no_finish',
  m < 98, 'http429',
  m < 99, 'content_filter',
  'app_keyerror')
"""


def gen_sql(db: str, first: int, count: int, open_calls: bool = False) -> str:
    """INSERT ... SELECT generating ``count`` calls numbered from ``first`` (4 spans each; open: 2 event spans)."""
    parts = "[1, 2]" if open_calls else "[0, 1, 2, 3]"
    return f"""
INSERT INTO `{db}`.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind,
    ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage)
SELECT
  fromUnixTimestamp64Nano(t0 + if(part = 0, 0, part * 40000000)) AS Timestamp,
  tid, if(part = 0, csid, substring(lower(hex(sipHash64(n, part))), 1, 16)), if(part = 0, '', csid), '',
  if(part = 0, 'chat gpt-4o-mini', if(part = 3, if(kind = 'ok' OR kind = 'length' OR kind = 'content_filter'
       OR kind = 'no_finish', '[DONE]', 'error'), 'chat.completion.chunk')),
  if(part = 0, 'Client', 'Internal'), concat('svc-', toString(n % 7)), map('service.name', concat('svc-', toString(n % 7))),
  'streamtriage.instrumentation.openai', '0.1.0',
  mapFilter((k, v) -> v != '', if(part = 0, map(
     'streamtriage.span', 'call', 'streamtriage.contract', '1', 'streamtriage.api', 'chat.completions',
     'streamtriage.call.mode', 'stream', 'gen_ai.request.model', 'gpt-4o-mini',
     'streamtriage.outcome', multiIf(kind IN ('ok', 'length', 'content_filter', 'no_finish'), 'completed',
          kind = 'cut', 'transport_error', kind = 'timeout', 'timeout', kind = 'error_event', 'error_event',
          kind = 'http429', 'http_error', kind = 'app_keyerror', 'app_error', 'cancelled'),
     'streamtriage.terminal.seen', if(kind IN ('ok', 'length', 'content_filter', 'no_finish'), 'true', 'false'),
     'gen_ai.response.finish_reasons', multiIf(kind = 'ok', '["stop"]', kind = 'length', '["length"]',
          kind = 'content_filter', '["content_filter"]', '[""]'),
     'streamtriage.exception.type', multiIf(kind = 'cut', 'openai.APIConnectionError', kind = 'timeout',
          'openai.APITimeoutError', kind = 'error_event', 'openai.APIError', kind = 'http429', 'openai.RateLimitError', ''),
     'streamtriage.exception.chain', multiIf(kind = 'cut', '["openai.APIConnectionError","httpx2.RemoteProtocolError"]',
          kind = 'timeout', '["openai.APITimeoutError","httpx2.ReadTimeout"]', ''),
     'streamtriage.exception.message', if(kind = 'cut' OR kind = 'timeout', 'Connection error.', ''),
     'streamtriage.error.code', if(kind = 'error_event', 'server_error', ''),
     'http.response.status_code', if(kind = 'http429', '429', '200'),
     'streamtriage.event.count', if(kind = 'http429', '0', '12'), 'streamtriage.delta.count', if(kind = 'http429', '0', '10'),
     'streamtriage.delta.bytes', '60', 'streamtriage.ttfe_ms', '120.5', 'streamtriage.max_gap_ms', '60.2',
     'gen_ai.usage.output_tokens', if(kind = 'length', '256', '40'), 'gen_ai.request.max_tokens', '256',
     'streamtriage.cancel.reason', if(kind = 'cancelled', 'close', ''),
     'streamtriage.app_exception.type', if(kind = 'app_keyerror', 'builtins.KeyError', ''),
     'streamtriage.app_exception.message', if(kind = 'app_keyerror', '\\'finish_reason\\'', ''),
     'streamtriage.retry.count', '0', 'streamtriage.request.fingerprint', substring(lower(hex(sipHash64(n % 50000))), 1, 16)),
   map('streamtriage.span', 'event', 'streamtriage.event.type', 'chat.completion.chunk',
       'streamtriage.event.index', toString(if(part = 1, 0, if(part = 2, 1, 11))),
       'streamtriage.event.count', if(part = 2, '10', '1'), 'streamtriage.event.gap_ms', '40.0',
       'streamtriage.event.max_gap_ms', if(part = 2, '55.0', ''),
       'streamtriage.terminal', if(part = 3 AND kind IN ('ok', 'length', 'content_filter', 'no_finish'), 'true', ''),
       'streamtriage.api', if(part = 1, 'chat.completions', ''), 'gen_ai.request.model', if(part = 1, 'gpt-4o-mini', '')))),
  toUInt64(if(part = 0, 160000000, if(part = 2, 30000000, 0))),
  if(part = 0 AND kind != 'ok', 'Error', 'Unset'), ''
FROM (
  SELECT number + {first} AS n, n % 100 AS m, {MIX_SQL} AS kind,
         lower(hex(sipHash128(n))) AS tid, substring(lower(hex(sipHash64(n))), 1, 16) AS csid,
         toInt64({{t_base:Int64}}) + toInt64(n) * 1000 AS t0
  FROM numbers({count})
)
ARRAY JOIN {parts} AS part
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--open", type=int, default=1_000)
    ap.add_argument("--dir", default=None, help="chDB data directory (default: a fresh temp dir, removed after)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))

    import clickhouse_connect

    from streamtriage.classifier.service import Classifier
    from streamtriage.classifier.thresholds import Thresholds
    from streamtriage.collector.migrate import apply_migrations

    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="st-bench-"))
    db = "bench"
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp}")
    client.command(f"DROP DATABASE IF EXISTS `{db}`")
    client.command(f"CREATE DATABASE `{db}`")
    client.database = db
    apply_migrations(client, db, 30, 90)
    now = time.time_ns()
    t_base = now - args.calls * 1000 - 600_000_000_000  # calls start 10+ minutes ago, 1 us apart
    results: dict[str, object] = {"calls": args.calls, "open_calls": args.open}
    try:
        t = time.perf_counter()
        client.command(gen_sql(db, 0, args.calls), parameters={"t_base": t_base})
        results["generate_s"] = round(time.perf_counter() - t, 2)
        spans = client.command(f"SELECT count() FROM `{db}`.otel_traces")
        results["spans"] = int(spans)

        clf = Classifier(client, db, thresholds=Thresholds({"stall_ms": 5_000}), slack_s=30)
        full = clf.full(since_ns=t_base - 1, now_ns=time.time_ns())
        results["full"] = full.to_dict()
        results["full_calls_per_s"] = round(full.covered / full.seconds)
        results["labels_written"] = full.written

        # incremental: 10,000 new calls arrive after a first (watermark-setting) pass
        clf.incremental()
        t_new = time.time_ns() - 5_000_000_000
        client.command(gen_sql(db, args.calls, 10_000), parameters={"t_base": t_new})
        time.sleep(0.05)
        inc = clf.incremental()
        results["incremental_10k"] = inc.to_dict()

        # open calls: event spans without their call span, silent for ~2 minutes
        t_open = time.time_ns() - 10_000_000_000
        client.command(gen_sql(db, args.calls + 10_000, args.open, open_calls=True), parameters={"t_base": t_open})
        inc2 = clf.incremental()
        sweeps = [clf.sweep() for _ in range(3)]
        results["open_discovered"] = inc2.open
        results["sweep"] = sweeps[-1].to_dict()
        results["sweep_s_median"] = sorted(s.seconds for s in sweeps)[1]
    finally:
        client.close()
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = [
        ("synthetic calls / spans", f"{args.calls:,} / {results['spans']:,}"),
        ("generate (SQL INSERT SELECT)", f"{results['generate_s']} s"),
        ("full pass: calls covered", f"{results['full']['covered']:,} in {results['full']['seconds']:.1f} s"),
        ("full pass: records evaluated by rules (rest ruled out in SQL)", f"{results['full']['records']:,}"),
        ("full pass: calls/s (target >= 20,000)", f"{results['full_calls_per_s']:,}"),
        ("full pass: labels written", f"{results['labels_written']:,}"),
        ("full pass: seconds by phase", ", ".join(f"{k} {v:.1f}" for k, v in results["full"]["phases"].items())),
        ("incremental pass, 10,000 new calls", f"{results['incremental_10k']['records']:,} records in "
                                               f"{results['incremental_10k']['seconds']:.2f} s"),
        ("open calls found / labelled by sweep", f"{results['open_discovered']:,} / {results['sweep']['labelled']:,}"),
        ("open-call sweep (median of 3, target < 1 s)", f"{results['sweep_s_median']:.3f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure':<{width}}  value\n{'-' * width}  -----")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    out = REPO / "bench" / "results" / "classifier.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
