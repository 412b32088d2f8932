"""Provisioning files are structurally sound, and ``export`` writes a tree that passes the checks."""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from streamtriage.cli import app as cli_app
from streamtriage.dashboards.checks import check_tree
from streamtriage.dashboards.datasource import DEFAULT_URL, DatasourceError, DatasourceSettings, default_url
from streamtriage.dashboards.export import ExportOptions, render_tree
from streamtriage.dashboards.generate import PROVISIONING_DIR
from streamtriage.dashboards.prometheus import RULES_FILE, render_rules_yaml
from streamtriage.dashboards.versions import GRAFANA_VERSION, PLUGIN_VERSION


def test_checked_in_tree_passes_the_structural_checks() -> None:
    assert check_tree(PROVISIONING_DIR) == []


def test_checked_in_files_are_what_the_code_renders() -> None:
    """Edit the Python, then run ``python -m streamtriage.dashboards.generate``."""
    for rel, text in render_tree(ExportOptions()).items():
        assert (PROVISIONING_DIR / rel).read_text(encoding="utf-8") == text, f"{rel} is stale"
    assert RULES_FILE.read_text(encoding="utf-8") == render_rules_yaml(), "Prometheus rules are stale"


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    out = tmp_path / "provisioning"
    result = CliRunner().invoke(cli_app, [
        "dashboards", "export", "--out", str(out), "--datasource-url", "https://reader@ch.internal:8443/llm",
        "--collector-url", "http://collector.internal:4318/", "--grafana-provisioning-path", "/srv/grafana/prov"])
    assert result.exit_code == 0, result.output
    return out


