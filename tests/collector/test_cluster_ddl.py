"""Cluster DDL: every rendered statement parses in the engine; the shape is replicated local tables
plus Distributed tables under the usual names; the single-node form still runs (test_schema.py)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from streamtriage.collector.cluster_ddl import ClusterDDLError, for_cluster
from streamtriage.collector.migrate import _history_table_ddl, render_migrations


@pytest.fixture(scope="module")
def engine(chdb_path: Path) -> Any:
    """The session's chDB engine (one per process), through clickhouse-connect."""
    return clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")


def _parse(engine: Any, stmt: str) -> str:
    """The engine's own parser (formatQuery parses without executing); raises on a syntax error."""
    return str(engine.query("SELECT formatQuery({q:String})", parameters={"q": stmt}).result_rows[0][0])


@pytest.mark.parametrize("cluster", [None, "prod_cluster"])
def test_every_rendered_statement_parses(engine: Any, cluster: str | None) -> None:
    rendered = render_migrations("otel", 30, 90, cluster)
    stmts = [s for _, ss in rendered for s in ss] + [_history_table_ddl("`otel`", cluster)]
    assert len(stmts) >= 5
    for stmt in stmts:
        _parse(engine, stmt)
        if cluster:
            assert "ON CLUSTER `prod_cluster`" in stmt, stmt[:120]


def test_a_syntax_error_is_caught_by_the_parser_check(engine: Any) -> None:
    with pytest.raises(DatabaseError, match="Syntax error"):
        _parse(engine, "CREATE TABLE x (a")


def test_cluster_form_is_replicated_local_plus_distributed() -> None:
    stmts = [s for _, ss in render_migrations("otel", 30, 90, "c1") for s in ss]
    text = "\n".join(stmts)
    for table in ("otel_traces", "otel_traces_trace_id_ts", "streamtriage_labels"):
        local = next(s for s in stmts if s.startswith(f"CREATE TABLE IF NOT EXISTS `otel`.`{table}_local`"))
        assert "ENGINE = Replicated" in local and "'{replica}'" in local
        dist = next(s for s in stmts if s.startswith(f"CREATE TABLE IF NOT EXISTS `otel`.{table} ON CLUSTER"))
        assert f"ENGINE = Distributed('c1', 'otel', '{table}_local', cityHash64(TraceId))" in dist
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', Version, IsDeleted)" in text
    mv = next(s for s in stmts if "MATERIALIZED VIEW" in s)
    assert "TO `otel`.`otel_traces_trace_id_ts_local`" in mv and "FROM `otel`.`otel_traces_local`" in mv
    alters = [s for s in stmts if s.startswith("ALTER TABLE")]
    assert {re.match(r"ALTER TABLE (\S+)", s).group(1) for s in alters} == {  # 0005 (LLM columns), 0007 (feedback)
        "`otel`.`otel_traces_local`", "`otel`.otel_traces", "`otel`.`streamtriage_labels_local`", "`otel`.streamtriage_labels"}


def test_unknown_statement_kinds_have_no_silent_cluster_form() -> None:
    with pytest.raises(ClusterDDLError):
        for_cluster("DROP TABLE `otel`.x", "c1")
    with pytest.raises(ClusterDDLError):
        for_cluster("CREATE TABLE IF NOT EXISTS `otel`.x (a UInt8) ENGINE = Memory", "c1")


def test_migrate_print_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "streamtriage.cli", "migrate", "--print", "--cluster", "c1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "-- 0001_create_otel_traces.sql" in out.stdout and "ON CLUSTER `c1`" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "streamtriage.cli", "migrate", "--print", "--cluster", "c1;DROP"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cluster must be a plain identifier" in bad.stderr
