"""The official clients query the read-only endpoint and see what the store itself returns:
clickhouse-connect's HTTP client (Native/RowBinary/JSON) and the Node ``@clickhouse/client``."""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.conftest import REPO

NODE_DIR = REPO / "tests" / "node"
TYPED_SQL = "SELECT id, delta, ratio, name, model, ts, day, attrs, tags, maybe FROM sample ORDER BY id"


def http_client(endpoint, **kw):
    return clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port, **kw)


def test_version_timezone_and_server_settings_handshake(endpoint, store_db) -> None:
    store, _ = store_db
    client = http_client(endpoint)
    assert client.server_version == store.server_version
    assert client.command("SELECT timezone()") == store.command("SELECT timezone()")
    # the handshake read system.settings through the endpoint
    assert "max_execution_time" in client.server_settings


@pytest.mark.parametrize("compress", [True, False])
def test_typed_rows_native_match_the_store(endpoint, store_db, compress) -> None:
    store, _ = store_db
    client = http_client(endpoint, compress=compress)
    via_http = client.query(TYPED_SQL)
    direct = store.query(TYPED_SQL)
    assert via_http.column_names == direct.column_names
    assert [str(t) for t in via_http.column_types] == [str(t) for t in direct.column_types]
    assert via_http.result_rows == direct.result_rows
    assert len(via_http.result_rows) == 50
    assert via_http.result_rows[3][8] == ["t0", "t1", "t2"] and via_http.result_rows[5][9] is None


@pytest.mark.parametrize("fmt", ["Native", "RowBinary", "RowBinaryWithNamesAndTypes", "TabSeparatedWithNamesAndTypes", "CSVWithNames"])
def test_raw_formats_are_byte_identical_to_the_store(endpoint, store_db, fmt) -> None:
    store, _ = store_db
    client = http_client(endpoint)
    assert client.raw_query(TYPED_SQL, fmt=fmt) == store.raw_query(TYPED_SQL, fmt=fmt)


def test_json_format_matches_the_store_apart_from_timings(endpoint, store_db) -> None:
    store, _ = store_db
    via_http = json.loads(http_client(endpoint).raw_query(TYPED_SQL, fmt="JSON"))
    direct = json.loads(store.raw_query(TYPED_SQL, fmt="JSON"))
    assert via_http["meta"] == direct["meta"] and via_http["data"] == direct["data"]
    assert via_http["rows"] == 50


def test_bound_parameters(endpoint) -> None:
    client = http_client(endpoint)
    rows = client.query("SELECT name FROM sample WHERE model = {m:String} AND id < {n:UInt32} ORDER BY id",
                        parameters={"m": "gpt-1", "n": 10}).result_rows
    assert rows == [("name-1",), ("name-4",), ("name-7",)]
    assert client.query("SELECT {s:String}", parameters={"s": "it's; DROP TABLE sample"}).result_rows == [
        ("it's; DROP TABLE sample",)]


def test_bad_queries_raise_clickhouse_errors(endpoint) -> None:
    client = http_client(endpoint)
    with pytest.raises(DatabaseError) as syntax:
        client.query("SELECT id FROM sample WHERE")
    assert "Code: 62" in str(syntax.value) and "SYNTAX_ERROR" in str(syntax.value)
    with pytest.raises(DatabaseError) as missing:
        client.query("SELECT * FROM no_such_table")
    assert "Code: 60" in str(missing.value) and "UNKNOWN_TABLE" in str(missing.value)
    with pytest.raises(DatabaseError) as refused:
        client.command("DROP TABLE sample")
    assert "Code: 164" in str(refused.value)
    assert client.query("SELECT count() FROM sample").result_rows == [(50,)]


