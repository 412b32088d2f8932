"""What the ClickHouse HTTP layer costs, as ratios against chDB itself, in one run.

    python bench/bench_clickhouse_http.py [--rows 200000] [--repeat 30]

1. ``read``: the read-only endpoint (``collector/clickhouse_http``, guard + ``readonly`` SETTINGS +
   HTTP) against the store client on the same chDB directory, with clickhouse-connect on both
   sides: a point query (latency, median of --repeat) and a full scan returned in Native
   (rows/s). The difference is the guard's ``EXPLAIN AST`` call, HTTP and the byte copy.
2. ``write``: the test stand-in (``tests/support/clickhouse_standin``, a subprocess) receiving
   clickhouse-connect HTTP inserts (lz4 Native bodies) against a bare in-process chDB insert of
   the same rows; each on its own directory.
Prints a markdown table; writes JSON to bench/results/clickhouse_http.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DDL = ("CREATE TABLE IF NOT EXISTS {t} (Timestamp DateTime64(9), TraceId String, SpanName LowCardinality(String), "
       "SpanAttributes Map(LowCardinality(String), String), Duration UInt64) ENGINE = MergeTree ORDER BY Timestamp")
COLS = ["Timestamp", "TraceId", "SpanName", "SpanAttributes", "Duration"]


def rows(n: int) -> list[list]:
    base = dt.datetime(2026, 11, 21, 12, 0, 0)
    return [[base + dt.timedelta(microseconds=i), f"{i:032x}", "chat.completion.chunk",
             {"gen_ai.request.model": f"gpt-{i % 4}", "streamtriage.span": "event", "streamtriage.event.index": str(i % 50)},
             i * 1000] for i in range(n)]


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    import clickhouse_connect

    from streamtriage.collector.sqlendpoint import ChdbEngine, ClickHouseHTTP, start_server
    from tests.support.clickhouse_standin import ClickHouseStandin

    data = rows(args.rows)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ch-http-") as tmp:
        # --- read path ---------------------------------------------------------------------
        store = clickhouse_connect.get_client(dsn=f"chdb://{tmp}/store")
        store.command(DDL.format(t="spans"))
        t0 = time.perf_counter()
        for i in range(0, len(data), 50_000):
            store.insert("spans", data[i:i + 50_000], column_names=COLS)
        direct_insert_s = time.perf_counter() - t0
        server = start_server(ClickHouseHTTP(ChdbEngine(f"{tmp}/store"), database="default"))
        http = clickhouse_connect.get_client(host="127.0.0.1", port=server.port)
        point = "SELECT count() FROM spans WHERE TraceId = '00000000000000000000000000000007'"
        scan = "SELECT * FROM spans ORDER BY Timestamp"
        results["point query (s, median)"] = {"direct": timed(lambda: store.query(point), args.repeat),
                                              "endpoint": timed(lambda: http.query(point), args.repeat)}
        scan_direct = timed(lambda: store.query(scan), 3)
        scan_http = timed(lambda: http.query(scan), 3)
        results["full scan Native (rows/s)"] = {"direct": args.rows / scan_direct, "endpoint": args.rows / scan_http}
        assert http.query(scan).result_rows == store.query(scan).result_rows
        server.stop()

        # --- write path ----------------------------------------------------------------------
        with ClickHouseStandin(Path(tmp) / "standin") as ch:
            remote = clickhouse_connect.get_client(host="127.0.0.1", port=ch.port)
            remote.command(DDL.format(t="spans"))
            t0 = time.perf_counter()
            for i in range(0, len(data), 50_000):
                remote.insert("spans", data[i:i + 50_000], column_names=COLS)
            standin_insert_s = time.perf_counter() - t0
            assert remote.command("SELECT count() FROM spans") == args.rows
        results["insert, 50k-row batches (rows/s)"] = {"direct": args.rows / direct_insert_s,
                                                      "endpoint": args.rows / standin_insert_s}

    print(f"| measure ({args.rows} rows) | chDB direct | over HTTP | HTTP / direct |")
    print("|---|---|---|---|")
    for name, r in results.items():
        fmt = "{:.4f}" if "(s" in name else "{:,.0f}"
        print(f"| {name} | {fmt.format(r['direct'])} | {fmt.format(r['endpoint'])} | {r['endpoint'] / r['direct']:.2f} |")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "clickhouse_http.json").write_text(json.dumps({"rows": args.rows, "results": results}, indent=2))


if __name__ == "__main__":
    main()
