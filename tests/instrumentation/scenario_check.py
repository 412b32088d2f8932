"""The per-scenario check shared by the in-process catalogue test and the openai 1.x subprocess run:
run a scenario without and with the hook, compare what the app saw, and check the spans.
Plain ``assert``s, no pytest dependency, so it runs in ``.venv-openai1`` too."""
from __future__ import annotations

import gc
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamtriage.instrumentation import AnthropicInstrumentor, OpenAIInstrumentor, reset_stats, stats
from streamtriage.simulator.drivers import run_scenario
from streamtriage.simulator.scenarios import Scenario

# Outcomes the hook cannot observe as the catalogue states them, with the reason (see the report):
# the app raises inside a plain ``for`` loop (no ``with``, no close), so nothing reaches the hook
# until the abandoned stream is garbage-collected (cancelled/gc) or, async, its generator is
# finalised by the event loop (cancelled/generator_exit).
UNOBSERVABLE_APP_ERROR = {"chat-finish-absent-keyerror", "chat-empty-choices-usage"}


def _top_level_calls(spans: list[Any]) -> list[Any]:
    calls = [s for s in spans if s.attributes.get("streamtriage.span") == "call"]
    ids = {c.context.span_id for c in calls}
    return sorted((c for c in calls if c.parent is None or c.parent.span_id not in ids), key=lambda s: s.start_time)


def _app_view(obs: Any, sc: Scenario) -> dict:
    view = obs.app_view()
    if sc.gives_up or sc.call.endswith("manual_poll") or sc.call.endswith("background_poll"):
        view.pop("polls")  # how many polls fit before the app's wall-clock deadline is timing, not behaviour
    return view


def check_scenario(base_url: str, sc: Scenario, mode: str) -> None:
    """Raises AssertionError when the hook changed what the app saw or its spans miss a fact."""
    bare = run_scenario(sc, base_url, mode)

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    insts = (OpenAIInstrumentor(), AnthropicInstrumentor())
    reset_stats()
    for inst in insts:
        inst.instrument(tracer_provider=provider, flush_after_ms=200)
    try:
        hooked = run_scenario(sc, base_url, mode)
        gc.collect()
    finally:
        for inst in insts:
            inst.uninstrument()
    assert stats()["hook_errors"] == 0, stats()["last_error"]
    assert stats()["calls_started"] == stats()["calls_ended"]  # nothing left open
    check_run(sc, bare, hooked, list(exporter.get_finished_spans()))


def check_run(sc: Scenario, bare: Any, hooked: Any, spans: list[Any]) -> None:
    """The checks of one (scenario, mode): ``bare``/``hooked`` observations and the hooked run's spans."""
    # 1. the app saw exactly the same thing
    hv, bv = _app_view(hooked, sc), _app_view(bare, sc)
    assert hv == bv, {k: (hv[k], bv[k]) for k in hv if hv[k] != bv[k]}

    # 2. the scenario's last SDK call carries the facts it implies
    calls = _top_level_calls(spans)
    assert calls, "no call span"
    a = calls[-1].attributes
    sdk = hooked.sdk_version  # the SDK the scenario drove (openai or anthropic)
    expected_outcome = sc.outcome(sdk)
    if sc.name in UNOBSERVABLE_APP_ERROR:
        # async: asyncio.run() finalises the abandoned async generator (generator_exit) before any GC pass
        assert a["streamtriage.outcome"] == "cancelled", dict(a)
        assert a.get("streamtriage.cancel.reason") in ("gc", "generator_exit"), dict(a)
    else:
        assert a["streamtriage.outcome"] == expected_outcome, dict(a)
    expected_api = sc.api
    assert a["streamtriage.api"] == expected_api
    if sc.call.endswith(("background_poll", "manual_poll")):
        polls = [s for s in spans if s.attributes.get("streamtriage.span") == "poll"]
        assert len(polls) == hooked.polls
        if polls:
            last = max(polls, key=lambda s: s.start_time)
            assert last.attributes["streamtriage.status"] == sc.expected_status
            assert last.context.trace_id == calls[-1].context.trace_id  # create + polls = one trace
            assert last.attributes["streamtriage.poll.attempt"] == len(polls)
        return
    if expected_outcome not in ("http_error",) and sc.name not in UNOBSERVABLE_APP_ERROR:
        assert a["streamtriage.terminal.seen"] is sc.expected_terminal_seen, dict(a)
    if sc.expected_finish_reason is not None:
        assert a["gen_ai.response.finish_reasons"][0] == sc.expected_finish_reason
    elif sc.api == "chat.completions" and "gen_ai.response.finish_reasons" in a and expected_outcome != "error":
        assert a["gen_ai.response.finish_reasons"][0] == ""
    if sc.expected_status is not None and expected_outcome != "http_error":
        assert a.get("streamtriage.status") == sc.expected_status, dict(a)
    view = sc.view(sdk)
    if view.exception and expected_outcome in ("transport_error", "timeout", "http_error", "error_event", "error"):
        assert a["error.type"] == view.exception
        assert a["streamtriage.exception.chain"][0] == view.exception
    if hooked.events and a.get("streamtriage.call.mode") == "stream":
        events = [s for s in spans if s.attributes.get("streamtriage.span") == "event" and s.parent.span_id == calls[-1].context.span_id]
        assert sum(e.attributes["streamtriage.event.count"] for e in events) == a["streamtriage.event.count"]
        assert a["streamtriage.event.count"] >= len(hooked.events)
