"""The hook never hurts the app: failures in the exporter, a span processor or the hook's own code
are swallowed and counted, and the app sees exactly what it sees without the hook."""
from __future__ import annotations

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from streamtriage.instrumentation import OpenAIInstrumentor, calls, reset_stats, stats
from streamtriage.instrumentation.hooks import exits, requests, streams

MSGS = [{"role": "user", "content": "hi"}]


def _app(url: str) -> list:
    """A small app: one healthy stream, one cut stream, one plain request; returns what it saw."""
    c = openai.OpenAI(base_url=url, api_key="k", max_retries=0)
    seen: list = []
    for model in ("mini-healthy", "mini-cut"):
        try:
            for ch in c.chat.completions.create(model=model, messages=MSGS, stream=True, max_tokens=5):
                seen.append(ch.model_dump_json(exclude={"created"}))
        except Exception as e:
            seen.append((type(e).__module__, type(e).__name__, str(e)))
    seen.append(c.chat.completions.create(model="mini-healthy", messages=MSGS).choices[0].message.content)
    with c.chat.completions.stream(model="mini-healthy", messages=MSGS, max_tokens=3) as s:
        seen.extend(type(ev).__name__ for ev in s)
        seen.append(s.get_final_completion().choices[0].finish_reason)
    return seen


class FailingExporter(SpanExporter):
    def export(self, spans):  # type: ignore[override]
        raise RuntimeError("collector down")

    def shutdown(self) -> None:
        pass


class FailingProcessor(SimpleSpanProcessor):
    def on_end(self, span) -> None:  # type: ignore[override]
        raise RuntimeError("processor bug")


@pytest.fixture(scope="module")
def baseline(mini_url):
    return _app(mini_url)


def _with_hook(url: str, processor) -> list:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    inst = OpenAIInstrumentor()
    reset_stats()
    inst.instrument(tracer_provider=provider)
    try:
        return _app(url)
    finally:
        inst.uninstrument()


def test_failing_exporter(mini_url, baseline):
    assert _with_hook(mini_url, SimpleSpanProcessor(FailingExporter())) == baseline
    assert stats()["calls_ended"] == 4


def test_failing_span_processor_is_counted(mini_url, baseline):
    assert _with_hook(mini_url, FailingProcessor(FailingExporter())) == baseline
    assert stats()["hook_errors"] > 0


@pytest.mark.parametrize(
    "target",
    [
        (requests, "classify"),
        (calls.CallState, "_end_span"),
        (calls.CallState, "delta"),
        (calls.CallState, "event"),
        (streams, "_done_marker"),
        (exits, "exit_state"),
        (streams, "_attach"),
    ],
    ids=lambda t: t[1],
)
def test_hook_internal_failure_is_swallowed(mini_url, baseline, monkeypatch, target):
    def boom(*a, **k):
        raise ValueError("hook bug")

    monkeypatch.setattr(target[0], target[1], boom)
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    assert _with_hook(mini_url, SimpleSpanProcessor(InMemorySpanExporter())) == baseline
    s = stats()
    assert s["hook_errors"] > 0
    assert "hook bug" in s["last_error"]
