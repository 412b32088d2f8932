"""Finds every SQL statement in dashboards and alert rules, and the variable state to expand it with.

Shared by the tests and by ``streamtriage dashboards check --dsn``, so "every panel's SQL runs" means
the same list of statements everywhere.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .macros import QueryContext, Variable

Json = dict[str, Any]


@dataclass(frozen=True)
class Query:
    """One SQL statement and where it lives (for error messages)."""

    where: str
    sql: str
    kind: str  # "panel", "variable" or "alert"
    title: str = ""
    fmt: int | None = None


def panel_queries(dash: Json) -> Iterator[Query]:
    uid = dash.get("uid", "?")
    for panel in dash.get("panels", []):
        for t in panel.get("targets", []):
            if t.get("rawSql"):
                yield Query(f"{uid} panel {panel.get('id')} ({panel.get('title')}) {t.get('refId')}",
                            t["rawSql"], "panel", panel.get("title", ""), t.get("format"))


def variable_queries(dash: Json) -> Iterator[Query]:
    uid = dash.get("uid", "?")
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var.get("query")
            sql = q.get("rawSql") if isinstance(q, dict) else q
            if sql:
                yield Query(f"{uid} variable {var['name']}", sql, "variable", var["name"])


def alert_queries(rules_doc: Json) -> Iterator[Query]:
    for group in rules_doc.get("groups", []):
        for rule in group.get("rules", []):
            for d in rule.get("data", []):
                model = d.get("model", {})
                if model.get("rawSql"):
                    yield Query(f"alert {rule.get('uid')} {d.get('refId')}", model["rawSql"], "alert",
                                rule.get("title", ""), model.get("format"))


def variables_from_dashboard(dash: Json, overrides: Mapping[str, Variable] | None = None) -> dict[str, Variable]:
    """The dashboard's variables in their default state ("All" for include-all query variables).

    Query variables set to "All" need their option list, which Grafana gets by running the variable's
    query; ``overrides`` supplies those (or any other selection) by name.
    """
    out: dict[str, Variable] = {}
    for var in dash.get("templating", {}).get("list", []):
        name, vtype = var["name"], var.get("type")
        if vtype == "datasource":
            continue
        current = var.get("current", {}).get("value", "")
        values = tuple(current) if isinstance(current, list) else (str(current),)
        all_selected = "$__all" in values
        out[name] = Variable(name, () if all_selected else values, multi=bool(var.get("multi")),
                             include_all=bool(var.get("includeAll")), all_selected=all_selected)
    out.update(overrides or {})
    return out


def context_for(dash: Json, time_from: datetime, time_to: datetime, interval_s: float = 60.0,
                overrides: Mapping[str, Variable] | None = None) -> QueryContext:
    return QueryContext(time_from, time_to, interval_s, variables_from_dashboard(dash, overrides))
