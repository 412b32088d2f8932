"""Run ``streamtriage serve`` as a child process and always stop it.

Used by ``streamtriage demo`` and by the tests, which need a collector that owns its own chDB data
directory (chDB allows one engine per process and directory). Usage::

    with collector_process(tmp_path) as svc:          # temp chDB data dir, free port
        exporter = OTLPSpanExporter(endpoint=svc.url + "/v1/traces")
        ...
        svc.get("/api/streams/" + trace_id)

The process gets its own data directory (chDB allows one engine per process and directory), so
it never collides with the in-process ``chdb_path`` fixture. ``kill()`` is ``kill -9``; ``restart()``
starts it again on the same directory and port.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the collector binds it right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CollectorProcess:
    data_dir: Path
    port: int
    store: str
    token: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 60.0) -> CollectorProcess:
        cmd = [sys.executable, "-m", "streamtriage.cli", "serve", "--store", self.store,
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", *self.args]
        if self.token:
            cmd += ["--token", self.token]
        env = {**os.environ, "STREAMTRIAGE_STATE_DIR": str(self.data_dir), **self.env}
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-collector.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"collector not ready after {ready_timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful: the writer flushes), then SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        """``kill -9``: no flush, no cleanup."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> CollectorProcess:
        self.stop()
        return self.start()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        hdrs = dict(headers or {})
        if self.token and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def get_json(self, path: str) -> Any:
        status, _, body = self.request("GET", path)
        if status != 200:
            raise AssertionError(f"GET {path} -> {status}: {body[:500]!r}")
        return json.loads(body)


@contextmanager
def collector_process(tmp_path: Path, *, name: str = "collector", store: str | None = None,
                      token: str | None = None, env: dict[str, str] | None = None,
                      args: list[str] | None = None, port: int | None = None) -> Iterator[CollectorProcess]:
    """A started collector on a free port with its own data dir under ``tmp_path``; stopped on exit."""
    data_dir = tmp_path / name
    data_dir.mkdir(parents=True, exist_ok=True)
    svc = CollectorProcess(data_dir=data_dir, port=port or free_port(), store=store or f"chdb://{data_dir}",
                           token=token, env=dict(env or {}), args=list(args or []))
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()
