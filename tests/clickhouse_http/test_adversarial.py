"""The adversarial corpus (``adversarial.yaml``) against every layer of the read-only endpoint.

For each entry: the endpoint over real HTTP answers a 4xx with the expected ClickHouse code (or
200 for harmless ones) and never the secret; the layer named in the corpus stops it on its own;
and, with every check bypassed, the same text run straight on the engine's read-only handle
fails in the engine. After the whole corpus the store is unchanged and no file was written.
"""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamtriage.collector.sqlendpoint import ClickHouseError, GuardError, Limits, read_only_settings
from streamtriage.collector.sqlendpoint.engines import ChdbHandle
from streamtriage.collector.sqlendpoint.formats import output_format
from streamtriage.collector.sqlendpoint.guard import check_ast, check_tokens

CORPUS_PATH = Path(__file__).with_name("adversarial.yaml")
CORPUS: list[dict[str, Any]] = yaml.safe_load(CORPUS_PATH.read_text(encoding="utf-8"))
SECRET = "streamtriage-adversarial-secret-91c2"
WRITE_WORDS = ("CREATE", "DROP", "INSERT", "TRUNCATE", "ALTER", "DELETE", "SET ", "SETTINGS", "BACKUP", "OUTFILE")


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adversarial")
    secret = root / "secret.txt"
    secret.write_text(SECRET + "\n")
    return {"secret": secret, "out": root / "out.csv"}


def _fill(text: str, paths: dict[str, Path], db: str) -> str:
    return text.replace("@SECRET@", str(paths["secret"])).replace("@OUT@", str(paths["out"])).replace("@DB@", db)


def _entry(entry: dict[str, Any], paths: dict[str, Path], db: str) -> tuple[str, dict[str, str]]:
    params = {k: _fill(str(v), paths, db) for k, v in (entry.get("params") or {}).items()}
    return _fill(entry["sql"], paths, db), params


