"""Every simulator scenario, sync and async, with the real SDK: the hook is invisible to the app
(differential test) and its spans carry the facts the scenario implies.

Every (scenario, mode) runs once without the hook and once with it; the hooked run's spans are
checked against the scenario's ``expected_*`` fields (outcome, terminal seen, finish reason,
status). The hook is installed once for all hooked runs; each hooked run is wrapped in its own root
span so its spans are told apart by trace id. Runs are sequential: under a thread pool the
simulator was seen to mix Responses lifecycle frames between concurrent streams (reported).
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamtriage.instrumentation import AnthropicInstrumentor, OpenAIInstrumentor, reset_stats, stats
from streamtriage.simulator import run_simulator
from streamtriage.simulator.drivers import run_scenario
from streamtriage.simulator.scenarios import SCENARIOS, Scenario

from .scenario_check import check_run

MODES = ("sync", "async")
RUNNABLE = [s for s in SCENARIOS if int(openai.__version__.split(".")[0]) >= s.min_sdk]


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[tuple[str, str], tuple[Any, Any, list[Any]]]]:
    keys = [(sc, mode) for sc in RUNNABLE for mode in MODES]
    with run_simulator() as sim:
        bare = {k: run_scenario(k[0], sim.base_url, k[1]) for k in keys}

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("scenario-test")
        insts = (OpenAIInstrumentor(), AnthropicInstrumentor())
        reset_stats()
        for inst in insts:
            inst.instrument(tracer_provider=provider, flush_after_ms=200)

        def hooked_run(key: tuple[Scenario, str]) -> tuple[Any, int]:
            with tracer.start_as_current_span(f"scenario {key[0].name} {key[1]}") as root:
                obs = run_scenario(key[0], sim.base_url, key[1])
            return obs, root.get_span_context().trace_id

        try:
            hooked = {k: hooked_run(k) for k in keys}
            gc.collect()  # abandoned streams are finalised now
        finally:
            for inst in insts:
                inst.uninstrument()
    health = stats()
    assert health["hook_errors"] == 0, health["last_error"]
    assert health["calls_started"] == health["calls_ended"]  # no call span left open
    by_trace: dict[int, list[Any]] = {}
    for span in exporter.get_finished_spans():
        if span.attributes.get("streamtriage.span"):
            by_trace.setdefault(span.context.trace_id, []).append(span)
    yield {(sc.name, mode): (bare[(sc, mode)], hooked[(sc, mode)][0], by_trace.get(hooked[(sc, mode)][1], []))
           for sc, mode in keys}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sc", RUNNABLE, ids=lambda s: s.name)
def test_scenario(runs: dict, sc: Scenario, mode: str) -> None:
    bare, hooked, spans = runs[(sc.name, mode)]
    check_run(sc, bare, hooked, spans)
