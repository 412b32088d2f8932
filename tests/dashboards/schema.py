"""Creates the tables the dashboards read, with the collector's own migrations (the real schema)."""
from __future__ import annotations

from typing import Any

from streamtriage.collector.migrate import apply_migrations


def apply_schema(client: Any, db: str) -> list[str]:
    """Create ``db`` and apply every shipped migration; returns the migration names applied."""
    client.command(f"CREATE DATABASE IF NOT EXISTS `{db}`")
    return apply_migrations(client, database=db, ttl_days=30, label_ttl_days=30)
