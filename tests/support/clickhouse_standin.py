"""A stand-in ClickHouse server for tests: chDB behind ClickHouse's HTTP interface, writes included.

No modern ClickHouse server can be installed on the test machines, yet the collector's production
path (``--store http://host:8123``) talks to one through clickhouse-connect's HTTP client. This
runs the same protocol code as the collector's read-only endpoint (``collector/sqlendpoint``)
with the write mode of ``clickhouse_writable.py`` (``INSERT ... FORMAT Native`` bodies, compressed or not, DDL), in its own
process with its own chDB data directory, so it can be stopped and started again on the same port
with its data intact (what a store-down test needs).

Use from a test::

    with ClickHouseStandin(tmp_path / "ch") as ch:      # picks a free port
        collector(store=ch.url)  # http://127.0.0.1:PORT
        ch.stop(); ...; ch.start()                        # same port, same data

or run by hand: ``python tests/support/clickhouse_standin.py --path DIR --port 8123``.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

_HERE = Path(__file__).resolve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClickHouseStandin:
    """Controls one stand-in server process; ``stop()``/``start()`` keep the port and the data."""

    def __init__(self, path: str | os.PathLike[str], port: int | None = None, *,
                 user: str | None = None, password: str | None = None, start_timeout_s: float = 20.0) -> None:
        self.path = Path(path)
        self.port = port or _free_port()
        self.user = user
        self.password = password
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def url(self) -> str:
        """Store DSN for the collector (``--store``)."""
        auth = f"{self.user}:{self.password}@" if self.user and self.password else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def start(self) -> ClickHouseStandin:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(_HERE), "--path", str(self.path), "--port", str(self.port)]
        if self.user and self.password:
            cmd += ["--user", self.user, "--password", self.password]
        self._log = open(self.path.parent / f"standin-{self.port}.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stand-in exited with {self.proc.returncode}; see {self._log.name}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"stand-in did not answer /ping on port {self.port} within {self.start_timeout_s}s")

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=0.5) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait until the port is free again."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crashed server would."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ClickHouseStandin:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="chDB-backed ClickHouse HTTP stand-in (tests only)")
    parser.add_argument("--path", required=True, help="chDB data directory")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args(argv)

    import uvicorn

    sys.path.insert(0, str(_HERE.parents[2]))  # run as a script: make ``tests.support`` importable
    from streamtriage.collector.sqlendpoint import Credentials, asgi_app, listening_socket
    from tests.support.clickhouse_writable import WritableChdbEngine, WritableClickHouseHTTP

    engine = WritableChdbEngine(os.path.realpath(args.path))
    creds = Credentials(args.user, args.password) if args.user and args.password else None
    core = WritableClickHouseHTTP(engine, credentials=creds, display_name="streamtriage-standin")
    server = uvicorn.Server(uvicorn.Config(asgi_app(core), log_level="warning", lifespan="off", access_log=False))
    server.run(sockets=[listening_socket(args.host, args.port)])
    engine.close()


if __name__ == "__main__":
    main()
