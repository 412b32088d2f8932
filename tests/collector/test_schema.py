"""The tables are the official exporter's, migrations are idempotent, and the LLM columns fill in.

Runs in-process on the session chDB directory (``chdb_path``), isolated by a fresh database.
"""
from __future__ import annotations

from pathlib import Path

import clickhouse_connect
import pytest

from streamtriage.collector.migrate import MIGRATIONS_TABLE, apply_migrations, load_migrations

# Column names and types as the exporter's DDL is stored by ClickHouse (storage-dashboards.md §1.2).
EXPORTER_COLUMNS = [
    ("Timestamp", "DateTime64(9)"), ("TraceId", "String"), ("SpanId", "String"), ("ParentSpanId", "String"),
    ("TraceState", "String"), ("SpanName", "LowCardinality(String)"), ("SpanKind", "LowCardinality(String)"),
    ("ServiceName", "LowCardinality(String)"), ("ResourceAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeName", "String"), ("ScopeVersion", "String"),
    ("SpanAttributes", "Map(LowCardinality(String), String)"), ("Duration", "UInt64"),
    ("StatusCode", "LowCardinality(String)"), ("StatusMessage", "String"),
    ("Events.Timestamp", "Array(DateTime64(9))"), ("Events.Name", "Array(LowCardinality(String))"),
    ("Events.Attributes", "Array(Map(LowCardinality(String), String))"),
    ("Links.TraceId", "Array(String)"), ("Links.SpanId", "Array(String)"), ("Links.TraceState", "Array(String)"),
    ("Links.Attributes", "Array(Map(LowCardinality(String), String))"),
]

# The exporter's INSERT (internal/sqltemplates/traces_insert.sql) with one row as it would send it.
EXPORTER_INSERT = """
INSERT INTO DB.otel_traces (
    Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes,
    ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage,
    `Events.Timestamp`, `Events.Name`, `Events.Attributes`,
    `Links.TraceId`, `Links.SpanId`, `Links.TraceState`, `Links.Attributes`
) VALUES (
    '2026-11-21 12:00:00.123456789', '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b174', '', '',
    'chat gpt-4o-mini', 'Client', 'official-collector', {'service.name':'official-collector'},
    'streamtriage.instrumentation.openai', '0.1.0',
    {'streamtriage.span':'call','gen_ai.request.model':'gpt-4o-mini','streamtriage.outcome':'transport_error',
     'gen_ai.response.finish_reasons':'["length",""]','streamtriage.terminal.seen':'false',
     'gen_ai.usage.input_tokens':'12','gen_ai.usage.output_tokens':'345','streamtriage.ttfe_ms':'250.5',
     'streamtriage.max_gap_ms':'1200','streamtriage.api':'chat.completions','streamtriage.status':'in_progress'},
    1500000000, 'Error', 'peer closed connection',
    ['2026-11-21 12:00:01.000000001'], ['exception'], [{'exception.type':'httpx2.RemoteProtocolError'}],
    ['0af7651916cd43dd8448eb211c80319c'], ['b7ad6b7169203331'], [''], [{}]
)
"""


@pytest.fixture
def client(chdb_path: Path, fresh_database: str):
    c = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    c.command(f"CREATE DATABASE IF NOT EXISTS {fresh_database}")
    c.database = fresh_database
    yield c
    c.command(f"DROP DATABASE IF EXISTS {fresh_database}")


def test_migrations_apply_once_and_are_numbered_in_order(client, fresh_database: str) -> None:
    names = [m.name for m in load_migrations()]
    assert names[:5] == ["0001_create_otel_traces.sql", "0002_create_otel_traces_trace_id_ts.sql",
                         "0003_create_otel_traces_trace_id_ts_mv.sql", "0004_create_labels.sql",
                         "0005_add_llm_columns.sql"]
    assert apply_migrations(client, fresh_database, 30, 90) == names
    assert apply_migrations(client, fresh_database, 30, 90) == []
    recorded = client.query(f"SELECT Version FROM {fresh_database}.{MIGRATIONS_TABLE} FINAL ORDER BY Version")
    assert [r[0] for r in recorded.result_rows] == [m.version for m in load_migrations()]


