"""Each bad-usage case a newcomer hit ends in one clear line naming the flag, port, name or variable,
and touches no data (issue 15): nothing is created in the working directory or the data directory."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.collector_proc import collector_process


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STREAMTRIAGE_")}
    return subprocess.run([sys.executable, "-m", "streamtriage.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**base, **(env or {})}, timeout=120)


def _one_line(proc: subprocess.CompletedProcess[str], *names: str) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_incidents_elsewhere_names_the_missing_data_dir_and_creates_nothing(tmp_path: Path) -> None:
    _one_line(_cli(tmp_path, "incidents"), str(tmp_path / "streamtriage-data"), "--store", "--url")
    assert list(tmp_path.iterdir()) == []


def test_taken_port_is_one_line_and_no_data_dir(tmp_path: Path, taken_port: int) -> None:
    _one_line(_cli(tmp_path, "serve", "--port", str(taken_port)), f"port {taken_port}", "--port")
    assert list(tmp_path.iterdir()) == []


def test_taken_clickhouse_port_is_one_line_and_no_data_dir(tmp_path: Path, taken_port: int) -> None:
    proc = _cli(tmp_path, "serve", "--port", "0", "--clickhouse-port", str(taken_port))
    _one_line(proc, f"port {taken_port}", "--clickhouse-port")
    assert list(tmp_path.iterdir()) == []


def test_unknown_api_kind_in_a_threshold_flag_is_refused(tmp_path: Path) -> None:
    for cmd in (["serve"], ["incidents", "--store", f"chdb://{tmp_path}/none"]):
        proc = _cli(tmp_path, *cmd, "--threshold", "assistant.runs:poll_hang_ms=5")
        _one_line(proc, "'assistant.runs'", "assistants.runs")
    assert list(tmp_path.iterdir()) == []


def test_misspelt_environment_variable_is_refused(tmp_path: Path) -> None:
    for cmd in (["serve"], ["incidents"]):
        _one_line(_cli(tmp_path, *cmd, env={"STREAMTRIAGE_STAL_MS": "5"}), "STREAMTRIAGE_STAL_MS",
                  "STREAMTRIAGE_STALL_MS")
    _one_line(_cli(tmp_path, "serve", env={"STREAMTRIAGE_STALL_MS__ASSISTANT_RUNS": "5"}),
              "STREAMTRIAGE_STALL_MS__ASSISTANT_RUNS")
    assert list(tmp_path.iterdir()) == []


def test_incidents_token_url_hint_and_full_trace_ids(tmp_path: Path) -> None:
    """A token-protected collector: 401 says how to pass the token; --token and the env variables work;
    the table shows whole trace ids, which /api/streams accepts."""
    from tests.classifier.test_classifier_cli_incidents import _send

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with collector_process(tmp_path, token="s3cret", env={"STREAMTRIAGE_CLASSIFY_INTERVAL_S": "0"}) as svc:
        tid = _send_with_token(svc.url, "s3cret", _send)
        assert svc.request("POST", "/api/classify")[0] == 200
        denied = _cli(elsewhere, "incidents", "--url", svc.url)
        assert denied.returncode == 1 and "HTTP 401" in denied.stderr
        assert "--token" in denied.stderr and "STREAMTRIAGE_READ_TOKEN" in denied.stderr
        for args, env in ((["--token", "s3cret"], {}), ([], {"STREAMTRIAGE_READ_TOKEN": "s3cret"}),
                          ([], {"STREAMTRIAGE_TOKEN": "s3cret"})):
            got = _cli(elsewhere, "incidents", "--url", svc.url, "--json", *args, env=env)
            assert got.returncode == 0, got.stderr
            assert [r["trace_id"] for r in json.loads(got.stdout)] == [tid]
        table = _cli(elsewhere, "incidents", "--url", svc.url, "--token", "s3cret", env={"COLUMNS": "80"})
        assert table.returncode == 0 and tid in table.stdout
        assert svc.request("GET", f"/api/streams/{tid}")[0] == 200
    assert list(elsewhere.iterdir()) == []


def _send_with_token(url: str, token: str, send) -> str:  # type: ignore[no-untyped-def]
    os.environ["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = f"Authorization=Bearer {token}"
    try:
        return send(url, "svc-token")
    finally:
        del os.environ["OTEL_EXPORTER_OTLP_TRACES_HEADERS"]


def test_data_dir_in_use_recommends_a_command_that_exists(tmp_path: Path) -> None:
    from streamtriage.collector.service_lock import DirectoryLocked

    msg = str(DirectoryLocked(tmp_path, {"pid": 1, "url": "http://127.0.0.1:4318"}))
    assert "`streamtriage incidents --url http://127.0.0.1:4318`" in msg
    help_text = _cli(tmp_path, "incidents", "--help", env={"COLUMNS": "200"}).stdout
    assert "--url" in help_text and "--token" in help_text and "STREAMTRIAGE_READ_TOKEN" in help_text


def test_serve_banner_states_the_poll_hang_threshold(tmp_path: Path) -> None:
    with collector_process(tmp_path) as svc:
        pass
    assert "hang after 600 s" in svc.log()
    with collector_process(tmp_path, name="tuned", args=["--threshold", "poll_hang_ms=30000"]) as svc:
        pass
    assert "hang after 30 s" in svc.log()
