"""The Grafana and plugin versions the dashboards and alert files are written for.

One place, because the exported tree, the dashboards' ``pluginVersion`` fields and the docs all
name them, and a mismatch between them is how provisioning silently breaks after an upgrade.
"""
from __future__ import annotations

GRAFANA_VERSION = "11.6"
"""Minimum Grafana version: alert-rule file provisioning fields and dashboard schema 39 as used here."""

PLUGIN_ID = "grafana-clickhouse-datasource"
PLUGIN_VERSION = "4.20.0"
"""The ClickHouse data source plugin release the targets (``editorType``/``format``) are written for (4.20.x)."""

DASHBOARD_SCHEMA_VERSION = 39
