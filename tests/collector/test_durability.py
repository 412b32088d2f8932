"""A 200 means durable: overload is refused (429/503 + Retry-After) rather than dropped, a store outage
spools and replays, and ``kill -9`` loses nothing that was acknowledged. Every test counts spans."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import clickhouse_connect
import psutil
import pytest
from google.rpc.status_pb2 import Status

from streamtriage.collector.otlp_decode import PROTOBUF
from tests.collector.conftest import stored_span_ids
from tests.collector.otlp_payloads import make_request, make_span
from tests.conftest import free_port
from tests.support.clickhouse_standin import ClickHouseStandin
from tests.support.collector_proc import CollectorProcess, collector_process


def _send(svc: CollectorProcess, n: int = 20) -> tuple[int, dict[str, str], str, set[str]]:
    trace = os.urandom(16)
    spans = [make_span(trace) for _ in range(n)]
    status, headers, _ = svc.request("POST", "/v1/traces", make_request(spans).SerializeToString(),
                                     {"Content-Type": PROTOBUF})
    return status, headers, trace.hex(), {s.span_id.hex() for s in spans}


def _metric(svc: CollectorProcess, name: str) -> float:
    text = svc.request("GET", "/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("durability", ["insert", "wal"])
def test_kill_9_loses_nothing_acknowledged(tmp_path: Path, durability: str) -> None:
    with collector_process(tmp_path, args=["--durability", durability]) as svc:
        acked: dict[str, set[str]] = {}
        for _ in range(8):
            status, _, trace, ids = _send(svc, 50)
            assert status == 200
            acked[trace] = ids
        workers = [p.pid for p in psutil.Process(svc.proc.pid).children(recursive=True)]
        assert workers, "decoder worker processes expected"
        svc.kill()  # right after the last 200: no graceful flush
        _wait_for(lambda: not any(psutil.pid_exists(w) and psutil.Process(w).status() != psutil.STATUS_ZOMBIE
                                  for w in workers), timeout=10, what="decoder workers to exit with their parent")
        svc.start()
        for trace, ids in acked.items():
            _wait_for(lambda t=trace, i=ids: stored_span_ids(svc, t) == i, what=f"trace {trace} after restart")


def test_overload_is_refused_with_retry_after_and_the_accepted_request_is_kept(tmp_path: Path) -> None:
    env = {"STREAMTRIAGE_QUEUE_MAX_SPANS": "50", "STREAMTRIAGE_BATCH_MAX_AGE_S": "1.5"}
    with collector_process(tmp_path, env=env) as svc:
        results: list[tuple] = []
        threads = [threading.Thread(target=lambda: results.append(_send(svc, 40))) for _ in range(2)]
        threads[0].start()
        time.sleep(0.4)  # the first request to reach the queue sits there for its batch age
        threads[1].start()
        for t in threads:
            t.join(20)
        by_status = {r[0]: r for r in results}
        assert sorted(by_status) == [200, 429], [r[0] for r in results]
        _, headers, refused_trace, _ = by_status[429]
        assert int(headers["retry-after"]) >= 1
        _, _, kept_trace, kept_ids = by_status[200]
        assert stored_span_ids(svc, kept_trace) == kept_ids
        assert stored_span_ids(svc, refused_trace) == set()  # refused means not stored, not half stored
        assert _metric(svc, "streamtriage_requests_refused_overload_total") == 1


def test_store_down_and_spool_full_answers_503_with_retry_after(tmp_path: Path) -> None:
    env = {"STREAMTRIAGE_SPOOL_MAX_BYTES": "1", "STREAMTRIAGE_INSERT_DEADLINE_S": "0.3"}
    with collector_process(tmp_path, store=f"http://127.0.0.1:{free_port()}", env=env) as svc:
        status, _, _, _ = _send(svc)
        assert status == 200  # spooled
        status, headers, _, _ = _send(svc)
        assert status == 503 and int(headers["retry-after"]) >= 1
        body = svc.request("POST", "/v1/traces", make_request([make_span(os.urandom(16))]).SerializeToString(),
                           {"Content-Type": PROTOBUF})[2]
        assert "spool full" in Status.FromString(body).message
        assert _metric(svc, "streamtriage_spans_spooled_total") == 20


def _count_in_store(ch: ClickHouseStandin, trace_ids: list[str]) -> int:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=ch.port)
    try:
        return int(client.query("SELECT count() FROM default.otel_traces WHERE has({t:Array(String)}, TraceId)",
                                parameters={"t": trace_ids}).result_rows[0][0])
    finally:
        client.close()


def test_store_outage_spools_then_replays_in_order(tmp_path: Path) -> None:
    env = {"STREAMTRIAGE_INSERT_DEADLINE_S": "1.0", "STREAMTRIAGE_REPLAY_BACKOFF_MAX_S": "0.5"}
    with ClickHouseStandin(tmp_path / "ch") as ch, collector_process(tmp_path, store=ch.url, env=env) as svc:
        acked: dict[str, set[str]] = {}
        status, _, trace, ids = _send(svc)
        assert status == 200
        acked[trace] = ids
        ch.stop()
        for _ in range(3):
            status, _, trace, ids = _send(svc)
            assert status == 200  # durable in the spool while the store is down
            acked[trace] = ids
        assert _metric(svc, "streamtriage_spans_spooled_total") >= 60
        assert svc.request("GET", "/api/streams/" + trace)[0] == 503
        ch.start()
        _wait_for(lambda: _count_in_store(ch, list(acked)) == 80, what="replay into the restarted store")
        for t, i in acked.items():
            assert stored_span_ids(svc, t) == i
        assert _metric(svc, "streamtriage_spool_bytes") == 0
        assert _metric(svc, "streamtriage_spans_replayed_total") >= 60


def test_spool_survives_kill_9_and_replays_when_the_store_appears(tmp_path: Path) -> None:
    port = free_port()
    env = {"STREAMTRIAGE_INSERT_DEADLINE_S": "0.5", "STREAMTRIAGE_REPLAY_BACKOFF_MAX_S": "0.5"}
    ch = ClickHouseStandin(tmp_path / "ch", port=port)
    with collector_process(tmp_path, store=ch.url, env=env) as svc:
        acked: dict[str, set[str]] = {}
        for _ in range(3):
            status, _, trace, ids = _send(svc)
            assert status == 200
            acked[trace] = ids
        svc.kill()
        with ch:
            svc.start()
            _wait_for(lambda: _count_in_store(ch, list(acked)) == 60, what="replay after kill -9")
            for t, i in acked.items():
                assert stored_span_ids(svc, t) == i
