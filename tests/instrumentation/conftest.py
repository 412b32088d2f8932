"""Fixtures for hook tests: an instrumented SDK exporting to memory, and span lookup helpers."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamtriage.instrumentation import OpenAIInstrumentor, reset_stats

from .mini_sse import mini_server


class Spans:
    """The exported spans of one test, split by ``streamtriage.span`` kind."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def kind(self, kind: str) -> list[Any]:
        return [s for s in self.all() if s.attributes.get("streamtriage.span") == kind]

    def call(self) -> Any:
        calls = self.kind("call")
        assert len(calls) == 1, [dict(c.attributes) for c in calls]
        return calls[0]

    def events(self) -> list[Any]:
        return sorted(self.kind("event"), key=lambda s: s.attributes["streamtriage.event.index"])

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture
def hooked(request: pytest.FixtureRequest) -> Iterator[Spans]:
    """The real hook installed on the real SDK, spans kept in memory."""
    opts = getattr(request, "param", {}) or {}
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inst = OpenAIInstrumentor()
    reset_stats()
    inst.instrument(tracer_provider=provider, **opts)
    try:
        yield Spans(exporter)
    finally:
        inst.uninstrument()
        provider.shutdown()


@pytest.fixture(scope="module")
def mini_url() -> Iterator[str]:
    with mini_server() as url:
        yield url
