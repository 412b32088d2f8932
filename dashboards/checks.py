"""Structural checks of a provisioning tree, without a Grafana server.

What Grafana would only reveal at load or render time is checked here: unique panel ids and uids,
data-source references that resolve, variables that exist, alert conditions and expressions that
name existing refIds, links from alerts to real panels, notification routes to real contact
points, and SQL whose macros and variables the plugin can expand. Each check returns messages;
an empty list means the tree is sound.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .macros import MacroError, QueryContext, expand_alert_sql, expand_panel_sql
from .queries import alert_queries, panel_queries, variable_queries, variables_from_dashboard
from .versions import GRAFANA_VERSION, PLUGIN_ID, PLUGIN_VERSION

Json = dict[str, Any]
_VAR_USE = re.compile(r"\$\{(\w+)(?:[.:][^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_NO_DATA = {"NoData", "Alerting", "OK", "KeepLast"}
_EXEC_ERR = {"Error", "Alerting", "OK", "KeepLast"}
_EXPR = "__expr__"


def _load_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _used_variables(text: str) -> set[str]:
    names = {a or b or c for a, b, c in _VAR_USE.findall(text)}
    return {n for n in names if not n.startswith("__")}


def _sample_context(dash: Json) -> QueryContext:
    now = datetime.now(timezone.utc)
    return QueryContext(now - timedelta(hours=1), now, 60.0, variables_from_dashboard(dash))


def check_dashboard(dash: Json, datasource_uids: set[str]) -> list[str]:
    where = f"dashboard {dash.get('uid', '?')}"
    problems: list[str] = []
    if not dash.get("uid") or not dash.get("title"):
        problems.append(f"{where}: missing uid or title")
    if int(dash.get("schemaVersion", 0)) < 39:
        problems.append(f"{where}: schemaVersion {dash.get('schemaVersion')} is older than Grafana 11 dashboards")
    variables = dash.get("templating", {}).get("list", [])
    names = [v.get("name") for v in variables]
    if len(names) != len(set(names)):
        problems.append(f"{where}: duplicate variable names {names}")
    ds_vars = {v["name"] for v in variables if v.get("type") == "datasource" and v.get("query") == PLUGIN_ID}

    def ds_ok(ref: Any, ctx: str) -> None:
        if not isinstance(ref, dict) or ref.get("type") != PLUGIN_ID:
            problems.append(f"{where} {ctx}: data source must be a {PLUGIN_ID} reference, got {ref!r}")
            return
        uid = str(ref.get("uid", ""))
        m = re.fullmatch(r"\$\{?(\w+)\}?", uid)
        if m and m.group(1) not in ds_vars:
            problems.append(f"{where} {ctx}: data source variable {uid} is not defined")
        elif not m and uid not in datasource_uids:
            problems.append(f"{where} {ctx}: data source uid {uid!r} is not provisioned")

    titles = [p.get("title") for p in dash.get("panels", []) if p.get("type") != "row"]
    if len(titles) != len(set(titles)):
        problems.append(f"{where}: panel titles are not unique (alerts and docs refer to panels by title)")
    ids: set[int] = set()
    cells: set[tuple[int, int]] = set()
    for panel in dash.get("panels", []):
        pid = panel.get("id")
        ctx = f"panel {pid} ({panel.get('title')})"
        if not isinstance(pid, int) or pid in ids:
            problems.append(f"{where} {ctx}: panel id missing or not unique")
        ids.add(pid)
        if panel.get("type") == "row":
            continue
        if not panel.get("title") or not panel.get("description"):
            problems.append(f"{where} {ctx}: every panel needs a title and a description")
        gp = panel.get("gridPos", {})
        if not all(isinstance(gp.get(k), int) for k in ("h", "w", "x", "y")) or gp["x"] + gp["w"] > 24:
            problems.append(f"{where} {ctx}: bad gridPos {gp}")
        else:
            for x in range(gp["x"], gp["x"] + gp["w"]):
                for y in range(gp["y"], gp["y"] + gp["h"]):
                    if (x, y) in cells:
                        problems.append(f"{where} {ctx}: overlaps another panel at x={x} y={y}")
                        break
                    cells.add((x, y))
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        if not defaults.get("unit"):
            problems.append(f"{where} {ctx}: no unit set")
        if not defaults.get("thresholds", {}).get("steps"):
            problems.append(f"{where} {ctx}: no thresholds set")
        ds_ok(panel.get("datasource"), ctx)
        targets = panel.get("targets", [])
        refs = [t.get("refId") for t in targets]
        if not targets or len(refs) != len(set(refs)) or not all(refs):
            problems.append(f"{where} {ctx}: targets missing or refIds not unique: {refs}")
        for t in targets:
            ds_ok(t.get("datasource"), f"{ctx} target {t.get('refId')}")
            if t.get("editorType") != "sql" or not t.get("rawSql"):
                problems.append(f"{where} {ctx}: target {t.get('refId')} is not an SQL target with rawSql")
            if t.get("format") not in (0, 1, 2, 3):
                problems.append(f"{where} {ctx}: target format {t.get('format')!r} is not a plugin format")
            if t.get("pluginVersion") != PLUGIN_VERSION:
                problems.append(f"{where} {ctx}: target written for plugin {t.get('pluginVersion')}, "
                                f"expected {PLUGIN_VERSION}")
        for ov in panel.get("fieldConfig", {}).get("overrides", []):
            for prop in ov.get("properties", []):
                if prop.get("id") != "links":
                    continue
                for link in prop.get("value", []):
                    internal = link.get("internal")
                    if internal and internal.get("datasourceUid") not in datasource_uids:
                        problems.append(f"{where} {ctx}: link {link.get('title')!r} targets data source "
                                        f"{internal.get('datasourceUid')!r}, which is not provisioned")
    text = json.dumps(dash)
    for name in sorted(_used_variables(text) - set(names)):
        problems.append(f"{where}: uses variable ${name}, which is not defined")
    sample = _sample_context(dash)
    for q in list(panel_queries(dash)) + list(variable_queries(dash)):
        try:
            expand_panel_sql(q.sql, sample)
        except MacroError as exc:
            problems.append(f"{q.where}: {exc}")
    return problems


def check_alert_rules(doc: Json, datasource_uids: set[str], dashboards: dict[str, Json]) -> list[str]:
    problems: list[str] = []
    if doc.get("apiVersion") != 1:
        problems.append("alert rules: apiVersion must be 1")
    uids: set[str] = set()
    for group in doc.get("groups", []):
        g = f"alert group {group.get('name')!r}"
        if not group.get("name") or not group.get("folder"):
            problems.append(f"{g}: name and folder are required")
        if not _DURATION.match(str(group.get("interval", ""))):
            problems.append(f"{g}: interval {group.get('interval')!r} is not a duration")
        for rule in group.get("rules", []):
            r = f"alert rule {rule.get('uid')!r}"
            if not rule.get("uid") or rule["uid"] in uids or not rule.get("title"):
                problems.append(f"{r}: uid missing or duplicated, or no title")
            uids.add(rule.get("uid"))
            data = rule.get("data", [])
            refs = [d.get("refId") for d in data]
            if not data or len(refs) != len(set(refs)):
                problems.append(f"{r}: data missing or refIds not unique: {refs}")
            if rule.get("condition") not in refs:
                problems.append(f"{r}: condition {rule.get('condition')!r} is not one of the refIds {refs}")
            for d in data:
                model = d.get("model", {})
                if model.get("refId") != d.get("refId"):
                    problems.append(f"{r}: model refId {model.get('refId')!r} differs from {d.get('refId')!r}")
                if d.get("datasourceUid") == _EXPR:
                    expr = model.get("expression")
                    if expr not in refs or expr == d.get("refId"):
                        problems.append(f"{r}: expression {d.get('refId')} refers to {expr!r}, not another refId")
                    continue
                if d.get("datasourceUid") not in datasource_uids:
                    problems.append(f"{r}: query {d.get('refId')} uses data source {d.get('datasourceUid')!r}, "
                                    "which is not provisioned")
                rtr = d.get("relativeTimeRange", {})
                if not (isinstance(rtr.get("from"), int) and isinstance(rtr.get("to"), int) and rtr["from"] > rtr["to"] >= 0):
                    problems.append(f"{r}: query {d.get('refId')} needs relativeTimeRange from > to >= 0 seconds")
            if not _DURATION.match(str(rule.get("for", ""))):
                problems.append(f"{r}: for {rule.get('for')!r} is not a duration")
            if rule.get("noDataState") not in _NO_DATA or rule.get("execErrState") not in _EXEC_ERR:
                problems.append(f"{r}: bad noDataState/execErrState")
            ann = rule.get("annotations", {})
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    problems.append(f"{r}: annotation {key} is required")
            if "${" in json.dumps(ann) + json.dumps(rule.get("labels", {})):
                problems.append(f"{r}: '${{' in annotations/labels would be expanded from the environment")
            if not rule.get("labels", {}).get("severity"):
                problems.append(f"{r}: a severity label is needed for routing")
            dash = dashboards.get(rule.get("dashboardUid", ""))
            if dash is None or rule.get("panelId") not in {p.get("id") for p in dash.get("panels", [])}:
                problems.append(f"{r}: dashboardUid/panelId do not name a provisioned panel")
    now = datetime.now(timezone.utc)
    for q in alert_queries(doc):
        try:
            expand_alert_sql(q.sql, QueryContext(now - timedelta(hours=1), now))
        except MacroError as exc:
            problems.append(f"{q.where}: {exc}")
    return problems


def _routes(policy: Json) -> list[Json]:
    out = [policy]
    for child in policy.get("routes", []) or []:
        out += _routes(child)
    return out


def check_notifications(doc: Json, other_contact_points: set[str] | None = None) -> list[str]:
    """Receiver uids unique; every policy route names a contact point of this file or ``other_contact_points``."""
    problems: list[str] = []
    names = {cp.get("name") for cp in doc.get("contactPoints", [])} | (other_contact_points or set())
    uids = [rc.get("uid") for cp in doc.get("contactPoints", []) for rc in cp.get("receivers", [])]
    if not all(uids) or len(uids) != len(set(uids)):
        problems.append(f"contact points: receiver uids missing or not unique: {uids}")
    for policy in doc.get("policies", []):
        for route in _routes(policy):
            if route.get("receiver") and route["receiver"] not in names:
                problems.append(f"notification policy routes to unknown contact point {route['receiver']!r}")
    return problems


def check_tree(root: Path) -> list[str]:
    """Every check over a provisioning directory (as written by ``export``)."""
    problems: list[str] = []
    readme = root / "README.md"
    if not readme.exists() or GRAFANA_VERSION not in readme.read_text() or PLUGIN_VERSION not in readme.read_text():
        problems.append("README.md with the targeted Grafana and plugin versions is missing")
    ds_uids: set[str] = set()
    ds_files = sorted((root / "datasources").glob("*.yaml"))
    if not ds_files:
        problems.append("no datasources/*.yaml")
    for path in ds_files:
        for ds in (_load_yaml(path) or {}).get("datasources", []):
            jd = ds.get("jsonData", {})
            if ds.get("type") != PLUGIN_ID or not ds.get("uid"):
                problems.append(f"{path.name}: data source {ds.get('name')!r} needs uid and type {PLUGIN_ID}")
            if not jd.get("host") or not isinstance(jd.get("port"), int) or jd.get("protocol") not in ("http", "native"):
                problems.append(f"{path.name}: data source {ds.get('name')!r} needs host, integer port and protocol")
            if not jd.get("defaultDatabase"):
                problems.append(f"{path.name}: data source {ds.get('name')!r} needs defaultDatabase")
            if ds.get("uid") in ds_uids:
                problems.append(f"{path.name}: data source uid {ds.get('uid')!r} provisioned twice")
            ds_uids.add(ds.get("uid"))
    dashboards: dict[str, Json] = {}
    providers = [p for f in sorted((root / "dashboards").glob("*.yaml")) for p in (_load_yaml(f) or {}).get("providers", [])]
    if not providers:
        problems.append("no dashboards/*.yaml provider")
    for prov in providers:
        path = str(prov.get("options", {}).get("path", ""))
        rel = path.split("/dashboards/", 1)[-1] if "/dashboards/" in path else ""
        folder = root / "dashboards" / rel
        files = sorted(folder.glob("*.json")) if rel else []
        if prov.get("type") != "file" or not files:
            problems.append(f"dashboard provider {prov.get('name')!r}: path {path!r} holds no dashboards in this tree")
        for f in files:
            dash = json.loads(f.read_text(encoding="utf-8"))
            if dash.get("uid") in dashboards:
                problems.append(f"{f.name}: dashboard uid {dash.get('uid')!r} is not unique")
            dashboards[dash.get("uid")] = dash
    for dash in dashboards.values():
        problems += check_dashboard(dash, ds_uids)
    alert_files = sorted((root / "alerting").glob("*.yaml"))
    contact_points = {str(cp.get("name")) for p in alert_files for cp in (_load_yaml(p) or {}).get("contactPoints", [])}
    for path in alert_files:
        doc = _load_yaml(path) or {}
        if "groups" in doc:
            problems += [f"{path.name}: {p}" for p in check_alert_rules(doc, ds_uids, dashboards)]
        if "contactPoints" in doc or "policies" in doc:
            problems += [f"{path.name}: {p}" for p in check_notifications(doc, contact_points)]
    if not any("groups" in (_load_yaml(p) or {}) for p in alert_files):
        problems.append("no alerting/*.yaml with alert rule groups")
    return problems
