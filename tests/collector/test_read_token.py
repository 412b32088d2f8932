"""Separate credentials: the ingest token every instrumented app holds cannot read, the read token
cannot ingest; a collector reachable beyond loopback needs a token unless the operator opts out;
the banner shows the real bind address."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from streamtriage.collector.app import describe
from streamtriage.collector.otlp_decode import PROTOBUF
from streamtriage.collector.settings import Settings, SettingsError, load_settings
from tests.collector.otlp_payloads import make_request, make_span
from tests.conftest import free_port
from tests.support.collector_proc import collector_process

INGEST, READ = "ingest-token-A", "read-token-B"


def _sql(port: int, secret: str, sql: str = "SELECT count() FROM otel_traces") -> tuple[int, bytes]:
    auth = base64.b64encode(f"default:{secret}".encode()).decode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=sql.encode(), method="POST",
                                 headers={"Authorization": f"Basic {auth}"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_ingest_and_read_tokens_are_separate(tmp_path) -> None:
    ch_port = free_port()
    with collector_process(tmp_path, token=INGEST, args=["--read-token", READ, "--clickhouse-port", str(ch_port)]) as svc:
        body = make_request([make_span(os.urandom(16))]).SerializeToString()
        bearer = lambda t: {"Authorization": f"Bearer {t}", "Content-Type": PROTOBUF}  # noqa: E731
        assert svc.request("POST", "/v1/traces", body, bearer(READ))[0] == 401
        assert svc.request("POST", "/v1/traces", body, bearer(INGEST))[0] == 200
        assert svc.request("GET", "/api/incidents", None, bearer(INGEST))[0] == 401
        assert svc.request("GET", "/api/incidents", None, bearer(READ))[0] == 200
        assert svc.request("GET", "/api/kb", None, bearer(INGEST))[0] == 401
        status, resp = _sql(ch_port, INGEST)
        assert status == 401 and b"Code: 516" in resp
        status, resp = _sql(ch_port, READ)
        assert status == 200 and resp.strip().isdigit()
        # the API document is open by decision (it describes routes, holds no data)
        status, _, doc = svc.request("GET", "/openapi.json", None, {})
        assert status == 200 and b"/v1/traces" in doc
        assert svc.request("GET", "/docs", None, {})[0] == 200


def test_without_a_read_token_reads_fall_back_to_the_ingest_token() -> None:
    s = Settings(token=INGEST)
    assert s.reader_token == INGEST
    assert Settings(token=INGEST, read_token=READ).reader_token == READ
    with pytest.raises(SettingsError):
        Settings(token=INGEST, read_token=INGEST)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", ""])
def test_non_loopback_without_token_refuses_to_start(host: str) -> None:
    with pytest.raises(SettingsError, match="--allow-unauthenticated"):
        Settings(host=host)
    Settings(host=host, token=INGEST)
    Settings(host=host, allow_unauthenticated=True)
    for loopback in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        Settings(host=loopback)


def test_opt_out_from_the_environment_is_a_real_boolean() -> None:
    env = {"STREAMTRIAGE_HOST": "0.0.0.0", "STREAMTRIAGE_ALLOW_UNAUTHENTICATED": "false"}
    with pytest.raises(SettingsError):
        load_settings(env=env)
    assert load_settings(env={**env, "STREAMTRIAGE_ALLOW_UNAUTHENTICATED": "1"}).allow_unauthenticated is True
    assert load_settings(env={"STREAMTRIAGE_READ_TOKEN": READ, "STREAMTRIAGE_TOKEN": INGEST}).read_token == READ


def test_cli_refuses_and_banner_shows_the_real_bind_address(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "streamtriage.cli", "serve", "--host", "0.0.0.0",
                           "--store", f"chdb://{tmp_path / 'd'}", "--port", str(free_port())],
                          capture_output=True, timeout=60, env={**os.environ, "STREAMTRIAGE_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 2 and b"refusing to listen on 0.0.0.0 without a token" in proc.stderr
    lines = describe(Settings(host="0.0.0.0", port=4318, allow_unauthenticated=True))
    assert lines[0].endswith("on http://0.0.0.0:4318 (all interfaces)")
    assert any("WARNING" in line for line in lines)
    lines = describe(Settings(host="0.0.0.0", token=INGEST, read_token=READ))
    assert "bearer --read-token" in "\n".join(lines) and "127.0.0.1" not in lines[0]
