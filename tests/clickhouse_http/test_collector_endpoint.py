"""``streamtriage serve --clickhouse-port`` on the embedded chDB store: what Grafana would query
through the endpoint is what the collector stored (seen through the collector's own read API)."""
from __future__ import annotations

import clickhouse_connect
import pytest

from tests.clickhouse_http.test_http_store_path import _emit, _wait_for_spans
from tests.conftest import free_port
from tests.support.collector_proc import collector_process


def test_embedded_collector_serves_its_store_read_only(tmp_path) -> None:
    ch_port = free_port()
    with collector_process(tmp_path, token="tok", args=["--clickhouse-port", str(ch_port)]) as svc:
        trace_id, span_ids = _emit(svc.url, "tok")
        found = _wait_for_spans(svc, trace_id, span_ids)
        client = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, username="default", password="tok")
        rows = client.query("SELECT SpanId, Duration, StatusCode FROM otel_traces WHERE TraceId = {t:String}",
                            parameters={"t": trace_id}).result_rows
        api = {s["SpanId"]: (s["Duration"], s["StatusCode"]) for s in found["spans"]}
        assert {r[0]: (r[1], r[2]) for r in rows} == api
        assert {t[0] for t in client.query("SHOW TABLES").result_rows} >= {"otel_traces", "streamtriage_labels"}
        with pytest.raises(Exception) as info:
            client.command("ALTER TABLE otel_traces DELETE WHERE 1")
        assert "164" in str(info.value)
        # ingest still works after the refused write, and the data is untouched
        trace2, ids2 = _emit(svc.url, "tok")
        _wait_for_spans(svc, trace2, ids2)
        assert client.command("SELECT count() FROM otel_traces") == len(span_ids) + len(ids2)
