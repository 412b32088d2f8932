"""End to end with the real collector: an instrumented app (subprocess) exports over OTLP/HTTP to
``streamtriage serve`` (subprocess, chDB), and the stored spans read back through its API carry the
hook's facts intact."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

from tests.conftest import REPO
from tests.support.collector_proc import collector_process

APP = textwrap.dedent(
    """
    import json, os
    import openai, streamtriage
    from opentelemetry import trace
    h = streamtriage.instrument(endpoint=os.environ["COLLECTOR"], service_name="e2e-bot")
    tracer = trace.get_tracer("app")
    c = openai.OpenAI(base_url=os.environ["SSE_URL"], api_key="k", max_retries=0)
    out = {}
    for model in ("mini-healthy", "mini-cut"):
        with tracer.start_as_current_span("handle-request") as span:
            out[model] = format(span.get_span_context().trace_id, "032x")
            try:
                for ch in c.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=6):
                    pass
            except openai.APIConnectionError:
                pass
    h.shutdown()
    print(json.dumps(out))
    """
)


def _wait_call(svc, tid: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = svc.request("GET", f"/api/streams/{tid}")
        if status == 200:
            found = json.loads(body)
            if found.get("call") and len(found["events"]) >= 2:
                return found
        time.sleep(0.3)
    raise AssertionError(f"trace {tid} not stored in time:\n{svc.log()[-2000:]}")


def test_hook_to_collector(mini_url, tmp_path):
    with collector_process(tmp_path) as svc:
        script = tmp_path / "app.py"
        script.write_text(APP)
        env = {**os.environ, "PYTHONPATH": str(REPO), "SSE_URL": mini_url, "COLLECTOR": svc.url}
        proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-3000:]
        traces = json.loads(proc.stdout.strip().splitlines()[-1])

        ok = _wait_call(svc, traces["mini-healthy"])
        a = ok["call"]["span_attributes"]
        assert a["streamtriage.outcome"] == "completed"
        assert a["streamtriage.terminal.seen"] == "true"
        assert a["streamtriage.terminal.event"] == "[DONE]"
        assert json.loads(a["gen_ai.response.finish_reasons"]) == ["stop"]
        assert ok["call"]["service_name"] == "e2e-bot"
        assert sum(int(e["span_attributes"]["streamtriage.event.count"]) for e in ok["events"]) == int(a["streamtriage.event.count"])

        cut = _wait_call(svc, traces["mini-cut"])
        c = cut["call"]["span_attributes"]
        assert c["streamtriage.outcome"] == "transport_error"
        assert json.loads(c["streamtriage.exception.chain"])[:2] == ["openai.APIConnectionError", "httpx2.RemoteProtocolError"]
        assert c["error.type"] == "openai.APIConnectionError"
