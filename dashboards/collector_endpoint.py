"""Provision Grafana's data source at the collector's read-only ClickHouse endpoint.

For users on the embedded chDB store there is no ClickHouse server: ``streamtriage serve
--clickhouse-port 8123`` serves the store read-only over ClickHouse's HTTP protocol
(``collector/sqlendpoint``), and this points the provisioned data source at it. The password
Grafana sends is the collector's read token, read from ``$STREAMTRIAGE_READ_TOKEN`` when Grafana
loads the file (the ingest token when the collector has no read token; empty when it has neither,
which the endpoint then does not ask for).
"""
from __future__ import annotations

import dataclasses

from .datasource import DatasourceError, DatasourceSettings

ENDPOINT_PASSWORD_ENV = "STREAMTRIAGE_READ_TOKEN"
ENDPOINT_DEFAULT_URL = "http://localhost:8123"
ENDPOINT_NAME = "streamtriage collector (read-only ClickHouse)"


def endpoint_datasource(url: str = ENDPOINT_DEFAULT_URL, *, database: str | None = None,
                        username: str | None = None) -> DatasourceSettings:
    """Data source settings for ``http(s)://[user@]collector-host:PORT[/db]`` (the collector's endpoint).

    The endpoint speaks only the HTTP protocol; its user is the collector's ``clickhouse_user``
    (``default`` unless configured) and its password the collector's read token.
    """
    ds = DatasourceSettings.from_url(url, database=database, username=username)
    if ds.protocol != "http":
        raise DatasourceError("the collector's ClickHouse endpoint speaks the HTTP protocol only: "
                              "use http(s)://host:PORT (the port given to serve --clickhouse-port)")
    return dataclasses.replace(ds, password_env=ENDPOINT_PASSWORD_ENV, name=ENDPOINT_NAME)
