"""End to end over real OTLP/HTTP: ``streamtriage.instrument()`` and ``opentelemetry-instrument``.

Each app runs in its own subprocess (global tracer providers cannot be reset in-process); the
OTLP receiver and the SSE server run here and the test reads what actually crossed the wire.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

from .otlp_sink import otlp_sink

APP = textwrap.dedent(
    """
    import json, os, sys
    import openai
    {setup}
    c = openai.OpenAI(base_url=os.environ["SSE_URL"], api_key="k", max_retries=0)
    seen = []
    for model in ("mini-healthy", "mini-cut"):
        try:
            for ch in c.chat.completions.create(model=model, messages=[{{"role": "user", "content": "hi"}}], stream=True, max_tokens=6):
                seen.append(model)
        except Exception as e:
            seen.append(type(e).__name__)
    {teardown}
    print(json.dumps(seen))
    """
)


def _run(code: str, env: dict[str, str], argv_prefix: list[str] | None = None, tmp: Path | None = None) -> list:
    assert tmp is not None
    script = tmp / "app.py"
    script.write_text(code)
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    proc = subprocess.run((argv_prefix or [sys.executable]) + [str(script)], env=full_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(sink, service: str) -> None:
    calls = {c["attributes"]["gen_ai.request.model"]: c for c in sink.of_kind("call")}
    assert set(calls) == {"mini-healthy", "mini-cut"}
    ok, cut = calls["mini-healthy"]["attributes"], calls["mini-cut"]["attributes"]
    assert ok["streamtriage.outcome"] == "completed" and ok["streamtriage.terminal.event"] == "[DONE]"
    assert ok["gen_ai.response.finish_reasons"] == ["stop"]
    assert ok["streamtriage.terminal.seen"] is True and ok["streamtriage.contract"] == 1
    assert cut["streamtriage.outcome"] == "transport_error"
    assert cut["streamtriage.exception.chain"][:2] == ["openai.APIConnectionError", "httpx2.RemoteProtocolError"]
    assert calls["mini-healthy"]["resource"]["service.name"] == service
    assert calls["mini-healthy"]["scope"] == "streamtriage.instrumentation.openai"
    events = [e for e in sink.of_kind("event") if e["trace_id"] == calls["mini-healthy"]["trace_id"]]
    assert sum(e["attributes"]["streamtriage.event.count"] for e in events) == ok["streamtriage.event.count"]
    assert all(e["parent_span_id"] == calls["mini-healthy"]["span_id"] for e in events)


def test_instrument_exports_over_otlp_http(mini_url, tmp_path):
    code = APP.format(
        setup="import streamtriage\nh = streamtriage.instrument(endpoint=os.environ['SINK'], service_name='support-bot', headers={'x-tenant': 't1'})\nassert streamtriage.instrument() is h",
        teardown="h.shutdown()",
    )
    with otlp_sink() as (url, sink):
        seen = _run(code, {"SSE_URL": mini_url, "SINK": url}, tmp=tmp_path)
        assert seen.count("mini-healthy") == 8 and seen[-1] == "APIConnectionError"
        _check(sink, "support-bot")
        assert sink.headers[0].get("x-tenant") == "t1"


def test_instrument_reads_standard_env(mini_url, tmp_path):
    code = APP.format(setup="import streamtriage\nh = streamtriage.instrument()", teardown="h.shutdown()")
    with otlp_sink() as (url, sink):
        env = {"SSE_URL": mini_url, "OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_SERVICE_NAME": "env-bot", "OTEL_EXPORTER_OTLP_HEADERS": "x-key=abc"}
        _run(code, env, tmp=tmp_path)
        _check(sink, "env-bot")
        assert sink.headers[0].get("x-key") == "abc"


def test_opentelemetry_instrument_picks_up_the_entry_point(mini_url, tmp_path):
    """No code change: the distro configures OTLP export, the entry point installs our hooks."""
    code = APP.format(setup="", teardown="from opentelemetry import trace\ntrace.get_tracer_provider().force_flush()")
    with otlp_sink() as (url, sink):
        env = {
            "SSE_URL": mini_url,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_SERVICE_NAME": "auto-bot",
            # the two peer instrumentations are installed too (dev extra, for the benchmark)
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai",
        }
        exe = str(Path(sys.executable).with_name("opentelemetry-instrument"))
        if not os.path.exists(exe):
            exe = "opentelemetry-instrument"
        _run(code, env, argv_prefix=[exe, sys.executable], tmp=tmp_path)
        _check(sink, "auto-bot")


def test_instrument_reuses_the_apps_provider(mini_url, tmp_path):
    code = textwrap.dedent(
        """
        import json, os
        import openai, streamtriage
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        h = streamtriage.instrument(endpoint="http://127.0.0.1:9/never-used")
        c = openai.OpenAI(base_url=os.environ["SSE_URL"], api_key="k", max_retries=0)
        list(c.chat.completions.create(model="mini-healthy", messages=[], stream=True, max_tokens=2))
        h.shutdown()
        calls = [s for s in exporter.get_finished_spans() if s.attributes.get("streamtriage.span") == "call"]
        print(json.dumps([h.owns_provider, h.tracer_provider is provider, [s.attributes["streamtriage.outcome"] for s in calls]]))
        """
    )
    assert _run(code, {"SSE_URL": mini_url}, tmp=tmp_path) == [False, True, ["completed"]]
