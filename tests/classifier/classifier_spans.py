"""Spans made with the real OpenTelemetry SDK (per docs/span-contract.md), stored in chDB the way the
collector stores them (OTLP encode -> collector row conversion -> clickhouse-connect insert)."""
from __future__ import annotations

import time
from typing import Any

import clickhouse_connect
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, set_span_in_context

from streamtriage.collector.migrate import apply_migrations
from streamtriage.collector.span_rows import INSERT_COLUMNS, convert


def open_db(chdb_path: Any, database: str) -> Any:
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client.database = database
    apply_migrations(client, database, 30, 90)
    return client


class SpanMaker:
    """Builds call / event / poll spans with explicit times; ``flush`` stores the finished ones."""

    def __init__(self, service: str = "app") -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("streamtriage.instrumentation.openai", "0.1.0")

    def call_span(self, name: str, start_ns: int) -> Any:
        """Start a call span; the caller sets its attributes when it ends it (as the hook does)."""
        return self.tracer.start_span(name, kind=SpanKind.CLIENT, start_time=start_ns)

    @staticmethod
    def end_call(span: Any, attrs: dict[str, Any], end_ns: int) -> None:
        span.set_attributes({"streamtriage.span": "call", "streamtriage.contract": 1, **attrs})
        span.end(end_time=end_ns)

    def event(self, parent: Any, etype: str, index: int, start_ns: int, end_ns: int, **attrs: Any) -> None:
        a = {"streamtriage.span": "event", "streamtriage.event.type": etype, "streamtriage.event.index": index,
             "streamtriage.event.count": 1, "streamtriage.event.gap_ms": 50.0, **attrs}
        sp = self.tracer.start_span(etype, context=set_span_in_context(parent), kind=SpanKind.INTERNAL,
                                    start_time=start_ns, attributes=a)
        sp.end(end_time=end_ns)

    def poll(self, parent: Any, api: str, obj: str, status: str, attempt: int, start_ns: int, **attrs: Any) -> None:
        a = {"streamtriage.span": "poll", "streamtriage.api": api, "streamtriage.object.id": obj,
             "streamtriage.status": status, "streamtriage.poll.attempt": attempt, **attrs}
        sp = self.tracer.start_span(f"poll {api}", context=set_span_in_context(parent), kind=SpanKind.CLIENT,
                                    start_time=start_ns, attributes=a)
        sp.end(end_time=start_ns + 5_000_000)

    def flush(self, client: Any) -> int:
        spans = self.exporter.get_finished_spans()
        self.exporter.clear()
        if not spans:
            return 0
        rows = convert(encode_spans(spans)).rows
        client.insert("otel_traces", rows, column_names=list(INSERT_COLUMNS))
        return len(rows)


def now_ns() -> int:
    return time.time_ns()
