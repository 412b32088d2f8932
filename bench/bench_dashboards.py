"""How long each dashboard panel and alert query takes on chDB, as a ratio to a plain count, in one run.

    python bench/bench_dashboards.py [--calls 20000] [--repeat 5]

Fills a fresh chDB directory (collector migrations) with ``--calls`` LLM calls spread over the last
6 hours (call span + 3 event spans each; 10% failing with a label; 200 polled objects), then runs
every panel query (variables at "All", the dashboards' default 6-hour range, 60 s interval) and
every alert query ``--repeat`` times. Reports the median per query and its ratio to
``SELECT count() FROM otel_traces WHERE $__timeFilter(Timestamp)`` over the same range, so the
numbers compare across machines. Prints a markdown table; writes JSON to bench/results/dashboards.json.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NS = 1_000_000_000


def _rows(calls: int, now: datetime, rng: random.Random) -> tuple[list[list], list[list]]:
    spans, labels = [], []
    start_ns = int((now - timedelta(hours=6)).timestamp() * NS)
    span_ns = 6 * 3600 * NS
    services, models = ["checkout", "support", "search"], ["gpt-4o-mini", "gpt-4.1", "o4-mini"]
    for i in range(calls):
        t = start_ns + rng.randrange(span_ns)
        tid, sid = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        svc, model = rng.choice(services), rng.choice(models)
        api = "chat.completions" if i % 3 else "responses"
        failed = rng.random() < 0.1
        outcome = rng.choice(["transport_error", "timeout"]) if failed else "completed"
        dur = int(rng.uniform(0.5, 8) * NS)
        attrs = {"streamtriage.span": "call", "streamtriage.api": api, "streamtriage.call.mode": "stream",
                 "gen_ai.request.model": model, "streamtriage.outcome": outcome,
                 "streamtriage.terminal.seen": "false" if failed else "true",
                 "gen_ai.response.finish_reasons": '["length"]' if rng.random() < 0.03 else '["stop"]',
                 "streamtriage.ttfe_ms": f"{rng.uniform(100, 2000):.1f}", "streamtriage.max_gap_ms": f"{rng.uniform(10, 900):.1f}"}
        res = {"service.name": svc}
        spans.append([t, tid, sid, "", "", f"chat {model}", "Client", svc, res, "streamtriage", "0.1.0", attrs, dur,
                      "Error" if failed else "Unset", "", [], [], [], [], [], [], []])
        for k in range(3):
            spans.append([t + (k + 1) * dur // 4, tid, uuid.uuid4().hex[:16], sid, "", "chat.completion.chunk",
                          "Internal", svc, res, "streamtriage", "0.1.0",
                          {"streamtriage.span": "event", "streamtriage.event.index": str(k)}, 1000, "Unset", "",
                          [], [], [], [], [], [], []])
        if failed:
            labels.append([t, tid, sid, svc, model, api, "llm/peer-closed-incomplete-chunked-read", "incomplete_stream",
                           "t", "r", 0.9, 0.7, None, 2, "[]", "[]", "fp", outcome, 0, 1, 1, 0])
    for j in range(200):
        t = start_ns + rng.randrange(span_ns - 3600 * NS)
        tid = uuid.uuid4().hex
        for a in range(30):
            status = "completed" if a == 29 and j % 4 else "in_progress"
            spans.append([t + a * 30 * NS, tid, uuid.uuid4().hex[:16], "", "", "poll assistants.runs", "Client",
                          "support", {"service.name": "support"}, "streamtriage", "0.1.0",
                          {"streamtriage.span": "poll", "streamtriage.api": "assistants.runs",
                           "streamtriage.object.id": f"run_{j}", "streamtriage.status": status,
                           "streamtriage.poll.first_seen_ms": str(a * 30000.0),
                           "streamtriage.poll.status_since_ms": str(a * 30000.0)}, 40_000_000, "Unset", "",
                          [], [], [], [], [], [], []])
    return spans, labels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import clickhouse_connect

    from streamtriage.collector.migrate import apply_migrations
    from streamtriage.collector.span_rows import INSERT_COLUMNS
    from streamtriage.dashboards.alerts import render_alert_rules
    from streamtriage.dashboards.export import ExportOptions, render_dashboards
    from streamtriage.dashboards.macros import QueryContext, expand_alert_sql, expand_panel_sql
    from streamtriage.dashboards.queries import alert_queries, context_for, panel_queries
    from tests.dashboards.synthetic import LABEL_COLUMNS

    now = datetime.now(timezone.utc)
    spans, labels = _rows(args.calls, now, random.Random(1))
    client = clickhouse_connect.get_client(dsn=f"chdb://{tempfile.mkdtemp(prefix='bench-dash-')}")
    client.command("CREATE DATABASE IF NOT EXISTS bench")
    apply_migrations(client, database="bench", ttl_days=30, label_ttl_days=30)
    client.database = "bench"
    client.insert("otel_traces", spans, column_names=list(INSERT_COLUMNS))
    client.insert("streamtriage_labels", labels, column_names=LABEL_COLUMNS)

    def timed(sql: str) -> tuple[float, int]:
        times, n = [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = len(client.query(sql).result_rows)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000, n

    dashboards = render_dashboards(ExportOptions())
    frm, to = now - timedelta(hours=6), now
    base_ms, _ = timed(expand_alert_sql("SELECT count() FROM otel_traces WHERE $__timeFilter(Timestamp)",
                                        QueryContext(frm, to)))
    results = []
    for uid, dash in dashboards.items():
        ctx = context_for(dash, frm, to, 60.0)
        for q in panel_queries(dash):
            ms, n = timed(expand_panel_sql(q.sql, ctx))
            results.append({"query": f"{uid.removeprefix('streamtriage-')}: {q.title}", "ms": ms, "rows": n})
    for q in alert_queries(render_alert_rules(collector_url="http://c", dashboards=dashboards)):
        ms, n = timed(expand_alert_sql(q.sql, QueryContext(to - timedelta(hours=1), to)))
        results.append({"query": q.where, "ms": ms, "rows": n})

    print(f"{len(spans)} spans, {len(labels)} labels; baseline count() over 6 h: {base_ms:.1f} ms "
          f"(median of {args.repeat})\n")
    print("| query | median ms | x baseline | rows |\n|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['query']} | {r['ms']:.1f} | {r['ms'] / base_ms:.1f} | {r['rows']} |")
    total = sum(r["ms"] for r in results if not r["query"].startswith("alert"))
    print(f"\nall panels of the three dashboards together: {total:.0f} ms ({total / base_ms:.0f}x baseline)")
    out = REPO / "bench" / "results" / "dashboards.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"spans": len(spans), "labels": len(labels), "baseline_ms": base_ms,
                               "queries": results}, indent=2))


if __name__ == "__main__":
    main()
