"""Every dashboard panel, variable and alert query, expanded the way the Grafana plugin expands it,
runs through the collector's read-only ClickHouse endpoint, reached with the data source that
``dashboards`` provisions for it, and returns the same rows as the same SQL run on the store."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import clickhouse_connect
import pytest
import yaml
from typer.testing import CliRunner

from streamtriage.cli import app as cli_app
from streamtriage.collector.sqlendpoint import Credentials
from streamtriage.dashboards.collector_endpoint import ENDPOINT_NAME
from streamtriage.dashboards.macros import expand_alert_sql, expand_panel_sql
from streamtriage.dashboards.queries import alert_queries, context_for, panel_queries, variable_queries
from tests.clickhouse_http.conftest import serve
from tests.dashboards.schema import apply_schema
from tests.dashboards.synthetic import LABEL_COLUMNS, SPAN_COLUMNS, build_dataset

TOKEN = "grafana-reads-with-this"


@pytest.fixture(scope="module")
def data(chdb_path: Path) -> Iterator[tuple[object, str, object]]:
    db = "chdash_" + uuid.uuid4().hex[:8]
    admin = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    apply_schema(admin, db)
    store = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database=db)
    spans, labels, truth = build_dataset()
    store.insert("otel_traces", spans, column_names=SPAN_COLUMNS)
    store.insert("streamtriage_labels", labels, column_names=LABEL_COLUMNS)
    try:
        yield store, db, truth
    finally:
        admin.command(f"DROP DATABASE IF EXISTS {db}")


@pytest.fixture(scope="module")
def grafana_view(engine, data, tmp_path_factory: pytest.TempPathFactory):
    """Endpoint with a token, the provisioning tree that ``streamtriage dashboards export
    --clickhouse-endpoint`` writes for it, and a client built from that tree's data source."""
    _, db, _ = data
    ep = serve(engine, db, credentials=Credentials("default", TOKEN))
    try:
        out = tmp_path_factory.mktemp("provisioning")
        result = CliRunner().invoke(cli_app, ["dashboards", "export", "--out", str(out),
                                              "--clickhouse-endpoint", f"http://127.0.0.1:{ep.port}/{db}"])
        assert result.exit_code == 0, result.output
        (entry,) = yaml.safe_load((out / "datasources" / "streamtriage-clickhouse.yaml").read_text())["datasources"]
        assert entry["name"] == ENDPOINT_NAME and entry["jsonData"]["protocol"] == "http"
        env_name = entry["secureJsonData"]["password"].lstrip("$")
        password = {"STREAMTRIAGE_READ_TOKEN": TOKEN}[env_name]  # what Grafana reads from the environment
        jd = entry["jsonData"]
        client = clickhouse_connect.get_client(host=jd["host"], port=jd["port"], username=jd["username"],
                                               password=password, database=jd["defaultDatabase"])
        yield client, out
    finally:
        ep.stop()


def _same(rows: list) -> list[str]:
    """Row multiset, independent of order for queries without ORDER BY."""
    return sorted(repr(r) for r in rows)


def test_every_dashboard_and_alert_query_matches_the_store(data, grafana_view) -> None:
    store, _, truth = data
    client, tree = grafana_view
    dashboards = [json.loads(p.read_text()) for p in sorted((tree / "dashboards").rglob("*.json"))]
    assert len(dashboards) >= 3
    time_from, time_to = truth.start - timedelta(minutes=5), truth.end + timedelta(minutes=1)
    checked, non_empty, mismatched = 0, 0, []
    for dash in dashboards:
        ctx = context_for(dash, time_from, time_to)
        for q in [*panel_queries(dash), *variable_queries(dash)]:
            sql = expand_panel_sql(q.sql, ctx)
            via_endpoint = client.query(sql).result_rows
            direct = store.query(sql).result_rows
            checked += 1
            non_empty += bool(direct)
            if _same(via_endpoint) != _same(direct):
                mismatched.append((q.where, via_endpoint[:3], direct[:3]))
    rules = yaml.safe_load((tree / "alerting" / "streamtriage-rules.yaml").read_text())
    alert_ctx = context_for({}, time_from, time_to)
    alerts = list(alert_queries(rules))
    assert alerts
    for q in alerts:
        sql = expand_alert_sql(q.sql, alert_ctx)
        checked += 1
        direct = store.query(sql).result_rows
        non_empty += bool(direct)
        if _same(client.query(sql).result_rows) != _same(direct):
            mismatched.append((q.where, None, direct[:3]))
    assert mismatched == []
    assert checked >= 10 and non_empty >= checked // 2, (checked, non_empty)


def test_export_refuses_both_targets_and_non_http_endpoints(tmp_path: Path) -> None:
    both = CliRunner().invoke(cli_app, ["dashboards", "export", "--out", str(tmp_path), "--clickhouse-endpoint",
                                        "http://h:8123", "--datasource-url", "http://h:8123"])
    assert both.exit_code == 2 and "not both" in both.output
    native = CliRunner().invoke(cli_app, ["dashboards", "export", "--out", str(tmp_path),
                                          "--clickhouse-endpoint", "clickhouse://h:9000"])
    assert native.exit_code == 2 and "HTTP protocol only" in native.output


def test_cli_help_shows_the_endpoint_options() -> None:
    runner = CliRunner()
    serve_help = runner.invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert serve_help.exit_code == 0 and "--clickhouse-port" in serve_help.output
    export_help = runner.invoke(cli_app, ["dashboards", "export", "--help"], env={"COLUMNS": "200"})
    assert export_help.exit_code == 0, export_help.output
    assert "--clickhouse-endpoint" in export_help.output and "[user@]host:port[/db]" in export_help.output
