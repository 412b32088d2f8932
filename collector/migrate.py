"""Versioned, idempotent schema migrations, applied at collector start.

Files are ``migrations/NNNN_verb_object.sql``; statements are separated by a line holding only
``;``; placeholders ``{db}``, ``{ttl_days}``, ``{label_ttl_days}``. Every statement is idempotent
(``IF NOT EXISTS``), so a crash between applying a file and recording it is harmless. Applied
versions are recorded in ``streamtriage_migrations``. Retention is a setting, not history: after
the files, the configured TTLs are applied with ``MODIFY TTL`` when the table's differs.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .cluster_ddl import for_cluster, replicated_engine

MIGRATIONS_TABLE = "streamtriage_migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def statements(self, **values: Any) -> list[str]:
        rendered = self.text
        for key, value in values.items():
            rendered = rendered.replace("{" + key + "}", str(value))
        parts = re.split(r"(?m)^\s*;\s*$", rendered)
        return [p.strip() for p in parts if _strip_comments(p).strip()]


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def load_migrations() -> list[Migration]:
    """All shipped migrations, in version order (duplicate numbers are a packaging bug)."""
    folder = resources.files("streamtriage.collector") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {folder}: {versions}")
    return found


def _history_table_ddl(db: str, cluster: str | None) -> str:
    columns = "Version UInt32, Name String, Checksum String, AppliedAt DateTime64(3) DEFAULT now64(3)"
    if cluster is None:
        return f"CREATE TABLE IF NOT EXISTS {db}.{MIGRATIONS_TABLE} ({columns}) ENGINE = ReplacingMergeTree ORDER BY Version"
    return (f"CREATE TABLE IF NOT EXISTS {db}.{MIGRATIONS_TABLE} ON CLUSTER `{cluster}` ({columns}) "
            f"{replicated_engine('ReplacingMergeTree', '')} ORDER BY Version")


def render_migrations(database: str, ttl_days: int, label_ttl_days: int,
                      cluster: str | None = None) -> list[tuple[Migration, list[str]]]:
    """Every shipped migration's statements as they would run: single node, or ``cluster``'s form."""
    db = f"`{database}`"
    out = []
    for mig in load_migrations():
        stmts = mig.statements(db=db, ttl_days=int(ttl_days), label_ttl_days=int(label_ttl_days))
        if cluster is not None:
            stmts = [c for stmt in stmts for c in for_cluster(stmt, cluster)]
        out.append((mig, stmts))
    return out


def apply_migrations(client: Any, database: str, ttl_days: int, label_ttl_days: int,
                     cluster: str | None = None) -> list[str]:
    """Apply what is missing; returns the names applied now. ``client`` is a clickhouse-connect client.

    With ``cluster``, DDL runs ``ON CLUSTER`` in the replicated + distributed form (cluster_ddl.py).
    """
    db = f"`{database}`"
    client.command(_history_table_ddl(db, cluster))
    done = {int(v): (str(name), str(checksum)) for v, name, checksum in client.query(
        f"SELECT Version, argMax(Name, AppliedAt), argMax(Checksum, AppliedAt) FROM {db}.{MIGRATIONS_TABLE} "
        "GROUP BY Version").result_rows}
    rendered = render_migrations(database, ttl_days, label_ttl_days, cluster)
    check_history([mig for mig, _ in rendered], done)
    applied: list[str] = []
    for mig, stmts in rendered:
        if mig.version in done:
            continue
        for stmt in stmts:
            client.command(stmt)
        client.insert(f"{MIGRATIONS_TABLE}", [[mig.version, mig.name, mig.checksum]],
                      column_names=["Version", "Name", "Checksum"], database=database)
        applied.append(mig.name)
    # The TTL of the DateTime64 tables is on the column itself: 0001/0004 wrote toDateTime(Timestamp),
    # which wraps past 2106 (a span dated 2107 was dropped at the next merge). Re-applied here at every
    # start, as retention is, so existing stores are fixed too and no migration file is edited.
    _apply_ttl(client, database, "otel_traces", "Timestamp", ttl_days, cluster)
    _apply_ttl(client, database, "otel_traces_trace_id_ts", "toDateTime(Start)", ttl_days, cluster)
    _apply_ttl(client, database, "streamtriage_labels", "Timestamp", label_ttl_days, cluster)
    return applied


class MigrationHistoryError(RuntimeError):
    """The store's applied migrations disagree with the shipped files: refuse to start."""


def check_history(shipped: list[Migration], done: dict[int, tuple[str, str]]) -> None:
    """An applied migration is history: its file may not change, nor disappear.

    Editing a past migration would leave stores created before and after the edit with different
    schemas under the same version; the fix is a new numbered file.
    """
    by_version = {m.version: m for m in shipped}
    for version, (name, checksum) in sorted(done.items()):
        mig = by_version.get(version)
        if mig is None:
            raise MigrationHistoryError(
                f"migration {version:04d} ({name}) is applied in the store but not shipped: "
                "this store was migrated by a newer streamtriage")
        if mig.checksum != checksum:
            raise MigrationHistoryError(
                f"collector/migrations/{mig.name} was edited after it was applied (checksum {checksum} in the "
                f"store, {mig.checksum} shipped): restore the file and put the change in a new numbered migration")


def _apply_ttl(client: Any, database: str, table: str, time_expr: str, days: int,
               cluster: str | None = None) -> None:
    if cluster is not None:  # the data (and its TTL) lives in the local tables
        table = f"{table}_local"
    rows = client.query(
        "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": table},
    ).result_rows
    if not rows:
        return
    wanted = f"TTL {time_expr} + toIntervalDay({int(days)})"
    if wanted not in rows[0][0]:
        on = f" ON CLUSTER `{cluster}`" if cluster is not None else ""
        client.command(f"ALTER TABLE `{database}`.`{table}`{on} MODIFY {wanted}")
