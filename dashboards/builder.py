"""Small helpers that turn panel definitions into Grafana 11.6 dashboard JSON.

Dashboards are defined in Python (SQL as readable triple-quoted text) and rendered to the JSON
files Grafana provisions; ids and grid positions are assigned here so they cannot collide.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .versions import DASHBOARD_SCHEMA_VERSION, PLUGIN_ID, PLUGIN_VERSION

DATASOURCE_UID = "streamtriage-clickhouse"
"""The uid the provisioned data source is pinned to; alert rules and trace links reference it."""
DS_REF: dict[str, str] = {"type": PLUGIN_ID, "uid": "${datasource}"}

FORMAT_TIME_SERIES = 0
FORMAT_TABLE = 1

Json = dict[str, Any]


def thresholds(*steps: tuple[str, float | None]) -> Json:
    """``thresholds(("green", None), ("red", 0.05))``: absolute steps, the first one is the base."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


NEUTRAL = thresholds(("green", None))


def target(sql: str, fmt: int, ref_id: str = "A") -> Json:
    return {
        "refId": ref_id,
        "datasource": dict(DS_REF),
        "editorType": "sql",
        "format": fmt,
        "queryType": "timeseries" if fmt == FORMAT_TIME_SERIES else "table",
        "pluginVersion": PLUGIN_VERSION,
        "rawSql": sql.strip(),
    }


def by_name(name: str, **props: Any) -> Json:
    """A field override for one column, e.g. ``by_name("p95", unit="ms")``."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": k.replace("__", "."), "value": v} for k, v in props.items()],
    }


@dataclass
class Panel:
    """One panel; ``w``/``h`` are grid units (24 columns)."""

    type: str
    title: str
    description: str
    sql: str
    unit: str
    fmt: int
    thresholds: Json = field(default_factory=lambda: NEUTRAL)
    w: int = 12
    h: int = 8
    overrides: list[Json] = field(default_factory=list)
    options: Json = field(default_factory=dict)
    custom: Json = field(default_factory=dict)
    extra: Json = field(default_factory=dict)

    def to_json(self, pid: int, x: int, y: int) -> Json:
        panel: Json = {
            "id": pid,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "datasource": dict(DS_REF),
            "gridPos": {"h": self.h, "w": self.w, "x": x, "y": y},
            "fieldConfig": {
                "defaults": {"unit": self.unit, "thresholds": self.thresholds, "custom": self.custom},
                "overrides": self.overrides,
            },
            "options": self.options,
            "targets": [target(self.sql, self.fmt)],
        }
        panel.update(self.extra)
        return panel


def stat(title: str, description: str, sql: str, unit: str, th: Json = NEUTRAL, **kw: Any) -> Panel:
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "none",
        "textMode": "value",
    }
    return Panel("stat", title, description, sql, unit, FORMAT_TABLE, th, w=kw.pop("w", 4), h=kw.pop("h", 4),
                 options=options, **kw)


def timeseries(title: str, description: str, sql: str, unit: str, th: Json = NEUTRAL, *, bars: bool = False,
               stacked: bool = False, **kw: Any) -> Panel:
    custom = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars else 10,
        "lineWidth": 1,
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line" if len(th["steps"]) > 1 else "off"},
        "spanNulls": False,
    }
    options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    extra = {"interval": "1m"}  # the smallest bucket; $__interval_s never goes below it
    return Panel("timeseries", title, description, sql, unit, FORMAT_TIME_SERIES, th, options=options,
                 custom=custom, extra=extra, **kw)


def table(title: str, description: str, sql: str, unit: str = "none", th: Json = NEUTRAL,
          overrides: list[Json] | None = None, **kw: Any) -> Panel:
    options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    return Panel("table", title, description, sql, unit, FORMAT_TABLE, th, w=kw.pop("w", 24), h=kw.pop("h", 9),
                 overrides=overrides or [], options=options, custom={"filterable": True}, **kw)


def bargauge(title: str, description: str, sql: str, unit: str, th: Json = NEUTRAL, **kw: Any) -> Panel:
    options = {"orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
               "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True}}
    return Panel("bargauge", title, description, sql, unit, FORMAT_TABLE, th, options=options, **kw)


def query_variable(name: str, label: str, sql: str, description: str) -> Json:
    """A multi-value, include-all variable filled by SQL; defaults to All."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": dict(DS_REF),
        "query": {"editorType": "sql", "rawSql": sql.strip(), "format": FORMAT_TABLE, "refId": f"var-{name}"},
        "definition": sql.strip(),
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "options": [],
    }


def datasource_variable() -> Json:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": PLUGIN_ID,
        "current": {"selected": True, "text": "streamtriage ClickHouse", "value": DATASOURCE_UID},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def textbox_variable(name: str, label: str, default: str, description: str, hide: int = 0) -> Json:
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "description": description,
        "query": default,
        "current": {"selected": False, "text": default, "value": default},
        "options": [{"selected": True, "text": default, "value": default}],
        "hide": hide,
    }


def custom_variable(name: str, label: str, choices: list[str], default: str, description: str) -> Json:
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "description": description,
        "query": ",".join(choices),
        "current": {"selected": True, "text": default, "value": default},
        "options": [{"selected": c == default, "text": c, "value": c} for c in choices],
        "multi": False,
        "includeAll": False,
        "hide": 0,
    }


def dashboard(uid: str, title: str, description: str, variables: list[Json], rows: list[list[Panel]]) -> Json:
    """Lay panels out row by row (each inner list is one visual row) and number them from 1."""
    panels: list[Json] = []
    pid, y = 1, 0
    for row in rows:
        x, height = 0, 0
        for p in row:
            if x + p.w > 24:
                raise ValueError(f"{title}: row with {p.title!r} is wider than 24 columns")
            panels.append(p.to_json(pid, x, y))
            pid, x, height = pid + 1, x + p.w, max(height, p.h)
        y += height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["streamtriage", "llm"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": DASHBOARD_SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["streamtriage"], "title": "streamtriage", "asDropdown": False,
                   "includeVars": True, "keepTime": True, "targetBlank": False, "icon": "external link",
                   "tooltip": "", "url": ""}],
        "templating": {"list": variables},
        "panels": panels,
    }