def _get(url: str, data: bytes | None = None, headers: dict[str, str] | None = None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_protocol_headers_format_clause_and_query_in_url_plus_body(endpoint, store_db) -> None:
    store, _ = store_db
    q = urllib.parse.urlencode({"query": "SELECT id, name FROM sample WHERE id <", "query_id": "q-123",
                                "default_format": "JSONCompact"})
    status, headers, body = _get(f"{endpoint.url}/?{q}", data=b"3 ORDER BY id")
    assert status == 200, body
    assert headers["X-ClickHouse-Query-Id"] == "q-123"
    assert headers["X-ClickHouse-Format"] == "JSONCompact"
    assert headers["X-ClickHouse-Timezone"] and headers["X-ClickHouse-Server-Display-Name"] == "streamtriage"
    summary = json.loads(headers["X-ClickHouse-Summary"])
    assert summary["result_rows"] == "3" and int(summary["read_rows"]) >= 3
    expected = json.loads(store.raw_query("SELECT id, name FROM sample WHERE id < 3 ORDER BY id", fmt="JSONCompact"))
    assert json.loads(body)["data"] == expected["data"] and len(expected["data"]) == 3
    # a FORMAT clause wins over default_format, and is reported
    status, headers, body = _get(f"{endpoint.url}/?default_format=CSV&param_n=2",
                                 data=b"SELECT id FROM sample WHERE id < {n:UInt8} ORDER BY id FORMAT JSONEachRow")
    assert status == 200 and headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert body == store.raw_query("SELECT id FROM sample WHERE id < 2 ORDER BY id", fmt="JSONEachRow")
    assert [json.loads(line)["id"] in (0, "0") for line in body.splitlines()] == [True, False]
    assert _get(f"{endpoint.url}/ping")[2] == b"Ok.\n"


def test_error_response_shape(endpoint) -> None:
    status, headers, body = _get(f"{endpoint.url}/?query=" + urllib.parse.quote("SELECT * FROM no_such_table"))
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "60"
    assert body.startswith(b"Code: 60. DB::Exception: ") and b"(UNKNOWN_TABLE)" in body


def _node(endpoint, requests: list[dict], user: str = "", password: str = "") -> list[dict]:
    node = shutil.which("node")
    assert node, "node is not installed (scripts/test.sh installs the Node client when npm exists)"
    assert (NODE_DIR / "node_modules" / "@clickhouse" / "client").is_dir(), \
        "run `npm install --prefix tests/node` (scripts/test.sh does)"
    out = subprocess.run([node, str(NODE_DIR / "ch_query.mjs"), endpoint.url, user, password],
                         input=json.dumps(requests).encode(), capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return json.loads(out.stdout)


def test_node_client_queries_the_endpoint(endpoint, store_db) -> None:
    store, _ = store_db
    sql = "SELECT id, delta, ratio, name, ts, attrs, tags, maybe FROM sample WHERE id < 6 ORDER BY id"
    results = _node(endpoint, [
        {"kind": "ping"},
        {"kind": "query", "query": "SELECT version() AS v"},
        {"kind": "query", "query": sql, "format": "JSON"},
        {"kind": "query", "query": sql, "format": "JSONEachRow"},
        {"kind": "query", "query": "SELECT name FROM sample WHERE id = {id:UInt64}", "format": "JSONCompactEachRow",
         "params": {"id": 7}},
        {"kind": "query", "query": "SELECT id FROM sample WHERE"},
        {"kind": "command", "query": "TRUNCATE TABLE sample"},
    ])
    ping, version, as_json, each_row, params, bad, refused = results
    assert ping == {"ok": True}
    assert version["data"] == [{"v": store.server_version}]
    direct = json.loads(store.raw_query(sql, fmt="JSON"))
    assert as_json["data"]["meta"] == direct["meta"] and as_json["data"]["data"] == direct["data"]
    assert each_row["data"] == direct["data"]
    assert params["data"] == [["name-7"]]
    assert bad["ok"] is False and bad["code"] == "62" and bad["type"] == "SYNTAX_ERROR"
    assert refused["ok"] is False and refused["code"] == "164" and refused["type"] == "READONLY"
    assert store.command("SELECT count() FROM sample") == 50


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "lz4", "zstd"])
def test_http_response_compression(endpoint, store_db, encoding) -> None:
    import gzip
    import zlib

    import lz4.frame

    from streamtriage.collector.sqlendpoint.codecs import zstd_module as _zstd

    store, _ = store_db
    status, headers, body = _get(f"{endpoint.url}/?enable_http_compression=1&default_format=Native",
                                 data=TYPED_SQL.encode(), headers={"Accept-Encoding": f"{encoding}, identity"})
    assert status == 200 and headers["Content-Encoding"] == encoding
    decode = {"gzip": gzip.decompress, "deflate": zlib.decompress, "lz4": lz4.frame.decompress,
              "zstd": _zstd().decompress}[encoding]
    assert decode(body) == store.raw_query(TYPED_SQL, fmt="Native")


