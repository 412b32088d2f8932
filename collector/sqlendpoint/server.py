"""The endpoint as an ASGI app, and a uvicorn server for it on its own port (background thread).

Bodies are capped as they arrive (1 MiB of SQL for the read-only endpoint), and again after
decompression in the protocol.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import ClickHouseError
from .protocol import ClickHouseHTTP, Response

__all__ = ["asgi_app", "start_server", "listening_socket", "RunningServer"]


def asgi_app(core: ClickHouseHTTP, max_body_bytes: int | None = None) -> Callable[..., Awaitable[None]]:
    """An ASGI app serving ``core``; mount it on a path or serve it on its own port.

    Bodies are capped as received by ``core.max_body_bytes`` (1 MiB of SQL for the read-only
    endpoint, 512 MiB of insert data for the stand-in), and again after decompression.
    """
    if max_body_bytes is None:
        max_body_bytes = core.max_body_bytes

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                  send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        too_big = False
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_body_bytes:
                too_big = True
            elif chunk:
                chunks.append(chunk)
            more = message.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "/")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        if too_big:
            err = ClickHouseError(36, f"Request body larger than {max_body_bytes} bytes", status=413)
            resp = Response(413, [("X-ClickHouse-Exception-Code", "36")], err.body(core.engine.version))
        else:
            loop = asyncio.get_running_loop()
            resp = await loop.run_in_executor(
                None, core.handle, scope["method"], path, scope.get("query_string", b"").decode("latin-1"),
                headers, b"".join(chunks),
            )
        await send({
            "type": "http.response.start",
            "status": resp.status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers]
            + [(b"content-length", str(len(resp.body)).encode())],
        })
        await send({"type": "http.response.body", "body": resp.body if scope["method"] != "HEAD" else b""})

    return app


@dataclass
class RunningServer:
    """A uvicorn server running in a background thread of this process."""

    server: Any
    thread: threading.Thread
    port: int

    def stop(self, timeout_s: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn (``sockets=[...]``), port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections: without it the response body (a second small write after
    # the headers) waits for the client's delayed ACK, ~40 ms per query.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


def start_server(core: ClickHouseHTTP, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``core`` on host:port from a daemon thread; port 0 picks a free port."""
    import uvicorn

    sock = listening_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app(core), log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="clickhouse-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError(f"ClickHouse HTTP endpoint did not start on {host}:{bound_port}")
    return RunningServer(server, thread, bound_port)
