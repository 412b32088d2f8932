"""Renders the single-node migrations for a ClickHouse cluster.

The numbered files in ``migrations/`` are written once, for one node. On a cluster the same schema
becomes, per table, a ``Replicated*MergeTree`` table named ``<table>_local`` created ``ON CLUSTER``
on every node, plus a ``Distributed`` table under the original name that reads all shards and
routes inserts by a hash of the trace id (so one call's spans and its label land on one shard, and
``FINAL`` on the labels stays exact). This is the layout the OpenTelemetry Collector ClickHouse
exporter documents for its cluster option, so both writers can share the tables. Readers and writers
keep using the original names; only DDL differs.

Every statement kind a migration may use is handled here explicitly; an unknown kind is an error,
so a new migration cannot silently produce single-node DDL on a cluster.
"""
from __future__ import annotations

import re

_IDENT = r"`?[A-Za-z_][A-Za-z0-9_]*`?"
_CREATE_TABLE = re.compile(rf"^CREATE TABLE IF NOT EXISTS (?P<db>{_IDENT})\.(?P<name>{_IDENT})\s*\(", re.S)
_CREATE_MV = re.compile(
    rf"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<db>{_IDENT})\.(?P<name>{_IDENT})\s+TO\s+"
    rf"(?P<tdb>{_IDENT})\.(?P<target>{_IDENT})(?P<rest>.*)$", re.S)
_FROM = re.compile(rf"\bFROM\s+(?P<db>{_IDENT})\.(?P<src>{_IDENT})")
_ALTER = re.compile(rf"^ALTER TABLE (?P<db>{_IDENT})\.(?P<name>{_IDENT})(?P<rest>\s.*)$", re.S)
_ENGINE = re.compile(r"ENGINE\s*=\s*(?P<engine>(?:Replacing|Summing|Aggregating|Collapsing)?MergeTree)\s*\((?P<args>[^)]*)\)")
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


class ClusterDDLError(ValueError):
    """A migration statement this renderer does not know how to run on a cluster."""


def _bare(ident: str) -> str:
    return ident.strip("`")


def _local(ident: str) -> str:
    return f"`{_bare(ident)}_local`"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def replicated_engine(engine: str, args: str) -> str:
    """``ReplacingMergeTree(Version)`` -> ``ReplicatedReplacingMergeTree('<path>', '{replica}', Version)``."""
    inner = REPLICA_PATH + (", " + args.strip() if args.strip() else "")
    return f"ENGINE = Replicated{engine}({inner})"


def for_cluster(stmt: str, cluster: str) -> list[str]:
    """The cluster form of one rendered single-node statement (one or two statements)."""
    on = f" ON CLUSTER `{_bare(cluster)}`"
    stmt = re.sub(r"\A(?:\s*--[^\n]*\n)*\s*", "", stmt)  # leading comment lines explain the file, not the SQL
    if m := _CREATE_TABLE.match(stmt):
        db, name = m.group("db"), m.group("name")
        body = stmt[m.end() - 1:]
        engine = _ENGINE.search(body)
        if engine is None:
            raise ClusterDDLError(f"CREATE TABLE {_bare(name)}: no MergeTree-family engine to replicate")
        body = body[:engine.start()] + replicated_engine(engine.group("engine"), engine.group("args")) + body[engine.end():]
        local = f"CREATE TABLE IF NOT EXISTS {db}.{_local(name)}{on} {body}"
        key = "cityHash64(TraceId)" if re.search(r"^\s*TraceId\s", body, re.M) else "rand()"
        dist = (f"CREATE TABLE IF NOT EXISTS {db}.{name}{on} AS {db}.{_local(name)} "
                f"ENGINE = Distributed({_quote(_bare(cluster))}, {_quote(_bare(db))}, {_quote(_bare(name) + '_local')}, {key})")
        return [local, dist]
    if m := _CREATE_MV.match(stmt):
        rest = _FROM.sub(lambda f: f"FROM {f.group('db')}.{_local(f.group('src'))}", m.group("rest"), count=1)
        return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {m.group('db')}.{m.group('name')}{on} "
                f"TO {m.group('tdb')}.{_local(m.group('target'))}{rest}"]
    if m := _ALTER.match(stmt):
        db, name, rest = m.group("db"), m.group("name"), m.group("rest")
        return [f"ALTER TABLE {db}.{_local(name)}{on}{rest}", f"ALTER TABLE {db}.{name}{on}{rest}"]
    raise ClusterDDLError(f"no cluster form for statement: {stmt[:80]!r}")
