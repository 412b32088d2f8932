"""Session data set for the dashboard tests: one chDB database holding spans and labels.

Built once per session (chDB is one engine per process: the database lives under the shared
``chdb_path`` and is named uniquely), so every panel and alert test reads the same data.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streamtriage.classifier.feedback import COLUMNS as FEEDBACK_COLUMNS
from tests.dashboards.schema import apply_schema
from tests.dashboards.synthetic import LABEL_COLUMNS, SPAN_COLUMNS, Truth, build_dataset, feedback_rows


@dataclass
class Dataset:
    client: Any
    database: str
    truth: Truth
    schema: list[str]
    source: str
    time_from: datetime
    time_to: datetime


@pytest.fixture(scope="session")
def dataset(chdb_path: Path) -> Iterator[Dataset]:
    import clickhouse_connect

    db = "dash_" + uuid.uuid4().hex[:10]
    admin = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    schema = apply_schema(admin, db)
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database=db)
    spans, labels, truth = build_dataset()
    client.insert("otel_traces", spans, column_names=SPAN_COLUMNS)
    client.insert("streamtriage_labels", labels, column_names=LABEL_COLUMNS)
    client.insert("streamtriage_feedback", feedback_rows(labels), column_names=list(FEEDBACK_COLUMNS))
    assert truth.start is not None and truth.end is not None
    try:
        yield Dataset(client, db, truth, schema, "synthetic OTel SDK spans",
                      truth.start - timedelta(minutes=5), truth.end + timedelta(minutes=1))
    finally:
        admin.command(f"DROP DATABASE IF EXISTS {db}")
