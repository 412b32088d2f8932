"""The Anthropic Messages hook on the real anthropic SDK against the simulator: what its spans say.

The catalogue-wide differential check (tests/instrumentation/test_scenarios.py) covers every Anthropic
scenario on anthropic 2.x in this interpreter; the same check (test_older_sdks.py's script) runs here on the
0.x line in ``.venv-openai1``. The other tests pin the Anthropic-specific facts: lazy patching, pings kept apart
from the gap clock, the in-band error on HTTP 200, the refusal before any request, delta coalescing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamtriage.instrumentation import AnthropicInstrumentor, reset_stats, stats
from streamtriage.simulator import run_simulator
from streamtriage.simulator.anthropic_scenarios import ANTHROPIC_SCENARIOS
from streamtriage.simulator.drivers import run_scenario
from streamtriage.simulator.scenarios import BY_NAME, with_params
from tests.conftest import REPO
from tests.support.sdk_lines import python_for

from .test_older_sdks import SCRIPT


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with run_simulator() as handle:
        yield handle


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inst = AnthropicInstrumentor()
    reset_stats()
    inst.instrument(tracer_provider=provider, flush_after_ms=200)
    try:
        yield exporter
    finally:
        inst.uninstrument()
    assert stats()["hook_errors"] == 0, stats()["last_error"]
    assert stats()["calls_started"] == stats()["calls_ended"]


def _call(exporter: InMemorySpanExporter) -> tuple[dict[str, Any], list[Any]]:
    found = exporter.get_finished_spans()
    (call,) = [s for s in found if s.attributes.get("streamtriage.span") == "call"]
    events = sorted((s for s in found if s.attributes.get("streamtriage.span") == "event"),
                    key=lambda s: (s.attributes["streamtriage.event.index"], s.start_time))
    return dict(call.attributes), events


def test_instrument_leaves_anthropic_unimported_until_the_app_imports_it() -> None:
    code = """
import sys, streamtriage
handle = streamtriage.instrument(endpoint="http://127.0.0.1:9")
assert "anthropic" not in sys.modules, "the hook imported anthropic"
import anthropic
from anthropic import _base_client
assert hasattr(_base_client.SyncAPIClient.request, "__wrapped__"), "not patched after import"
handle.shutdown()
assert not hasattr(_base_client.SyncAPIClient.request, "__wrapped__"), "not unpatched"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_healthy_stream_is_a_call_span_with_coalesced_deltas(sim: Any, spans: InMemorySpanExporter) -> None:
    sc = with_params(BY_NAME["anthropic-healthy"], n=40)
    obs = run_scenario(sc, sim.base_url, "sync")
    assert obs.exception is None and obs.finish_reason == "end_turn"
    a, events = _call(spans)
    assert (a["streamtriage.api"], a["gen_ai.operation.name"], a["gen_ai.provider.name"]) == ("messages", "chat", "anthropic")
    assert a["streamtriage.sdk.name"] == "anthropic-python" and a["streamtriage.outcome"] == "completed"
    assert a["streamtriage.terminal.event"] == "message_stop" and a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["streamtriage.delta.count"] == 40 and a["streamtriage.event.count"] == 46 and a["streamtriage.ping.count"] == 1
    assert [e.name for e in events] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                        "content_block_stop", "message_delta", "message_stop"]
    assert events[3].attributes["streamtriage.event.count"] == 40  # one span for the 40 deltas
    assert events[-1].attributes["streamtriage.terminal"] is True
    assert events[-2].attributes["streamtriage.finish_reason"] == "end_turn"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_pings_do_not_reset_the_gap_clock(sim: Any, spans: InMemorySpanExporter, mode: str) -> None:
    obs = run_scenario(BY_NAME["anthropic-ping-stall"], sim.base_url, mode)
    assert obs.gave_up and obs.exception is None  # the read timeout never fired: the app's deadline ended it
    a, events = _call(spans)
    assert a["streamtriage.outcome"] == "cancelled" and a["streamtriage.terminal.seen"] is False
    assert a["streamtriage.ping.count"] >= 6, a
    assert a["streamtriage.last_event.age_ms"] >= 900, a  # the stall, although a ping came every 0.1 s
    pings = [e.attributes["streamtriage.event.gap_ms"] for e in events if e.name == "ping"][1:]
    assert pings == sorted(pings) and pings[-1] >= 900, pings  # measured from the last content event


@pytest.mark.parametrize("name", ["anthropic-error-event", "anthropic-error-event-helper"])
def test_in_band_error_on_http_200_is_an_error_event(sim: Any, spans: InMemorySpanExporter, name: str) -> None:
    obs = run_scenario(BY_NAME[name], sim.base_url, "sync")
    assert obs.exception is not None and obs.exception.type == "anthropic.APIStatusError"
    a, events = _call(spans)
    assert a["streamtriage.outcome"] == "error_event" and a["http.response.status_code"] == 200
    assert a["streamtriage.error.code"] == "overloaded_error" and a["streamtriage.retry.count"] == 0
    assert events[-1].name == "error" and events[-1].attributes["streamtriage.error.code"] == "overloaded_error"


def test_refusal_before_any_request_is_recorded(sim: Any, spans: InMemorySpanExporter) -> None:
    obs = run_scenario(BY_NAME["anthropic-streaming-required"], sim.base_url, "async")
    assert obs.exception is not None and "Streaming is required" in obs.exception.message
    a, events = _call(spans)
    assert a["streamtriage.outcome"] == "error" and a["error.type"] == "builtins.ValueError"
    assert "http.response.status_code" not in a and not events
    assert a["gen_ai.request.max_tokens"] == 128000


def test_missing_message_stop_leaves_an_empty_stop_reason(sim: Any, spans: InMemorySpanExporter) -> None:
    obs = run_scenario(BY_NAME["anthropic-no-message-stop"], sim.base_url, "sync")
    assert obs.exception is None and obs.finish_reason is None  # what get_final_message() said
    a, _ = _call(spans)
    assert a["streamtriage.outcome"] == "no_terminal" and a["gen_ai.response.finish_reasons"] == ("",)
    assert a["streamtriage.helper"] == "messages.stream"


def test_hook_on_anthropic_0x() -> None:
    """Every Anthropic scenario, sync and async, differential + span check, on the 0.x line (httpx) that
    scripts/sdk-matrix.sh installs in .venv-openai1 (a missing virtualenv fails, with the command)."""
    venv_py = python_for("1")
    names = [s.name for s in ANTHROPIC_SCENARIOS]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([str(venv_py), "-c", SCRIPT, json.dumps(names)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    version = subprocess.run([str(venv_py), "-c", "import anthropic; print(anthropic.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version.startswith("0."), version
    failed = {k: v for k, v in out["results"].items() if v != "ok"}
    assert not failed, "\n\n".join(f"{k}:\n{v}" for k, v in failed.items())
    assert len(out["results"]) == 2 * len(names)
