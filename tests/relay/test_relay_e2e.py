"""The relay leg end to end: the example app (examples/relay_app.py) under real uvicorn, a real
WebSocket / HTTP client as the browser, the fault simulator as the provider, the real OTLP exporter,
``streamtriage serve`` and its classifier. Each case checks what the browser saw and the label on
the relay span (which names the upstream cause), and that a healthy relay produces no incident."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from streamtriage.scenario_suite import classify_and_fetch
from streamtriage.simulator import run_simulator
from streamtriage.simulator.faults import fault_model
from tests.conftest import free_port, stop_process
from tests.support.collector_proc import collector_process

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Relay:
    url: str
    collector: str
    sql_port: int


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    tmp = tmp_path_factory.mktemp("relay")
    sql_port = free_port()
    with run_simulator() as sim, collector_process(tmp, args=["--clickhouse-port", str(sql_port)]) as svc:
        port = free_port()
        env = {**os.environ, "STREAMTRIAGE_UPSTREAM": sim.base_url, "OTEL_BSP_SCHEDULE_DELAY": "100",
               "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, str(REPO / "examples" / "relay_app.py"), "--port", str(port),
                                 "--collector", svc.url, "--service", "relay-e2e"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_port(port, proc)
            yield Relay(f"127.0.0.1:{port}", svc.url, sql_port)
        finally:
            stop_process(proc)


def _wait_port(port: int, proc: subprocess.Popen[str]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"relay app exited: {proc.stdout.read() if proc.stdout else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("relay app did not start")


def _ws(relay: Relay, variant: str, model: str, leave_after: int | None = None) -> tuple[str, list[Any], int | None]:
    """Talk to the app as a browser would: returns (trace id, messages received, close code seen)."""
    got: list[Any] = []
    with connect(f"ws://{relay.url}/ws/chat", open_timeout=10) as ws:
        trace_id = json.loads(ws.recv(timeout=10))["trace_id"]
        ws.send(json.dumps({"model": model, "variant": variant}))
        try:
            while True:
                got.append(json.loads(ws.recv(timeout=20)))
                if leave_after is not None and len(got) >= leave_after:
                    break
        except ConnectionClosed as closed:
            return trace_id, got, closed.rcvd.code if closed.rcvd else 1006
    time.sleep(2.5)  # the app goes on relaying into the void; let the upstream stream finish
    return trace_id, got, None


def _labels(relay: Relay, trace_id: str) -> list[dict[str, Any]]:
    return [lb for lb in classify_and_fetch(relay.collector) if lb.get("trace_id") == trace_id]


def _relay_label(labels: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((lb for lb in labels if lb.get("api") == "relay"), None)


def test_healthy_relay_has_no_incident(relay: Relay) -> None:
    tid, got, code = _ws(relay, "careful", fault_model("healthy"))
    assert code == 1000 and got[-1] == {"done": True}
    assert _labels(relay, tid) == []


def test_seed_failure_missing_finish_reason_crashes_the_relay(relay: Relay) -> None:
    """KeyError('finish_reason') -> TypeError in the error handler -> socket dropped (1006)."""
    tid, got, code = _ws(relay, "raw", fault_model("finish-absent"))
    assert code == 1006, (code, got)
    labels = _labels(relay, tid)
    lb = _relay_label(labels)
    assert lb is not None and lb["kb_id"] == "llm/relay-crash-on-upstream-failure", lb
    # the upstream leg, parsed by hand with httpx (instrument_httpx), names the parser bug itself
    upstream = [x for x in labels if x.get("api") == "chat.completions"]
    assert [x["kb_id"] for x in upstream] == ["llm/keyerror-finish-reason-parser"], labels
    says = " ".join(lb["evidence"])  # the rule clauses that matched
    assert "KeyError" in says and "1006" in says


def test_upstream_cut_shown_as_complete(relay: Relay) -> None:
    tid, got, code = _ws(relay, "swallow", fault_model("cut", after=3))
    assert code == 1000 and got[-1] == {"done": True}, "the browser was told the answer is complete"
    labels = _labels(relay, tid)
    lb = _relay_label(labels)
    assert lb is not None and lb["kb_id"] == "llm/relay-partial-answer-shown-complete", labels
    assert any(x.get("api") == "chat.completions" for x in labels), "the upstream call has its own label"


def test_careful_relay_tells_the_client_so_no_relay_incident(relay: Relay) -> None:
    tid, got, code = _ws(relay, "careful", fault_model("cut", after=3))
    assert code == 1011 and "error" in got[-1]
    labels = _labels(relay, tid)
    assert _relay_label(labels) is None, labels
    assert any(x.get("api") == "chat.completions" for x in labels)


def test_client_gone_while_upstream_kept_running(relay: Relay) -> None:
    tid, got, code = _ws(relay, "deaf", fault_model("healthy", n=20, gap=0.1), leave_after=2)
    assert code is None and len(got) == 2
    lb = _relay_label(_labels(relay, tid))
    assert lb is not None and lb["kb_id"] == "llm/relay-client-gone-upstream-kept-running", lb


def test_sse_relay_that_hides_a_cut(relay: Relay) -> None:
    req = urllib.request.Request(f"http://{relay.url}/sse/chat?model={fault_model('cut', after=3)}")
    with urllib.request.urlopen(req, timeout=20) as resp:
        tid = resp.headers["x-trace-id"]
        body = resp.read().decode()
    assert body.rstrip().endswith("data: [DONE]")
    lb = _relay_label(_labels(relay, tid))
    assert lb is not None and lb["kb_id"] == "llm/relay-partial-answer-shown-complete", lb


def test_relay_panels_and_alert_show_these_relays(relay: Relay) -> None:
    """Runs last (file order): the relay dashboard and its alert over the relays above, through the
    collector's read-only ClickHouse endpoint, as Grafana would."""
    import datetime as dt

    import clickhouse_connect

    from streamtriage.dashboards.alerts import render_alert_rules
    from streamtriage.dashboards.definitions import DASHBOARDS
    from streamtriage.dashboards.definitions import relay as relay_dash
    from streamtriage.dashboards.macros import QueryContext, expand_alert_sql, expand_panel_sql
    from streamtriage.dashboards.queries import alert_queries, context_for, panel_queries

    classify_and_fetch(relay.collector)
    client = clickhouse_connect.get_client(host="127.0.0.1", port=relay.sql_port)
    now = dt.datetime.now(dt.timezone.utc)
    dash = DASHBOARDS[relay_dash.UID]()
    ctx = context_for(dash, now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1))
    results = {q.title: client.query(expand_panel_sql(q.sql, ctx)) for q in panel_queries(dash)}
    first = {title: r.result_rows[0][0] if r.result_rows else None for title, r in results.items()}
    assert first["Relay crashes caused by upstream failures"] >= 1
    assert first["Partial answers shown as complete"] >= 2  # the WebSocket and the SSE relay
    assert first["Clients gone, upstream kept running"] >= 1
    endings = {row[1] for row in results["Relay endings by cause"].result_rows}
    assert {"server_crash", "client_disconnect", "app_close", "completed"} <= endings
    doc = render_alert_rules(collector_url="http://c", dashboards={k: b() for k, b in DASHBOARDS.items()})
    (crash_alert,) = [q for q in alert_queries(doc) if "relay-crash" in q.where]
    rows = client.query(expand_alert_sql(crash_alert.sql, QueryContext(now - dt.timedelta(hours=1), now))).result_rows
    assert rows == [("relay-e2e", first["Relay crashes caused by upstream failures"])], \
        "the alert counts what the panel it links to counts"
