"""The production store path, end to end: the real OTLP exporter -> ``streamtriage serve --store
http://...`` -> clickhouse-connect over HTTP -> the ClickHouse stand-in. The collector's read-only
ClickHouse endpoint (``--clickhouse-port``) is then backed by that server and returns what the
server itself returns."""
from __future__ import annotations

import time
from collections.abc import Iterator

import clickhouse_connect
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.conftest import free_port
from tests.support.clickhouse_standin import ClickHouseStandin
from tests.support.collector_proc import CollectorProcess, collector_process

DB = "st_http"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClickHouseStandin, CollectorProcess, int]]:
    root = tmp_path_factory.mktemp("http_store")
    ch_port = free_port()
    with ClickHouseStandin(root / "clickhouse") as server:
        with collector_process(root, store=f"{server.url}/{DB}", token="t0ken",
                               args=["--clickhouse-port", str(ch_port)]) as svc:
            yield server, svc, ch_port


def _emit(url: str, token: str) -> tuple[str, set[str]]:
    provider = TracerProvider(resource=Resource.create({"service.name": "http-store-app"}))
    exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("streamtriage.instrumentation.openai", "0.1.0")
    span_ids = set()
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
        "streamtriage.span": "call", "streamtriage.contract": 1, "streamtriage.api": "chat.completions",
        "streamtriage.call.mode": "stream", "streamtriage.outcome": "transport_error",
        "streamtriage.terminal.seen": False, "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini", "streamtriage.request.fingerprint": "0123456789abcdef",
        "streamtriage.exception.type": "openai.APIConnectionError", "error.type": "openai.APIConnectionError",
        "streamtriage.exception.chain": ("openai.APIConnectionError", "httpx2.RemoteProtocolError"),
        "streamtriage.exception.message": "peer closed connection without sending complete message body "
                                          "(incomplete chunked read)",
        "streamtriage.event.count": 3, "streamtriage.delta.count": 3, "http.response.status_code": 200,
    }) as call:
        for i in range(3):
            with tracer.start_as_current_span("chat.completion.chunk", attributes={
                "streamtriage.span": "event", "streamtriage.event.index": i, "streamtriage.event.count": 1,
                "streamtriage.event.gap_ms": 5.0}) as ev:
                span_ids.add(format(ev.get_span_context().span_id, "016x"))
        call.set_status(Status(StatusCode.ERROR, "peer closed connection"))
        span_ids.add(format(call.get_span_context().span_id, "016x"))
        trace_id = format(call.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id, span_ids


def _wait_for_spans(svc: CollectorProcess, trace_id: str, want: set[str], timeout_s: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout_s
    found: dict = {}
    while time.monotonic() < deadline:
        status, _, body = svc.request("GET", f"/api/streams/{trace_id}")
        if status == 200:
            import json

            found = json.loads(body)
            if {s["span_id"] for s in found["spans"]} == want:
                return found
        time.sleep(0.1)
    raise AssertionError(f"spans of {trace_id} not stored in {timeout_s}s: {found}")


def test_ingest_lands_in_the_http_store_and_reads_back(stack) -> None:
    server, svc, _ = stack
    trace_id, span_ids = _emit(svc.url, "t0ken")
    found = _wait_for_spans(svc, trace_id, span_ids)
    assert found["call"]["status_code"] == "Error"
    direct = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, database=DB)
    rows = direct.query("SELECT SpanId, SpanAttributes['streamtriage.span'] FROM otel_traces WHERE TraceId = {t:String}",
                        parameters={"t": trace_id}).result_rows
    assert {r[0] for r in rows} == span_ids
    assert sorted(r[1] for r in rows) == ["call", "event", "event", "event"]


def test_clickhouse_endpoint_on_a_server_store_matches_the_server(stack) -> None:
    server, svc, ch_port = stack
    trace_id, span_ids = _emit(svc.url, "t0ken")
    _wait_for_spans(svc, trace_id, span_ids)
    sql = ("SELECT TraceId, SpanId, ParentSpanId, SpanName, Duration, StatusCode, SpanAttributes "
           "FROM otel_traces ORDER BY Timestamp, SpanId")
    direct = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, database=DB)
    via_endpoint = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, username="default", password="t0ken")
    assert via_endpoint.query(sql).result_rows == direct.query(sql).result_rows
    assert len(direct.query(sql).result_rows) >= 4
    assert via_endpoint.raw_query(sql, fmt="RowBinaryWithNamesAndTypes") == direct.raw_query(sql, fmt="RowBinaryWithNamesAndTypes")
    # still read-only, even though the server behind it accepts writes
    with pytest.raises(Exception) as info:
        via_endpoint.command("TRUNCATE TABLE otel_traces")
    assert "164" in str(info.value)
    assert direct.command("SELECT count() FROM otel_traces") >= 4
    with pytest.raises(Exception) as info:
        clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, username="default", password="wrong")
    assert "516" in str(info.value)


def test_classifier_labels_calls_through_the_http_store(stack) -> None:
    """Ingest -> classify -> read labels back, every step over HTTP to the server store."""
    from streamtriage.classifier.service import Classifier

    server, svc, ch_port = stack
    trace_id, span_ids = _emit(svc.url, "t0ken")
    found = _wait_for_spans(svc, trace_id, span_ids)
    store = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, database=DB)
    result = Classifier(store, DB, slack_s=5).run_once()
    mine = [lb for lb in result["labels"] if lb["trace_id"] == trace_id]
    assert len(mine) == 1 and mine[0]["span_id"] == found["call"]["span_id"]
    kb_id = mine[0]["kb_id"]
    assert kb_id.startswith("llm/")
    incidents = svc.get_json("/api/incidents?since=1h")
    assert any(i.get("trace_id") == trace_id and i.get("kb_id") == kb_id for i in incidents), incidents[:3]
    grafana = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, username="default", password="t0ken")
    rows = grafana.query("SELECT KbId FROM streamtriage_labels FINAL WHERE TraceId = {t:String} AND IsDeleted = 0",
                         parameters={"t": trace_id}).result_rows
    assert rows == [(kb_id,)]
