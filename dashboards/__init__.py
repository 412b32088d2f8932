"""Grafana dashboards, alert rules and their provisioning, plus the same alerts as Prometheus rules.

Everything is defined in Python and rendered to files: ``definitions/`` (the three dashboards),
``alerts.py`` (Grafana alert rules), ``prometheus.py`` (Prometheus rules), ``thresholds.py`` (shared
numbers), ``datasource.py`` / ``export.py`` (the provisioning tree, ``streamtriage dashboards export``).
``macros.py`` expands SQL as the ClickHouse plugin does and ``checks.py`` checks a tree structurally,
so both can be verified without a Grafana server. Targets: see ``versions.py``.
"""
