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
        api = {s["span_id"]: (s["duration"], s["status_code"]) for s in found["spans"]}
        assert {r[0]: (r[1], r[2]) for r in rows} == api
        assert {t[0] for t in client.query("SHOW TABLES").result_rows} >= {"otel_traces", "streamtriage_labels"}
        with pytest.raises(Exception) as info:
            client.command("ALTER TABLE otel_traces DELETE WHERE 1")
        assert "164" in str(info.value)
        # ingest still works after the refused write, and the data is untouched
        trace2, ids2 = _emit(svc.url, "tok")
        _wait_for_spans(svc, trace2, ids2)
        assert client.command("SELECT count() FROM otel_traces") == len(span_ids) + len(ids2)


def test_issue_12_reproducers_change_nothing_on_a_running_collector(tmp_path) -> None:
    """The reproducers of issue 12 against ``serve --token --read-token --clickhouse-port``: nothing is
    created or written, no limit is lifted; a Grafana-style read (Native, bound parameters) works."""
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    ch_port = free_port()
    marker = tmp_path / "written-by-reader.csv"

    def post(query: str, params: dict[str, str]) -> tuple[int, str, bytes]:
        auth = base64.b64encode(b"default:reader").decode()
        req = urllib.request.Request(f"http://127.0.0.1:{ch_port}/?{urllib.parse.urlencode(params)}",
                                     data=query.encode(), method="POST", headers={"Authorization": f"Basic {auth}"})
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, "", resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("X-ClickHouse-Exception-Code", ""), err.read()

    with collector_process(tmp_path, token="ingest", args=["--read-token", "reader", "--clickhouse-port", str(ch_port)]):
        status, code, _ = post("SELECT {x:Enum8('}' = 1)}; CREATE TABLE default.pwned (a String) ENGINE=MergeTree "
                               "ORDER BY a; SELECT 1 -- '", {"param_x": "}"})
        assert (status, code) == (400, "62")
        status, code, _ = post(f"INSERT INTO FUNCTION file('{marker}', CSV) SELECT 1", {})
        assert (status, code) == (403, "164")
        status, code, _ = post("SELECT getSetting('max_memory_usage')", {
            "max_memory_usage": "0.5", "max_result_rows": "0.5", "max_result_bytes": "0.5",
            "max_execution_time": "0.0000000001"})
        assert (status, code) == (400, "27")
        for fmt in ("Dataframe", "ArrowTable", "Template"):
            status, code, _ = post("SELECT 1", {"default_format": fmt})
            assert 400 <= status < 500 and code == "73", fmt
        status, _, body = post("EXISTS TABLE default.pwned", {})
        assert (status, body) == (200, b"0\n")
        assert not marker.exists()
        client = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, username="default", password="reader")
        assert client.query("SELECT {n:UInt8} + 1 AS n", parameters={"n": 41}).result_rows == [(42,)]
        from clickhouse_connect.driver.exceptions import DatabaseError

        with pytest.raises(DatabaseError, match="516"):
            clickhouse_connect.get_client(host="127.0.0.1", port=ch_port, username="default", password="ingest")
