"""The collector's LLM metrics, which the Prometheus alert rules read (docs/metrics.md).

Spans go through the real OTLP exporter into a ``streamtriage serve`` subprocess; ``/metrics`` must
count exactly the call spans sent (by service, model, API, outcome and status), the truncated ones,
and report how long the oldest still-queued polled object has been open.
"""
from __future__ import annotations

import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.support.collector_proc import collector_process


def _metrics(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")}


def _call(tracer, outcome: str, *, error: bool = False, **extra: object) -> None:  # type: ignore[no-untyped-def]
    attrs = {"streamtriage.span": "call", "streamtriage.api": "chat.completions", "streamtriage.outcome": outcome,
             "gen_ai.request.model": "gpt-4o-mini", **extra}
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attrs) as span:
        if error:
            span.set_status(Status(StatusCode.ERROR, "cut"))


def test_calls_truncations_and_open_hangs_are_exported(tmp_path: Path) -> None:
    with collector_process(tmp_path, env={"STREAMTRIAGE_GAUGES_REFRESH_S": "0.2"}) as svc:
        provider = TracerProvider(resource=Resource.create({"service.name": "bot"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=svc.url + "/v1/traces")))
        tracer = provider.get_tracer("test")
        for _ in range(3):
            _call(tracer, "completed", **{"gen_ai.response.finish_reasons": ("stop",)})
        _call(tracer, "completed", **{"gen_ai.response.finish_reasons": ("length",)})
        _call(tracer, "transport_error", error=True)
        with tracer.start_as_current_span("event", attributes={"streamtriage.span": "event"}):
            pass  # not a call: never counted
        for attempt in (1, 2):  # a run still queued after two polls, first seen 900 s ago
            poll = {"streamtriage.span": "poll", "streamtriage.api": "assistants.runs", "streamtriage.status": "queued",
                    "streamtriage.object.id": "run_abc", "streamtriage.poll.attempt": attempt,
                    "streamtriage.poll.first_seen_ms": 900_000.0 + attempt}
            with tracer.start_as_current_span("poll assistants.runs", kind=SpanKind.CLIENT, attributes=poll):
                pass
        provider.shutdown()

        deadline = time.monotonic() + 30
        while True:
            status, _, body = svc.request("GET", "/metrics")
            assert status == 200
            m = _metrics(body.decode())
            if m.get('streamtriage_polling_hang_oldest_seconds{api="assistants.runs"}', 0) > 0 \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.2)

    base = 'service="bot",model="gpt-4o-mini",api="chat.completions"'
    assert m[f'streamtriage_calls_total{{{base},outcome="completed",status="Unset"}}'] == 4
    assert m[f'streamtriage_calls_total{{{base},outcome="transport_error",status="Error"}}'] == 1
    assert sum(v for k, v in m.items() if k.startswith("streamtriage_calls_total")) == 5
    assert m[f"streamtriage_truncated_calls_total{{{base}}}"] == 1
    assert 900 <= m['streamtriage_polling_hang_oldest_seconds{api="assistants.runs"}'] < 901
    assert m['streamtriage_polling_hang_oldest_seconds{api="responses"}'] == 0
