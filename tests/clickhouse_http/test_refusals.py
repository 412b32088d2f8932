"""Every write or escape attempt is refused with a ClickHouse-style error, nothing changes, and the
limits stop runaway queries. All through real HTTP against the endpoint on the embedded store."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from streamtriage.collector.sqlendpoint import Credentials, Limits

SECRET = "streamtriage-secret-marker-7f3a"


def post(endpoint, sql: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None):
    url = f"{endpoint.url}/?{urllib.parse.urlencode(params or {})}"
    req = urllib.request.Request(url, data=sql.encode(), headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("outside") / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def escape_attempts(secret: Path, out: Path) -> list[tuple[str, str]]:
    s, o = str(secret), str(out)
    return [
        # writes and DDL, in any case, behind comments
        ("insert", "INSERT INTO sample (id) VALUES (999)"),
        ("insert-format", "INSERT INTO sample (id) FORMAT Values (999)"),
        ("insert-select", "insert into sample (id) select 999"),
        ("lower-drop", "drop table sample"),
        ("comment-drop", "/* SELECT */ DROP TABLE sample"),
        ("line-comment-drop", "-- SELECT 1\nDROP TABLE sample"),
        ("alter", "ALTER TABLE sample DELETE WHERE 1"),
        ("alter-update", "ALTER TABLE sample UPDATE name = 'x' WHERE 1"),
        ("delete", "DELETE FROM sample WHERE 1"),
        ("update", "UPDATE sample SET name = 'x' WHERE 1"),
        ("create", "CREATE TABLE evil (a UInt8) ENGINE = Memory"),
        ("create-view", "CREATE VIEW evil AS SELECT 1"),
        ("truncate", "TRUNCATE TABLE sample"),
        ("rename", "RENAME TABLE sample TO sample2"),
        ("detach", "DETACH TABLE sample"),
        ("optimize", "OPTIMIZE TABLE sample FINAL"),
        ("kill", "KILL QUERY WHERE 1"),
        ("system", "SYSTEM FLUSH LOGS"),
        ("system-shutdown", "SYSTEM SHUTDOWN"),
        ("set", "SET readonly = 0"),
        ("grant", "GRANT ALL ON *.* TO default"),
        ("backup", f"BACKUP TABLE sample TO File('{o}')"),
        ("use", "USE system"),
        # multi-statements, including separators hidden from naive splitting
        ("multi", "SELECT 1; DROP TABLE sample"),
        ("multi-comment", "SELECT 1; /* harmless */ DROP TABLE sample"),
        ("multi-string", "SELECT ';'; DROP TABLE sample"),
        ("multi-after-line-comment", "SELECT 1 -- x\n; DROP TABLE sample"),
        ("multi-quoted-ident", "SELECT 1 AS `a;b`; TRUNCATE TABLE sample"),
        # outside data: table functions anywhere
        ("file", f"SELECT * FROM file('{s}', LineAsString)"),
        ("file-upper", f"SELECT * FROM FILE('{s}', LineAsString)"),
        ("file-backquoted", f"SELECT * FROM `file`('{s}', LineAsString)"),
        ("file-scalar", f"SELECT file('{s}')"),
        ("file-scalar-lambda", f"SELECT arrayMap(x -> file(x), ['{s}'])"),
        ("file-in-subquery", f"SELECT count() FROM sample WHERE name IN (SELECT line FROM file('{s}', LineAsString))"),
        ("file-nested", f"SELECT * FROM (SELECT * FROM (SELECT * FROM file('{s}', LineAsString)))"),
        ("with-file", f"WITH x AS (SELECT * FROM file('{s}', LineAsString)) SELECT * FROM x"),
        ("with-scalar-file", f"WITH file('{s}') AS f SELECT f"),
        ("join-url", "SELECT * FROM sample JOIN url('http://127.0.0.1:9/x', CSV, 'a String') AS u ON 1"),
        ("union-url", "SELECT name FROM sample UNION ALL SELECT * FROM url('http://127.0.0.1:9/x', LineAsString)"),
        ("view-file", f"SELECT * FROM view(SELECT * FROM file('{s}', LineAsString))"),
        ("s3", "SELECT * FROM s3('http://127.0.0.1:9/bucket/x.csv', CSV)"),
        ("remote", "SELECT * FROM remote('127.0.0.1:9000', system.one)"),
        ("remote-secure", "SELECT * FROM remoteSecure('127.0.0.1:9440', system.one)"),
        ("cluster", "SELECT * FROM cluster('default', system.one)"),
        ("mysql", "SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')"),
        ("postgresql", "SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')"),
        ("jdbc", "SELECT * FROM jdbc('jdbc:x', 'db', 't')"),
        ("odbc", "SELECT * FROM odbc('DSN=x', 'db', 't')"),
        ("hdfs", "SELECT * FROM hdfs('hdfs://127.0.0.1:9000/x', CSV)"),
        ("azure", "SELECT * FROM azureBlobStorage('http://127.0.0.1:9/x', 'c', 'b', 'CSV')"),
        ("executable", "SELECT * FROM executable('cat /etc/passwd', LineAsString)"),
        ("sqlite", f"SELECT * FROM sqlite('{s}', 't')"),
        ("merge", "SELECT * FROM merge('system', '.*')"),
        ("dictionary", "SELECT * FROM dictionary('d')"),
        ("input", "SELECT * FROM input('a String')"),
        # output to the server's disk
        ("into-outfile", f"SELECT * FROM sample INTO OUTFILE '{o}'"),
        ("into-outfile-format", f"SELECT 1 INTO OUTFILE '{o}' TRUNCATE FORMAT CSV"),
        # settings inside the query
        ("settings-readonly", "SELECT 1 SETTINGS readonly = 0"),
        ("settings-nested", "SELECT * FROM (SELECT 1 SETTINGS max_execution_time = 0)"),
        ("settings-limit", "SELECT count() FROM numbers(10) SETTINGS max_result_rows = 0"),
        # explain of something that is not read-only
        ("explain-table-override", "EXPLAIN TABLE OVERRIDE mysql('a:1', 'b', 'c', 'd', 'e') PARTITION BY x"),
        ("explain-file", f"EXPLAIN SELECT * FROM file('{s}', LineAsString)"),
        ("show-grants", "SHOW GRANTS"),
    ]


def _state(store) -> tuple:
    return (store.command("SELECT count() FROM sample"), store.command("SELECT sum(id) FROM sample"),
            store.command("SELECT groupArray(name) FROM (SELECT name FROM sample ORDER BY id)"),
            store.command("SELECT count() FROM system.tables WHERE database = currentDatabase()"))


def test_each_escape_attempt_is_refused(endpoint, store_db, secret_file, tmp_path) -> None:
    store, _ = store_db
    out = tmp_path / "out.csv"
    before = _state(store)
    unrefused = []
    for name, sql in escape_attempts(secret_file, out):
        status, headers, body = post(endpoint, sql)
        code = headers.get("X-ClickHouse-Exception-Code")
        ok_shape = (status in (400, 403) and code in ("62", "164", "497")
                    and body.startswith(f"Code: {code}. DB::Exception: ".encode()))
        if not ok_shape or SECRET.encode() in body:
            unrefused.append((name, status, code, body[:200]))
    assert unrefused == []
    assert _state(store) == before
    assert not out.exists()


@pytest.mark.parametrize("params", [
    {"readonly": "0"}, {"readonly": "false"}, {"allow_ddl": "1"}, {"allow_introspection_functions": "1"},
    {"max_execution_time": "abc"}, {"async_insert": "1"}, {"user_files_path": "/"},
    {"format_template_row": "/etc/passwd"}, {"format_schema": "/etc/passwd:x"}, {"output_format_schema": "/tmp/x"},
    {"format_display_secrets_in_show_and_select": "1"},
])
def test_settings_injection_through_url_params_is_refused(endpoint, params) -> None:
    status, headers, body = post(endpoint, "SELECT 1", params=params)
    assert status in (400, 403), body
    assert headers["X-ClickHouse-Exception-Code"] in ("164", "36", "27")
    assert b"DB::Exception" in body


LIMIT_SQL = ("SELECT getSetting('max_execution_time'), getSetting('max_result_rows'), getSetting('max_result_bytes'), "
             "getSetting('max_memory_usage'), getSetting('readonly') FORMAT JSONCompactEachRow")


@pytest.mark.parametrize("asked,code", [
    ({"max_memory_usage": "0.5"}, "27"), ({"max_result_rows": "0.5"}, "27"), ({"max_result_bytes": "0.5"}, "27"),
    ({"max_execution_time": "0.0000000001"}, "27"), ({"max_execution_time": "1e3"}, "27"),
    ({"max_result_rows": "-1"}, "27"), ({"max_result_rows": " 5"}, "27"), ({"max_threads": "0x10"}, "27"),
    ({"max_execution_time": "0"}, "452"), ({"max_result_rows": "0"}, "452"), ({"max_memory_usage": "0"}, "452"),
    ({"max_execution_time": "99999"}, "452"), ({"max_result_rows": "10000000000"}, "452"),
    ({"max_memory_usage": str(1 << 40)}, "452"), ({"max_threads": "64"}, "452"),
    ({"result_overflow_mode": "any"}, "36"), ({"extremes": "2"}, "27"),
])
def test_limits_cannot_be_raised_zeroed_or_made_fractional(endpoint, asked, code) -> None:
    status, headers, body = post(endpoint, LIMIT_SQL, params=asked)
    assert 400 <= status < 500 and headers["X-ClickHouse-Exception-Code"] == code, body


def test_limits_can_be_lowered_and_the_engine_uses_the_parsed_value(endpoint) -> None:
    caps = Limits()
    status, _, body = post(endpoint, LIMIT_SQL, params={"readonly": "1"})
    assert status == 200, body
    row = json.loads(body)
    assert [int(float(v)) for v in row] == [caps.max_execution_time, caps.max_result_rows, caps.max_result_bytes,
                                            caps.max_memory_usage, 1]
    status, _, body = post(endpoint, LIMIT_SQL, params={"max_execution_time": "5", "max_result_rows": "010",
                                                         "max_result_bytes": "1000000", "max_memory_usage": "100000000"})
    assert status == 200, body
    assert [int(float(v)) for v in json.loads(body)] == [5, 10, 1_000_000, 100_000_000, 1]


def test_allowed_read_statements_pass(endpoint) -> None:
    for sql in ["SHOW TABLES", "SHOW DATABASES", "DESCRIBE TABLE sample", "DESC sample", "EXISTS TABLE sample",
                "SHOW CREATE TABLE sample", "EXPLAIN SELECT count() FROM sample", "EXPLAIN AST SELECT 1",
                "WITH m AS (SELECT model FROM sample) SELECT count() FROM m",
                "(SELECT 1) UNION ALL (SELECT 2)", "SELECT 1 INTERSECT SELECT 1",
                "SELECT count() FROM numbers(10)", "SELECT name FROM system.tables LIMIT 1",
                "SELECT format('{}-{}', 'a', 'b')", "-- leading comment\nSELECT 1;", "select 1 /* ; */ ;  -- done"]:
        status, _, body = post(endpoint, sql)
        assert status == 200, (sql, body)


def test_identifier_parameters_cannot_smuggle_table_functions(endpoint, secret_file) -> None:
    status, headers, body = post(endpoint, "SELECT * FROM {t:Identifier}",
                                 params={"param_t": f"file('{secret_file}', LineAsString)"})
    assert status != 200 and SECRET.encode() not in body


def test_runaway_query_is_stopped_by_the_time_limit(make_endpoint) -> None:
    ep = make_endpoint(limits=Limits(max_execution_time=1))
    started = time.monotonic()
    status, headers, body = post(ep, "SELECT count() FROM numbers_mt(1000000000000)")
    took = time.monotonic() - started
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "159", body
    assert b"TIMEOUT_EXCEEDED" in body
    assert took < 10


def test_result_rows_and_memory_limits(make_endpoint) -> None:
    ep = make_endpoint(limits=Limits(max_result_rows=100, max_memory_usage=20 * 1024 * 1024))
    status, headers, body = post(ep, "SELECT number FROM numbers(1000)")
    assert headers["X-ClickHouse-Exception-Code"] == "396", body
    status, headers, body = post(ep, "SELECT groupArray(number) FROM numbers(50000000)")
    assert headers["X-ClickHouse-Exception-Code"] == "241", body
    status, _, body = post(ep, "SELECT number FROM numbers(100) FORMAT JSONEachRow")
    assert status == 200 and len(body.splitlines()) == 100


def test_credentials_when_the_collector_has_a_token(make_endpoint) -> None:
    ep = make_endpoint(credentials=Credentials("grafana", "s3cret-token"))
    import base64

    basic = base64.b64encode(b"grafana:s3cret-token").decode()
    accepted = [
        {"Authorization": f"Basic {basic}"},
        {"Authorization": "Bearer s3cret-token"},
        {"X-ClickHouse-User": "grafana", "X-ClickHouse-Key": "s3cret-token"},
    ]
    for headers in accepted:
        status, _, body = post(ep, "SELECT 1", headers=headers)
        assert (status, body) == (200, b"1\n"), headers
    status, _, body = post(ep, "SELECT 1", params={"user": "grafana", "password": "s3cret-token"})
    assert status == 200
    rejected = [
        ({}, "194"),
        ({"Authorization": "Basic " + base64.b64encode(b"grafana:wrong").decode()}, "516"),
        ({"Authorization": "Basic " + base64.b64encode(b"other:s3cret-token").decode()}, "516"),
        ({"Authorization": "Bearer nope"}, "516"),
        ({"X-ClickHouse-User": "grafana", "X-ClickHouse-Key": ""}, "516"),
    ]
    for headers, code in rejected:
        status, resp_headers, body = post(ep, "SELECT 1", headers=headers)
        assert status == 401 and resp_headers["X-ClickHouse-Exception-Code"] == code, (headers, body)


def test_oversized_query_body_is_refused(endpoint) -> None:
    status, headers, body = post(endpoint, "SELECT 1 " + " " * (2 << 20))
    assert status == 413 and headers["X-ClickHouse-Exception-Code"] == "36"


def test_threads_are_capped_for_endpoint_queries(make_endpoint) -> None:
    ep = make_endpoint(limits=Limits(max_threads=1))
    status, _, body = post(ep, "SELECT getSetting('max_threads')")
    assert (status, body) == (200, b"1\n")
    status, headers, _ = post(ep, "SELECT getSetting('max_threads')", params={"max_threads": "64"})
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "452")


def test_query_id_is_not_echoed_into_headers_verbatim(endpoint) -> None:
    status, headers, body = post(endpoint, "SELECT 1", params={"query_id": "a\r\nX-Evil: 1"})
    assert status == 200 and "X-Evil" not in headers and "\n" not in headers["X-ClickHouse-Query-Id"]


def test_compressed_body_is_bounded_and_read_only_after_authentication(make_endpoint) -> None:
    import gzip

    bomb = gzip.compress(b"SELECT 1 " + b" " * (64 << 20))  # ~64 KiB on the wire, 64 MiB inflated
    ep = make_endpoint(credentials=Credentials("u", "p"))
    status, headers, _ = post_raw(ep, bomb, {"Content-Encoding": "gzip"})
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (401, "194")  # refused before inflating
    status, headers, body = post_raw(ep, bomb, {"Content-Encoding": "gzip", "X-ClickHouse-User": "u",
                                                "X-ClickHouse-Key": "p"})
    assert status == 413 and b"Decompressed request body larger than" in body
    status, _, body = post_raw(ep, gzip.compress(b"SELECT 42"), {"Content-Encoding": "gzip", "X-ClickHouse-User": "u",
                                                                  "X-ClickHouse-Key": "p"})
    assert (status, body) == (200, b"42\n")


def post_raw(endpoint, data: bytes, headers: dict[str, str]):
    req = urllib.request.Request(f"{endpoint.url}/", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()
