"""The hand-rolled httpx hook against the simulator: the app reads exactly the server's bytes, and
the call and event spans say how the stream ended (terminal, cut, closed early by the app)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamtriage.instrumentation.sse_client import instrument_httpx, uninstrument_httpx
from streamtriage.simulator import run_simulator
from streamtriage.simulator.faults import fault_model

BODY = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with run_simulator() as handle:
        yield handle


@pytest.fixture
def hooked(sim: Any) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    url = httpx.URL(sim.base_url)
    instrument_httpx([f"{url.host}:{url.port}"], provider)
    yield exporter
    uninstrument_httpx()


def _read(sim: Any, model: str) -> tuple[bytes, BaseException | None]:
    got, err = b"", None
    try:
        with httpx.Client(timeout=10) as client, client.stream(
                "POST", f"{sim.base_url}/chat/completions", json={**BODY, "model": model}) as resp:
            for chunk in resp.iter_raw():
                got += chunk
    except httpx.HTTPError as exc:
        err = exc
    return got, err


def _call(exporter: InMemorySpanExporter) -> dict[str, Any]:
    (call,) = [s for s in exporter.get_finished_spans() if s.attributes.get("streamtriage.span") == "call"]
    return dict(call.attributes)


def test_the_app_reads_the_same_bytes(sim: Any, hooked: InMemorySpanExporter) -> None:
    model = fault_model("healthy")
    hooked_body, _ = _read(sim, model)
    uninstrument_httpx()
    bare_body, _ = _read(sim, model)
    strip = [json.loads(x[6:]).get("choices") for x in hooked_body.decode().splitlines() if x.startswith("data: {")]
    assert strip == [json.loads(x[6:]).get("choices") for x in bare_body.decode().splitlines() if x.startswith("data: {")]


def test_healthy_stream_is_completed_with_its_terminal(sim: Any, hooked: InMemorySpanExporter) -> None:
    _read(sim, fault_model("healthy"))
    a = _call(hooked)
    assert a["streamtriage.outcome"] == "completed" and a["streamtriage.terminal.seen"] is True
    assert a["gen_ai.response.finish_reasons"] == ("stop",) and a["streamtriage.delta.count"] > 0
    assert a["streamtriage.sdk.name"] == "httpx-sse"
    events = [s for s in hooked.get_finished_spans() if s.attributes.get("streamtriage.span") == "event"]
    assert len(events) < a["streamtriage.event.count"], "deltas are coalesced"


def test_cut_mid_stream_is_a_transport_error_after_content(sim: Any, hooked: InMemorySpanExporter) -> None:
    _, err = _read(sim, fault_model("cut", after=3))
    assert isinstance(err, httpx.RemoteProtocolError)
    a = _call(hooked)
    assert a["streamtriage.outcome"] == "transport_error" and a["streamtriage.terminal.seen"] is False
    assert a["streamtriage.exception.type"] == "httpx.RemoteProtocolError" and a["streamtriage.delta.count"] >= 1


def test_the_apps_parser_error_is_recorded_when_it_closes_early(sim: Any, hooked: InMemorySpanExporter) -> None:
    with pytest.raises(KeyError):
        with httpx.Client(timeout=10) as client, client.stream(
                "POST", f"{sim.base_url}/chat/completions", json={**BODY, "model": fault_model("finish-absent")}) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: {"):
                    json.loads(line[6:])["choices"][0]["finish_reason"]  # noqa: B018 - the seed app's bug
    a = _call(hooked)
    assert a["streamtriage.outcome"] == "app_error" and a["streamtriage.app_exception.type"] == "builtins.KeyError"


def test_sdk_requests_are_left_to_the_sdk_hook(sim: Any, hooked: InMemorySpanExporter) -> None:
    with httpx.Client(timeout=10) as client:
        client.post(f"{sim.base_url}/chat/completions", json={**BODY, "model": fault_model("healthy")},
                    headers={"X-Stainless-Lang": "python"}).read()
    assert hooked.get_finished_spans() == ()
