"""The Grafana data source provisioning entry for the ClickHouse that holds the spans.

All data-source rendering goes through :func:`render_datasource`, so another target (for example
the collector's read-only ClickHouse-compatible endpoint) is one more branch here, not a second
copy of the YAML. Secrets are never written: the password is a ``$ENV`` reference Grafana
expands when it loads the file.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .builder import DATASOURCE_UID
from .versions import PLUGIN_ID

DEFAULT_URL = "http://localhost:8123"
PASSWORD_ENV = "STREAMTRIAGE_CLICKHOUSE_PASSWORD"
_DEFAULT_PORTS = {("http", False): 8123, ("http", True): 8443, ("native", False): 9000, ("native", True): 9440}


class DatasourceError(ValueError):
    """The data source URL or settings cannot be provisioned."""


@dataclass(frozen=True)
class DatasourceSettings:
    """Where Grafana reaches ClickHouse; ``protocol`` is the plugin's ``http`` or ``native``."""

    host: str
    port: int
    protocol: str = "http"
    secure: bool = False
    database: str = "default"
    username: str = "default"
    password_env: str | None = PASSWORD_ENV
    uid: str = DATASOURCE_UID
    name: str = "streamtriage ClickHouse"
    had_password: bool = False  # the URL carried a password, which was deliberately not written

    @classmethod
    def from_url(cls, url: str, *, database: str | None = None, username: str | None = None) -> DatasourceSettings:
        """``http(s)://[user[:pass]@]host[:port][/db]`` or ``clickhouse(s)://...`` for the native protocol."""
        parsed = urlparse(url)
        scheme = parsed.scheme.lower()
        if scheme in ("http", "https"):
            protocol, secure = "http", scheme == "https"
        elif scheme in ("clickhouse", "clickhouses", "tcp"):
            protocol, secure = "native", scheme == "clickhouses"
        elif scheme == "chdb":
            raise DatasourceError("Grafana cannot read an embedded chDB store: give the URL of a ClickHouse server "
                                  "(or of the collector's read-only ClickHouse endpoint, serve --clickhouse-port)")
        else:
            raise DatasourceError(f"data source URL must be http(s):// or clickhouse(s)://, got {url!r}")
        if not parsed.hostname:
            raise DatasourceError(f"data source URL has no host: {url!r}")
        try:
            port = parsed.port or _DEFAULT_PORTS[(protocol, secure)]
        except ValueError as exc:
            raise DatasourceError(f"bad port in data source URL {url!r}") from exc
        db = database or parsed.path.strip("/") or "default"
        if not db.replace("_", "").isalnum():
            raise DatasourceError(f"database must be a plain identifier, got {db!r}")
        return cls(host=parsed.hostname, port=port, protocol=protocol, secure=secure, database=db,
                   username=username or parsed.username or "default", had_password=bool(parsed.password))


def default_url(env: Mapping[str, str] | None = None) -> str:
    """The collector's configured store when it is a ClickHouse server, else localhost:8123."""
    env = os.environ if env is None else env
    store = env.get("STREAMTRIAGE_STORE", "")
    return store if urlparse(store).scheme in ("http", "https") else DEFAULT_URL


def render_datasource(ds: DatasourceSettings) -> dict[str, Any]:
    """The ``provisioning/datasources`` document for the plugin (keys from ``pkg/plugin/settings.go``)."""
    otel = {"defaultDatabase": ds.database, "otelEnabled": True, "otelVersion": "latest"}
    entry: dict[str, Any] = {
        "name": ds.name,
        "uid": ds.uid,
        "type": PLUGIN_ID,
        "access": "proxy",
        "editable": False,
        "isDefault": False,
        "jsonData": {
            "host": ds.host,
            "port": ds.port,
            "protocol": ds.protocol,
            "secure": ds.secure,
            "username": ds.username,
            "defaultDatabase": ds.database,
            "queryTimeout": 60,
            "dialTimeout": 10,
            "traces": {**otel, "defaultTable": "otel_traces", "durationUnit": "nanoseconds",
                       "traceTimestampTableSuffix": "_trace_id_ts"},
        },
    }
    if ds.password_env:
        entry["secureJsonData"] = {"password": f"${ds.password_env}"}
    return {"apiVersion": 1, "datasources": [entry]}