def _post(url: str, sql: str, params: dict[str, str]) -> tuple[int, Any, bytes]:
    req = urllib.request.Request(f"{url}/?{urllib.parse.urlencode(params)}", data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _state(store: Any, db: str) -> tuple[Any, ...]:
    return (store.command(f"SELECT count() FROM `{db}`.sample"), store.command(f"SELECT sum(id) FROM `{db}`.sample"),
            store.command("SELECT groupArray(concat(database, '.', name)) FROM "
                          "(SELECT database, name FROM system.tables ORDER BY database, name)"))


def test_corpus_covers_every_layer_and_lexical_context() -> None:
    layers = {e["layer"] for e in CORPUS}
    assert layers == {"lexer", "tokens", "ast", "settings", "format", "engine", "ok"}
    text = "\n".join(e["sql"] for e in CORPUS)
    for context in ("'", '"', "`", "$$", "$tag$", "/*", "--", "//", "# ", "#!", "{x:", "\\G", "FORMAT"):
        assert context in text, context
    assert len({e["name"] for e in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("entry", CORPUS, ids=[e["name"] for e in CORPUS])
def test_endpoint_refuses(endpoint, store_db, paths, entry: dict[str, Any]) -> None:
    store, db = store_db
    sql, params = _entry(entry, paths, db)
    before = _state(store, db)
    status, headers, body = _post(endpoint.url, sql, params)
    if entry["layer"] == "ok":
        assert status == 200, body
    else:
        assert 400 <= status < 500, (status, body)
        if "code" in entry:
            assert headers["X-ClickHouse-Exception-Code"] == str(entry["code"]), body
        assert body.startswith(f"Code: {headers['X-ClickHouse-Exception-Code']}. DB::Exception: ".encode())
    assert SECRET.encode() not in body
    assert _state(store, db) == before
    assert not paths["out"].exists()


@pytest.mark.parametrize("entry", CORPUS, ids=[e["name"] for e in CORPUS])
def test_named_layer_stops_it_alone(engine, store_db, paths, entry: dict[str, Any]) -> None:
    _, db = store_db
    sql, params = _entry(entry, paths, db)
    layer = entry["layer"]
    bound = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
    if layer in ("lexer", "tokens"):
        with pytest.raises(GuardError) as info:
            check_tokens(sql)
        assert info.value.code == entry["code"]
    elif layer in ("ast", "engine", "ok"):
        stmt, _ = check_tokens(sql)
        explain = lambda s: engine.explain_ast(s, bound, db)  # noqa: E731
        if layer == "ast":
            with pytest.raises(GuardError):
                check_ast(stmt, explain)
        else:
            check_ast(stmt, explain)
    elif layer == "settings":
        settings = {k: v for k, v in params.items() if not k.startswith("param_") and k != "default_format"}
        with pytest.raises(GuardError) as info:
            read_only_settings(settings, Limits())
        assert info.value.code == entry["code"]
    elif layer == "format":
        with pytest.raises(GuardError) as info:
            output_format(params["default_format"])
        assert info.value.code == 73


ENGINE_ENTRIES = [e for e in CORPUS if e["engine"] in ("refuses", "door")]


@pytest.mark.parametrize("entry", ENGINE_ENTRIES, ids=[e["name"] for e in ENGINE_ENTRIES])
def test_engine_refuses_with_every_check_bypassed(engine, store_db, paths, entry: dict[str, Any]) -> None:
    """The lower layers called directly with the raw text, no guard: the engine refuses it.

    ``refuses``: the bare read-only chDB session (``ChdbHandle``, beneath everything this package
    adds) fails it. ``door``: a read-only chDB session would run it (chDB's local mode), so the chDB
    engine refuses it before its handle sees the text.
    """
    store, db = store_db
    sql, params = _entry(entry, paths, db)
    bound = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
    before = _state(store, db)
    with pytest.raises(ClickHouseError) as info:
        engine.query(sql, "TabSeparated", bound, db, Limits().as_settings())
    assert SECRET not in str(info.value)
    if entry["engine"] == "refuses":
        handle = ChdbHandle(engine.path, (*Limits().as_settings().items(), ("readonly", "1")))
        try:
            with pytest.raises(ClickHouseError) as info:
                handle.run(sql, "TabSeparated", bound, db)
        finally:
            handle.close()
        if any(word in sql.upper() for word in WRITE_WORDS):
            # the read-only session (164), or the engine's own parse stopped before anything ran (62)
            assert info.value.code in (164, 62), str(info.value)
        assert SECRET not in str(info.value)
    assert _state(store, db) == before
    assert not paths["out"].exists()


def test_engine_ignores_subquery_settings(engine, store_db) -> None:
    """A subquery's SETTINGS clause does not lift the handle's limits (readonly=1 does not refuse it)."""
    _, db = store_db
    out = engine.query("SELECT * FROM (SELECT getSetting('max_execution_time'), getSetting('max_memory_usage') "
                       "SETTINGS max_execution_time = 0, max_memory_usage = 0)", "TSV", {}, db, Limits().as_settings())
    assert out.body.decode().split() == [str(Limits().max_execution_time), str(Limits().max_memory_usage)]


def test_a_failed_statement_leaves_nothing_for_the_next_request(engine, store_db) -> None:
    """chDB prepends the output of the statements that ran before a failing one to the next result
    on the same connection; the handle reconnects after any error, so no request sees another's rows."""
    _, db = store_db
    handle = ChdbHandle(engine.path, (("readonly", "1"),))
    try:
        with pytest.raises(ClickHouseError):
            handle.run("SELECT 'left-over'; CREATE TABLE pwned (a String) ENGINE = Memory", "TSV", {}, db)
        assert handle.run("SELECT 'mine'", "TSV", {}, db).body == b"mine\n"
    finally:
        handle.close()


def test_server_store_engine_sends_readonly_the_statement_cannot_lift(tmp_path) -> None:
    """``HttpEngine`` (a ClickHouse server store) puts ``readonly=1`` after the settings in the URL;
    checked against the test stand-in, which applies URL settings as a server does."""
    from streamtriage.collector.sqlendpoint import HttpEngine
    from tests.support.clickhouse_standin import ClickHouseStandin

    with ClickHouseStandin(tmp_path / "ch") as ch:
        admin = HttpEngine(ch.url)
        admin.post({}, b"CREATE TABLE t (a String) ENGINE = MergeTree ORDER BY a")
        eng = HttpEngine(ch.url)
        for sql in ["INSERT INTO t VALUES ('x')", "CREATE TABLE t2 (a String) ENGINE = Memory",
                    "SELECT 1 SETTINGS readonly = 0", "DROP TABLE t"]:
            with pytest.raises(ClickHouseError) as info:
                eng.query(sql, "TSV", {}, None, Limits().as_settings())
            assert info.value.code == 164, (sql, str(info.value))
        out = eng.query("SELECT getSetting('readonly'), getSetting('max_result_rows'), count() FROM t", "TSV", {},
                        None, Limits().as_settings())
        assert out.body.decode().split() == ["1", str(Limits().max_result_rows), "0"]
        eng.close()
        admin.close()


class RecordingEngine:
    """The real engine, with a log of every statement text it is handed."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[str] = []
        self.version, self.timezone = real.version, real.timezone

    def query(self, sql: str, *args: Any, **kw: Any) -> Any:
        self.calls.append(sql)
        return self.real.query(sql, *args, **kw)

    def explain_ast(self, sql: str, *args: Any) -> str:
        self.calls.append("EXPLAIN AST " + sql)
        return self.real.explain_ast(sql, *args)

    def function_names(self) -> tuple[set[str], set[str]]:
        return self.real.function_names()  # fixed catalogue queries, no request text

    def close(self) -> None:
        pass


EARLY = [e for e in CORPUS if e["layer"] in ("lexer", "tokens", "settings", "format")]


def test_nothing_of_a_refused_request_reaches_the_engine(engine, store_db, paths) -> None:
    """Settings, format and token checks all run before the first engine call with request text."""
    from streamtriage.collector.sqlendpoint import ClickHouseHTTP

    _, db = store_db
    recording = RecordingEngine(engine)
    core = ClickHouseHTTP(recording, database=db)  # type: ignore[arg-type]
    for entry in EARLY:
        sql, params = _entry(entry, paths, db)
        resp = core.handle("POST", "/", urllib.parse.urlencode(params), {}, sql.encode())
        assert 400 <= resp.status < 500, (entry["name"], resp.body)
        assert recording.calls == [], (entry["name"], recording.calls)
    resp = core.handle("POST", "/", "", {}, b"SELECT count() FROM sample")
    assert resp.status == 200 and len(recording.calls) == 2  # the parse check, then the statement
