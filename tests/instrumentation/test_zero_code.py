"""The README's zero-code path works as written (issue 15): in a fresh virtual environment with only
the packages the README names (streamtriage, opentelemetry-distro, and the app's openai), the command
``opentelemetry-instrument --service_name support-bot python app.py`` exports the app's calls to the
collector, which labels them. Nothing but the app's own settings (the SDK's base URL) and where the
collector is (and its token) is set: no protocol, no exporter choice, no header syntax."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

from streamtriage.instrumentation.zero_code import DEFAULT_ENDPOINT, apply_defaults
from streamtriage.scenario_suite import SimulatorProcess
from tests.support.collector_proc import collector_process

REPO = Path(__file__).resolve().parents[2]
APP = '''
import openai

client = openai.OpenAI()
try:
    for chunk in client.chat.completions.create(model="fault/cut;after=3;how=rst", stream=True,
                                                messages=[{"role": "user", "content": "hi"}]):
        pass
except openai.APIConnectionError as exc:
    print("app saw", type(exc).__name__)
'''


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install streamtriage opentelemetry-distro openai`` into a new venv (this checkout as streamtriage)."""
    root = tmp_path_factory.mktemp("zero-code") / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    pip = subprocess.run([str(root / "bin" / "pip"), "install", "-q", str(REPO), "opentelemetry-distro", "openai"],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return root


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "STREAMTRIAGE_", "OPENAI_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**keep, **extra}


@pytest.mark.timeout(900)
def test_opentelemetry_instrument_as_written_exports_to_the_collector(tmp_path: Path, fresh_venv: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    sim = SimulatorProcess().start()
    try:
        with collector_process(tmp_path, token="t0ken", env={"STREAMTRIAGE_CLASSIFY_INTERVAL_S": "0"}) as svc:
            env = _clean_env(PATH=f"{fresh_venv / 'bin'}:{os.environ['PATH']}", OPENAI_BASE_URL=sim.base_url,
                             OPENAI_API_KEY="sk-test", OTEL_EXPORTER_OTLP_ENDPOINT=svc.url, STREAMTRIAGE_TOKEN="t0ken")
            run = subprocess.run(["opentelemetry-instrument", "--service_name", "support-bot", "python", "app.py"],
                                 cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr[-3000:]
            assert "app saw APIConnectionError" in run.stdout
            assert "Failed to auto initialize" not in run.stderr and "not found" not in run.stderr, run.stderr
            deadline = time.monotonic() + 30
            rows: list = []
            while not rows and time.monotonic() < deadline:
                assert svc.request("POST", "/api/classify")[0] == 200
                rows = svc.get_json("/api/incidents?since=1h")
                time.sleep(0.3)
    finally:
        sim.stop()
    assert [(r["service"], r["kb_id"]) for r in rows] == [("support-bot", "llm/peer-closed-incomplete-chunked-read")]


def test_defaults_apply_only_where_the_user_set_nothing() -> None:
    env: dict[str, str] = {}
    apply_defaults(env)
    assert env == {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": DEFAULT_ENDPOINT,
                   "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    mine = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1/traces",
            "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "console", "STREAMTRIAGE_TOKEN": "a b",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=1"}
    assert apply_defaults(dict(mine)) == {}
    with_token = apply_defaults({"STREAMTRIAGE_TOKEN": "s3cret"})
    assert with_token["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] == "Authorization=Bearer%20s3cret"


def test_instrument_takes_the_collector_token_from_the_environment(tmp_path: Path) -> None:
    """The quickstart's other way to pass the token: ``STREAMTRIAGE_TOKEN`` (or ``headers=``) with ``instrument()``."""
    code = ("import sys, streamtriage; from opentelemetry import trace\n"
            "h = streamtriage.instrument(endpoint=sys.argv[1], service_name='support-bot')\n"
            "trace.get_tracer('t').start_span('x', attributes={'streamtriage.span': 'call'}).end()\n"
            "print(h.force_flush())")
    with collector_process(tmp_path, token="t0ken") as svc:
        for env, stored in (({}, 0), ({"STREAMTRIAGE_TOKEN": "t0ken"}, 1)):
            run = subprocess.run([sys.executable, "-c", code, svc.url], env=_clean_env(**env), capture_output=True,
                                 text=True, timeout=60)
            assert run.returncode == 0, run.stderr[-2000:]
            metrics = svc.request("GET", "/metrics")[2].decode()
            assert f"streamtriage_spans_received_total {stored}" in metrics, (env, run.stderr[-2000:])
