"""The simulator at byte level, with raw sockets: framing, FIN vs RST, stalls, keep-alives, bad input."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from streamtriage.simulator import fault_model, run_simulator
from streamtriage.simulator.faults import FaultError, parse_fault
from tests.conftest import free_port, stop_process


@pytest.fixture(scope="module")
def sim() -> Iterator[object]:
    with run_simulator() as handle:
        yield handle


def _send(port: int, body: dict | None = None, path: str = "/v1/chat/completions", method: str = "POST",
          headers: dict[str, str] | None = None, timeout: float = 3.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = json.dumps(body).encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
            f"Content-Length: {len(data)}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    with sock:
        while True:
            data = sock.recv(65536)
            if not data:
                return out
            out += data


def _stream(model: str, **extra: object) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True, **extra}


def test_incomplete_chunked_body_then_fin(sim) -> None:
    raw = _read_all(_send(sim.port, _stream(fault_model("cut", after=2))))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.count(b"data: ") == 2 and not body.endswith(b"0\r\n\r\n")


def test_healthy_chunked_body_is_complete_and_keeps_the_connection(sim) -> None:
    sock = _send(sim.port, _stream("gpt-4o-mini"))
    buf = b""
    while not buf.endswith(b"0\r\n\r\n"):
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the last chunk"
        buf += chunk
    assert b"data: [DONE]" in buf
    # Same connection, second request: keep-alive works.
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = sock.recv(65536)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200") and b"gpt-4o-mini" in reply


def test_rst_is_a_reset_not_a_fin(sim) -> None:
    sock = _send(sim.port, _stream(fault_model("cut", after=2, how="rst")))
    got = b""
    with pytest.raises(ConnectionResetError):
        with sock:
            for _ in range(100):
                data = sock.recv(65536)
                if not data:
                    break  # a FIN would end here without an error
                got += data
    assert b"HTTP/1.1 200" in got


def test_close_delimited_body(sim) -> None:
    raw = _read_all(_send(sim.port, _stream(fault_model("cut", after=3, framing="close"))))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-length" not in head.lower() and b"transfer-encoding" not in head.lower()
    assert body.count(b"data: ") == 3


def test_content_length_body_cut_short(sim) -> None:
    raw = _read_all(_send(sim.port, _stream(fault_model("cut", after=3, framing="length"))))
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    assert len(body) < length and body.count(b"data: ") == 3


def test_keepalive_comments_during_a_stall(sim) -> None:
    raw = _read_all(_send(sim.port, _stream(fault_model("stall", after=2, stall=0.5, keepalive=0.1)),
                          headers={"Connection": "close"}))
    assert raw.count(b": keep-alive") >= 3 and raw.endswith(b"0\r\n\r\n")


def test_stall_before_headers(sim) -> None:
    sock = _send(sim.port, _stream(fault_model("stall-headers", stall=0.4)))
    started = time.monotonic()
    first = sock.recv(1)
    waited = time.monotonic() - started
    sock.close()
    assert first == b"H" and waited >= 0.3


def test_done_then_body_held_open(sim) -> None:
    sock = _send(sim.port, _stream(fault_model("done-hold", hold=0.6)), timeout=0.3)
    buf = b""
    while b"[DONE]" not in buf:
        buf += sock.recv(65536)
    with pytest.raises(socket.timeout):
        sock.recv(65536)  # nothing more for a while: the body is still open
    sock.settimeout(3)
    rest = b""
    while not rest.endswith(b"0\r\n\r\n"):
        rest += sock.recv(65536)
    sock.close()


def test_status_with_retry_after_and_html_body(sim) -> None:
    raw = _read_all(_send(sim.port, _stream(fault_model("status", status=429, retry_after=1)),
                          headers={"Connection": "close"}))
    assert raw.startswith(b"HTTP/1.1 429") and b"retry-after: 1\r\n" in raw and b"rate_limit_exceeded" in raw
    raw = _read_all(_send(sim.port, _stream(fault_model("status", status=524)), headers={"Connection": "close"}))
    assert raw.startswith(b"HTTP/1.1 524") and b"text/html" in raw and b"Error 524" in raw


def test_times_counts_attempts_without_a_retry_header(sim) -> None:
    """times=1 fails only the first attempt; without x-stainless-retry-count the body fingerprint counts."""
    body = _stream(fault_model("status", status=500, times=1), user="fingerprint-test")
    first = _read_all(_send(sim.port, body, headers={"Connection": "close", "x-streamtriage-run": "fp1"}))
    second = _read_all(_send(sim.port, body, headers={"Connection": "close", "x-streamtriage-run": "fp1"}))
    assert first.startswith(b"HTTP/1.1 500") and second.startswith(b"HTTP/1.1 200")


def test_drop_before_status_line(sim) -> None:
    assert _read_all(_send(sim.port, _stream(fault_model("drop")))) == b""


def test_empty_data_frame_and_error_shapes(sim) -> None:
    raw = _read_all(_send(sim.port, _stream(fault_model("empty-data", after=1)), headers={"Connection": "close"}))
    assert b"data: \n\n" in raw
    raw = _read_all(_send(sim.port, _stream(fault_model("error-event", after=1, shape="bare")),
                          headers={"Connection": "close"}))
    assert b"event: error\ndata: {\"message\"" in raw and b"[DONE]" not in raw


def test_fast_stream_of_many_chunks_is_complete(sim) -> None:
    raw = _read_all(_send(sim.port, _stream(fault_model("healthy", n=1000)), headers={"Connection": "close"}))
    assert raw.count(b"chat.completion.chunk") == 1002 and raw.endswith(b"0\r\n\r\n")


def test_bad_input_is_answered_with_clear_errors(sim) -> None:
    raw = _read_all(_send(sim.port, _stream("fault/no-such-fault"), headers={"Connection": "close"}))
    assert raw.startswith(b"HTTP/1.1 400") and b"unknown fault" in raw and b"stall-headers" in raw
    raw = _read_all(_send(sim.port, _stream(fault_model("stall") + ";stall=soon"), headers={"Connection": "close"}))
    assert raw.startswith(b"HTTP/1.1 400") and b"not a number" in raw
    raw = _read_all(_send(sim.port, None, path="/v1/nope", method="GET", headers={"Connection": "close"}))
    assert raw.startswith(b"HTTP/1.1 404")
    with socket.create_connection(("127.0.0.1", sim.port), timeout=3) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")


def test_fault_parsing_sources_and_errors() -> None:
    spec = parse_fault("fault/stall;after=2;stall=1.5", {"x-streamtriage-params": "keepalive=0.2"})
    assert spec.name == "stall" and spec.params == {"after": 2, "stall": 1.5, "keepalive": 0.2}
    assert parse_fault("gpt-4o", {"x-streamtriage-fault": "cut;after=4"}).params == {"after": 4}
    assert parse_fault("gpt-4o", {}).name == "healthy"
    with pytest.raises(FaultError):
        parse_fault("fault/bogus", {})
    with pytest.raises(FaultError):
        parse_fault("fault/cut;after", {})


def test_admin_log_over_http(sim) -> None:
    _read_all(_send(sim.port, _stream("gpt-4o-mini"), headers={"Connection": "close", "x-streamtriage-run": "adm"}))
    with urllib.request.urlopen(f"http://127.0.0.1:{sim.port}/_sim/log?run=adm", timeout=3) as resp:
        log = json.load(resp)["data"]
    assert len(log) == 1 and log[0]["path"] == "/v1/chat/completions" and log[0]["end"] == "complete"
    assert log[0]["events_sent"] == 8


def test_cli_serves_on_the_given_port() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamtriage.cli", "simulate", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1) as resp:
                    assert json.load(resp)["data"][0]["id"] == "gpt-4o-mini"
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "simulate did not start in 20 s"
                time.sleep(0.1)
    finally:
        stop_process(proc)


def test_cli_help() -> None:
    out = subprocess.run([sys.executable, "-m", "streamtriage.cli", "simulate", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--port" in out.stdout and "--host" in out.stdout, out.stderr


def test_fault_by_header_through_the_sdk(sim) -> None:
    """Apps that cannot change the model name select faults with extra_headers."""
    import openai

    from streamtriage.simulator.drivers import exception_chain

    client = openai.OpenAI(api_key="sk-sim", base_url=sim.base_url, max_retries=0)
    got = []
    try:
        with pytest.raises(Exception) as info:
            for chunk in client.chat.completions.create(
                    model="gpt-4o-mini", messages=[], stream=True,
                    extra_headers={"x-streamtriage-fault": "cut", "x-streamtriage-params": "after=2"}):
                got.append(chunk)
    finally:
        client.close()
    assert len(got) == 2
    assert any(name.endswith(".RemoteProtocolError") for name in exception_chain(info.value))


def test_background_response_replay_honours_starting_after(sim) -> None:
    raw = _read_all(_send(sim.port, {"model": "gpt-4o-mini", "input": "hi", "background": True},
                          path="/v1/responses", headers={"Connection": "close"}))
    rid = json.loads(raw.partition(b"\r\n\r\n")[2])["id"]
    raw = _read_all(_send(sim.port, None, path=f"/v1/responses/{rid}?stream=true&starting_after=10", method="GET",
                          headers={"Connection": "close"}))
    seqs = [json.loads(line[6:])["sequence_number"] for line in raw.split(b"\n") if line.startswith(b"data: {")]
    assert seqs == list(range(11, 17)), seqs
