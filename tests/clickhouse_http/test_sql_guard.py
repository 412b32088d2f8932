"""The guard's layers on their own: the lexer (statement boundaries; INSERT data offsets of the
stand-in's write mode), the token layer, and the AST check on the engine's real ``EXPLAIN AST``
output, so a write is refused by the parse even when its first word does not give it away."""
from __future__ import annotations

import pytest

from streamtriage.collector.sqlendpoint import guard as sql_guard
from streamtriage.collector.sqlendpoint.guard import GuardError, ReadOnlyPolicy, parse_ast
from tests.support.clickhouse_writable import split_insert_data


@pytest.mark.parametrize("sql,expected", [
    ("SELECT 1", "SELECT 1"),
    ("SELECT 1;", "SELECT 1"),
    ("SELECT 1 ; -- trailing\n /* c */ ;", "SELECT 1 "),
    ("SELECT ';' AS s", "SELECT ';' AS s"),
    ("SELECT 'it''s;' AS s;", "SELECT 'it''s;' AS s"),
    ("SELECT 'a\\';' AS s", "SELECT 'a\\';' AS s"),
    ("SELECT `a;b`, \"c;d\" FROM t", "SELECT `a;b`, \"c;d\" FROM t"),
    ("SELECT $$x;y$$", "SELECT $$x;y$$"),
    ("SELECT /* ; /* nested ; */ ; */ 1", "SELECT /* ; /* nested ; */ ; */ 1"),
    ("SELECT 1 # c;\n", "SELECT 1 # c;\n"),
])
def test_single_statement_keeps_one_statement(sql: str, expected: str) -> None:
    assert sql_guard.single_statement(sql) == expected


@pytest.mark.parametrize("sql", [
    "SELECT 1; SELECT 2", "SELECT ';'; DROP TABLE t", "SELECT 1 -- x\n; DROP TABLE t",
    "SELECT 1 /* x */; /* y */ DROP TABLE t", "SELECT $$;$$; DROP TABLE t",
    "SELECT 1 // ' \n; DROP TABLE t; -- '", "SELECT {x:Enum8('}' = 1)}; DROP TABLE t -- '",
    "SELECT $a b$ ; $a b$; DROP TABLE t",
])
def test_second_statement_is_refused(sql: str) -> None:
    with pytest.raises(GuardError) as info:
        sql_guard.single_statement(sql)
    assert info.value.code == 62


@pytest.mark.parametrize("sql", ["SELECT 'open", "SELECT /* open", "SELECT `open", "SELECT 1 \\G",
                                 "SELECT 1 #x", "SELECT 1 ! 2", "SELECT x'4g'", "SELECT 1 \u00a0"])
def test_unterminated_text_is_a_syntax_error(sql: str) -> None:
    with pytest.raises(GuardError) as info:
        sql_guard.single_statement(sql)
    assert info.value.code == 62


def test_insert_data_offsets_follow_clickhouse_rules() -> None:
    # Native data for 10 columns starts with byte 0x0a: only the first newline is the separator.
    text = "INSERT INTO t (a) FORMAT Native\n\n\x05rest"
    stmt, fmt, offset = split_insert_data(text)
    assert (stmt.strip(), fmt, text[offset:]) == ("INSERT INTO t (a)", "Native", "\n\x05rest")
    text = "INSERT INTO t FORMAT CSV 1,2\n"
    assert split_insert_data(text)[2] == text.index("1,2")
    text = "INSERT INTO t (`FORMAT`, 'x') FORMAT JSONEachRow\n{\"a\":1}"
    stmt, fmt, offset = split_insert_data(text)
    assert fmt == "JSONEachRow" and text[offset:] == '{"a":1}'
    assert split_insert_data("INSERT INTO t VALUES (1)")[1] is None
    assert split_insert_data("INSERT INTO t SELECT * FROM u FORMAT Native")[1] is None


@pytest.mark.parametrize("sql", [
    "DROP TABLE sample", "INSERT INTO sample (id) VALUES (1)", "ALTER TABLE sample DELETE WHERE 1",
    "CREATE TABLE x (a UInt8) ENGINE = Memory", "SYSTEM FLUSH LOGS", "SET readonly = 0", "KILL QUERY WHERE 1",
    "OPTIMIZE TABLE sample", "SHOW GRANTS", "SHOW USERS", "EXPLAIN TABLE OVERRIDE mysql('a', 'b', 'c', 'd', 'e') PARTITION BY x",
])
def test_ast_layer_refuses_writes_on_its_own(engine, store_db, sql: str) -> None:
    """Skip the first-word check: the parsed statement kind alone refuses it."""
    root = parse_ast(engine.explain_ast(sql, {}, store_db[1]))
    with pytest.raises(GuardError) as info:
        sql_guard._statement_info(root, ReadOnlyPolicy())
    assert info.value.code == 164


def test_engine_function_lists_cover_every_outside_table_function(engine) -> None:
    policy = ReadOnlyPolicy.from_engine_lists(*engine.function_names())
    for name in ("file", "url", "s3", "remote", "remotesecure", "cluster", "mysql", "postgresql", "jdbc", "odbc",
                 "hdfs", "azureblobstorage", "executable", "input", "sqlite", "dictionary", "merge"):
        assert name in policy.outside_functions, name
    assert "numbers" not in policy.outside_functions and "format" not in policy.outside_functions


def test_builtin_fallback_policy_refuses_outside_functions_too(engine, store_db) -> None:
    """Used while the engine's own lists cannot be read (a server store that is down)."""
    policy = ReadOnlyPolicy()
    for sql, ok in [("SELECT * FROM s3('http://x/y.csv', CSV)", False), ("SELECT file('/etc/hosts')", False),
                    ("SELECT * FROM remoteSecure('h:9440', system.one)", False),
                    ("SELECT format('{}-{}', 'a', 'b'), count() FROM numbers(3)", True)]:
        root = parse_ast(engine.explain_ast(sql, {}, store_db[1]))
        if ok:
            sql_guard._statement_info(root, policy)
        else:
            with pytest.raises(GuardError):
                sql_guard._statement_info(root, policy)