def test_block_compression_is_refused_clearly(endpoint) -> None:
    status, headers, body = _get(f"{endpoint.url}/?compress=1", data=b"SELECT 1")
    assert status == 501 and headers["X-ClickHouse-Exception-Code"] == "48" and b"enable_http_compression" in body


def test_form_encoded_queries_and_parameters(endpoint) -> None:
    client = http_client(endpoint, form_encode_query_params=True)
    rows = client.query("SELECT name FROM sample WHERE id IN {ids:Array(UInt32)} ORDER BY id",
                        parameters={"ids": [2, 4]}).result_rows
    assert rows == [("name-2",), ("name-4",)]


def test_grafana_plugin_style_requests(make_endpoint, store_db) -> None:
    """What clickhouse-go's HTTP transport (the Grafana plugin) sends: POST body, default_format=Native,
    database and settings as URL parameters, basic auth; plus the plugin's schema-browsing queries."""
    import base64

    from streamtriage.collector.sqlendpoint import Credentials

    store, db = store_db
    ep = make_endpoint(credentials=Credentials("grafana", "tok"))
    auth = {"Authorization": "Basic " + base64.b64encode(b"grafana:tok").decode(),
            "Content-Type": "text/plain; charset=utf-8"}
    params = urllib.parse.urlencode({"database": db, "default_format": "Native", "max_execution_time": "60",
                                     "query_id": "grafana-1"})
    status, headers, body = _get(f"{ep.url}/?{params}", data=TYPED_SQL.encode(), headers=auth)
    assert status == 200 and headers["X-ClickHouse-Format"] == "Native"
    assert body == store.raw_query(TYPED_SQL, fmt="Native")
    for sql in ["SELECT 1", "SELECT version()", "SHOW DATABASES", f"SHOW TABLES FROM `{db}`", f"DESC TABLE `{db}`.`sample`",
                f"SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'sample'",
                "SELECT timeZone()"]:
        status, _, body = _get(f"{ep.url}/?{params}", data=sql.encode(), headers=auth)
        assert status == 200 and body == store.raw_query(sql, fmt="Native"), sql
    # the plugin's row limit setting, and gzip both ways (the plugin's compression over HTTP)
    import gzip

    limited = urllib.parse.urlencode({"database": db, "default_format": "JSONCompactEachRow", "limit": "5",
                                      "enable_http_compression": "1"})
    status, headers, body = _get(f"{ep.url}/?{limited}", data=gzip.compress(TYPED_SQL.encode()),
                                 headers={**auth, "Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert len(gzip.decompress(body).splitlines()) == 5


def test_node_client_with_credentials(make_endpoint) -> None:
    from streamtriage.collector.sqlendpoint import Credentials

    ep = make_endpoint(credentials=Credentials("grafana", "tok"))
    ok, bad = _node(ep, [{"kind": "query", "query": "SELECT count() AS n FROM sample"}], "grafana", "tok")[0], \
        _node(ep, [{"kind": "query", "query": "SELECT 1"}], "grafana", "wrong")[0]
    assert ok["ok"] is True and ok["data"] == [{"n": 50}]
    assert bad == {"ok": False, "code": "516", "type": "AUTHENTICATION_FAILED", "message": bad["message"]}