def test_otel_traces_has_the_exporter_columns_and_types(client, fresh_database: str) -> None:
    apply_migrations(client, fresh_database, 30, 90)
    cols = client.query(
        "SELECT name, type, default_kind FROM system.columns WHERE database = {db:String} AND table = 'otel_traces' "
        "ORDER BY position", parameters={"db": fresh_database}).result_rows
    assert [(n, t) for n, t, kind in cols if kind == ""] == EXPORTER_COLUMNS
    materialized = {n: t for n, t, kind in cols if kind == "MATERIALIZED"}
    assert materialized == {
        "LlmSpan": "LowCardinality(String)", "LlmApi": "LowCardinality(String)", "LlmModel": "LowCardinality(String)",
        "LlmOutcome": "LowCardinality(String)", "LlmStatus": "LowCardinality(String)",
        "LlmFinishReason": "LowCardinality(String)", "LlmTerminalSeen": "UInt8", "LlmInputTokens": "UInt32",
        "LlmOutputTokens": "UInt32", "LlmTtfeMs": "Float64", "LlmMaxGapMs": "Float64"}
    lookup = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'otel_traces_trace_id_ts' "
        "ORDER BY position", parameters={"db": fresh_database}).result_rows
    assert lookup == [("TraceId", "String"), ("Start", "DateTime"), ("End", "DateTime")]


def test_rows_written_exactly_as_the_official_exporter_are_accepted(client, fresh_database: str) -> None:
    apply_migrations(client, fresh_database, 30, 90)
    client.command(EXPORTER_INSERT.replace("DB.", fresh_database + "."))
    row = client.query(
        f"SELECT toString(Timestamp), SpanKind, StatusCode, Duration, Events.Name, Links.SpanId, LlmSpan, LlmApi, "
        f"LlmModel, LlmOutcome, LlmStatus, LlmFinishReason, LlmTerminalSeen, LlmInputTokens, LlmOutputTokens, "
        f"LlmTtfeMs, LlmMaxGapMs FROM {fresh_database}.otel_traces").result_rows
    assert row == [("2026-11-21 12:00:00.123456789", "Client", "Error", 1500000000, ["exception"],
                    ["b7ad6b7169203331"], "call", "chat.completions", "gpt-4o-mini", "transport_error",
                    "in_progress", "length", 0, 12, 345, 250.5, 1200.0)]
    lookup = client.query(
        f"SELECT toString(min(Start)), toString(max(End)) FROM {fresh_database}.otel_traces_trace_id_ts "
        "WHERE TraceId = '5b8efff798038103d269b633813fc60c'").result_rows
    assert lookup == [("2026-11-21 12:00:00", "2026-11-21 12:00:00")]


def test_changing_ttl_is_applied_without_a_new_migration(client, fresh_database: str) -> None:
    apply_migrations(client, fresh_database, 30, 90)
    apply_migrations(client, fresh_database, 7, 14)
    ddl = dict(client.query("SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
                            parameters={"db": fresh_database}).result_rows)
    assert "toIntervalDay(7)" in ddl["otel_traces"] and "toIntervalDay(7)" in ddl["otel_traces_trace_id_ts"]
    assert "toIntervalDay(14)" in ddl["streamtriage_labels"]


def test_an_edited_past_migration_is_refused_naming_the_file(client, fresh_database: str, monkeypatch) -> None:
    from dataclasses import replace

    from streamtriage.collector import migrate

    apply_migrations(client, fresh_database, 30, 90)
    shipped = load_migrations()
    edited = [replace(m, text=m.text + "\n-- a harmless-looking edit\n") if m.version == 2 else m for m in shipped]
    monkeypatch.setattr(migrate, "load_migrations", lambda: edited)
    with pytest.raises(migrate.MigrationHistoryError, match=r"0002_create_otel_traces_trace_id_ts\.sql was edited"):
        apply_migrations(client, fresh_database, 30, 90)
    # A migration the store has but this package does not ship (a newer streamtriage migrated it).
    monkeypatch.setattr(migrate, "load_migrations", lambda: shipped[:-1])
    with pytest.raises(migrate.MigrationHistoryError, match="not shipped"):
        apply_migrations(client, fresh_database, 30, 90)
    monkeypatch.setattr(migrate, "load_migrations", lambda: shipped)
    assert apply_migrations(client, fresh_database, 30, 90) == []