def test_export_points_the_datasource_at_the_configured_clickhouse(exported: Path) -> None:
    doc = yaml.safe_load((exported / "datasources" / "streamtriage-clickhouse.yaml").read_text())
    jd = doc["datasources"][0]["jsonData"]
    assert (jd["host"], jd["port"], jd["protocol"], jd["secure"]) == ("ch.internal", 8443, "http", True)
    assert jd["defaultDatabase"] == "llm" and jd["username"] == "reader"
    assert doc["datasources"][0]["secureJsonData"]["password"].startswith("$")  # never a literal secret
    provider = yaml.safe_load((exported / "dashboards" / "streamtriage.yaml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/srv/grafana/prov/dashboards/streamtriage"


def test_export_writes_the_targeted_versions(exported: Path) -> None:
    readme = (exported / "README.md").read_text()
    assert f">= {GRAFANA_VERSION}" in readme and PLUGIN_VERSION in readme
    for path in exported.rglob("*.yaml"):
        assert f"Grafana >= {GRAFANA_VERSION}" in path.read_text() and PLUGIN_VERSION in path.read_text()
    for path in exported.rglob("*.json"):
        dash = json.loads(path.read_text())
        assert {t["pluginVersion"] for p in dash["panels"] for t in p["targets"]} == {PLUGIN_VERSION}


def test_export_fills_collector_url_and_database_into_links(exported: Path) -> None:
    dash = json.loads((exported / "dashboards" / "streamtriage" / "streamtriage-incidents.json").read_text())
    values = {v["name"]: v["current"]["value"] for v in dash["templating"]["list"] if v["type"] == "textbox"}
    assert values == {"collector_url": "http://collector.internal:4318", "database": "llm"}
    rules = yaml.safe_load((exported / "alerting" / "streamtriage-rules.yaml").read_text())
    urls = [r["annotations"]["runbook_url"] for r in rules["groups"][0]["rules"]]
    assert "http://collector.internal:4318/api/kb/{{ $labels.kb_id }}?format=md" in urls


def test_export_passes_the_checks_and_check_command_agrees(exported: Path) -> None:
    assert check_tree(exported) == []
    result = CliRunner().invoke(cli_app, ["dashboards", "check", str(exported)])
    assert result.exit_code == 0 and "ok" in result.output


def test_export_refuses_a_chdb_store() -> None:
    with pytest.raises(DatasourceError, match="Grafana cannot read"):
        DatasourceSettings.from_url("chdb:///var/lib/streamtriage")
    result = CliRunner().invoke(cli_app, ["dashboards", "export", "--out", "/nonexistent/x",
                                          "--datasource-url", "chdb://./data"])
    assert result.exit_code == 2


def test_native_protocol_url() -> None:
    ds = DatasourceSettings.from_url("clickhouses://ch:9440", database="otel")
    assert (ds.protocol, ds.secure, ds.port, ds.database) == ("native", True, 9440, "otel")


# --- the checks catch what they claim to catch -------------------------------------------------------

def _mutated(src: Path, tmp_path: Path, rel: str, mutate: Callable[[Any], None]) -> Path:
    dst = tmp_path / "mutated"
    shutil.copytree(src, dst)
    path = dst / rel
    if path.suffix == ".json":
        doc = json.loads(path.read_text())
        mutate(doc)
        path.write_text(json.dumps(doc))
    else:
        doc = yaml.safe_load(path.read_text())
        mutate(doc)
        path.write_text(yaml.safe_dump(doc))
    return dst


HEALTH = "dashboards/streamtriage/streamtriage-stream-health.json"
RULES = "alerting/streamtriage-rules.yaml"
CONTACTS = "alerting/streamtriage-contact-points.yaml"


def _rule(doc: Any, i: int = 0) -> Any:
    return doc["groups"][0]["rules"][i]


@pytest.mark.parametrize("rel, mutate, expected", [
    (HEALTH, lambda d: d["panels"][1].__setitem__("id", d["panels"][0]["id"]), "not unique"),
    (HEALTH, lambda d: d["panels"][0]["targets"][0].__setitem__("rawSql", "SELECT $nosuch"), "$nosuch"),
    (HEALTH, lambda d: d["panels"][0]["datasource"].__setitem__("uid", "other-ds"), "not provisioned"),
    (HEALTH, lambda d: d["panels"][0]["targets"][0].__setitem__("rawSql", "SELECT $__bogus(x)"), "__bogus"),
    (HEALTH, lambda d: d["panels"][0].__setitem__("description", ""), "description"),
    (HEALTH, lambda d: d["panels"][0]["fieldConfig"]["defaults"].pop("unit"), "no unit"),
    (HEALTH, lambda d: d["panels"][1]["gridPos"].__setitem__("x", 0), "overlaps"),
    (RULES, lambda d: _rule(d).__setitem__("condition", "Z"), "condition 'Z'"),
    (RULES, lambda d: _rule(d)["data"][2]["model"].__setitem__("expression", "Q"), "refers to 'Q'"),
    (RULES, lambda d: _rule(d)["data"][0].__setitem__("datasourceUid", "nope"), "not provisioned"),
    (RULES, lambda d: _rule(d).__setitem__("panelId", 999), "panelId"),
    (RULES, lambda d: _rule(d)["data"][0]["model"].__setitem__("rawSql", "SELECT 1 WHERE x IN (${service})"),
     "alert SQL cannot use dashboard variables"),
    (RULES, lambda d: _rule(d, 1).__setitem__("uid", _rule(d, 0)["uid"]), "duplicated"),
    (CONTACTS, lambda d: d["contactPoints"][1]["receivers"][0].__setitem__("uid", "streamtriage-oncall-webhook"),
     "not unique"),
])
def test_checks_detect_broken_trees(tmp_path: Path, rel: str, mutate: Callable[[Any], None], expected: str) -> None:
    problems = check_tree(_mutated(PROVISIONING_DIR, tmp_path, rel, mutate))
    assert any(expected in p for p in problems), problems


def test_default_datasource_url_follows_a_server_store_only() -> None:
    assert default_url({"STREAMTRIAGE_STORE": "https://u:p@ch:8443/otel"}) == "https://u:p@ch:8443/otel"
    assert default_url({"STREAMTRIAGE_STORE": "chdb://./data"}) == DEFAULT_URL
    assert default_url({}) == DEFAULT_URL


@pytest.mark.parametrize("url", ["ftp://ch:21", "http://:8123", "http://ch:notaport", "http://ch:8123/bad-db!"])
def test_bad_datasource_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(DatasourceError):
        DatasourceSettings.from_url(url)


def _runs_hang_default(tree: Path) -> str:
    dash = json.loads((tree / "dashboards/streamtriage/streamtriage-runs-polling.json").read_text())
    var = next(v for v in dash["templating"]["list"] if v["name"] == "hang_after_s")
    assert var["current"]["value"] in var["query"].split(",")
    return str(var["current"]["value"])


def test_policy_is_opt_in_and_hang_after_follows_the_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exported tree never replaces the org's policy tree unless asked (issue 15), and the runs
    dashboard's 'hang after' default is the collector's poll_hang_ms, so the panel shows the CLI's hangs."""
    out = tmp_path / "prov"
    base = ["dashboards", "export", "--out", str(out), "--datasource-url", "http://ch:8123/otel"]
    monkeypatch.delenv("STREAMTRIAGE_POLL_HANG_MS", raising=False)
    assert CliRunner().invoke(cli_app, [*base, "--notification-policy"]).exit_code == 0
    assert (out / "alerting/streamtriage-notification-policy.yaml").exists() and check_tree(out) == []
    assert _runs_hang_default(out) == "600"
    monkeypatch.setenv("STREAMTRIAGE_POLL_HANG_MS", "30000")
    result = CliRunner().invoke(cli_app, base)
    assert result.exit_code == 0, result.output
    docs = [yaml.safe_load(p.read_text()) for p in (out / "alerting").glob("*.yaml")]
    assert not [d for d in docs if "policies" in d]                 # the stale policy file was removed too
    assert any("contactPoints" in d for d in docs) and check_tree(out) == []
    assert _runs_hang_default(out) == "30"
    assert CliRunner().invoke(cli_app, [*base, "--threshold", "assistants.runs:poll_hang_ms=120000"]).exit_code == 0
    assert _runs_hang_default(out) == "120"
    assert CliRunner().invoke(cli_app, [*base, "--hang-after-s", "900"]).exit_code == 0
    assert _runs_hang_default(out) == "900"
