"""The fault-injecting OpenAI-compatible server: a raw asyncio HTTP/1.1 server on 127.0.0.1.

``run_simulator()`` runs it on a background thread (own event loop, port 0) for tests;
``serve()`` runs it in the foreground for ``streamtriage simulate``. See ``faults.FAULTS`` for
what a request can ask for, and ``GET /_sim/log`` / ``SimulatorHandle.log()`` for what it saw.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import payloads as p
from .anthropic_api import error_frame as anthropic_error_frame
from .anthropic_api import status_body as anthropic_status_body
from .faults import FAULTS, FaultError, FaultSpec, parse_fault
from .provider_shapes import provider_error_frame
from .replies import HTML_502, HTML_524, Reply, StreamReply, error_json, retry_headers
from .routes import ApiRoutes
from .state import LogEntry, SimState
from .streams import chat_error_frame, responses_error_frame, run_error_frame
from .wire import (
    KEEPALIVE,
    LAST_CHUNK,
    BadRequest,
    Request,
    chunk,
    json_response,
    raw_response,
    read_request,
    reset,
    sse,
    status_head,
)

logger = logging.getLogger("streamtriage.simulator")
WRITE_BUFFER_HIGH = 256 * 1024


class SimServer(ApiRoutes):
    """Owns the listening socket, the state and the request handlers."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.state = SimState()
        self.ids = p.Ids()
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._routes = self._build_routes()

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port,
                                                  limit=64 * 1024, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while True:
                try:
                    req = await read_request(reader)
                except BadRequest as exc:
                    writer.write(json_response(400, p.error_body(str(exc), "invalid_request_error"),
                                               keep_alive=False))
                    break
                except (ConnectionError, asyncio.IncompleteReadError):
                    break
                if req is None:
                    break
                if not await self._serve(req, reader, writer):
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._conns.discard(task)
            if not writer.transport.is_closing():
                with contextlib.suppress(Exception):
                    await writer.drain()
                writer.close()

    # --- one request ------------------------------------------------------------------------------

    async def _serve(self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be reused (closed, cut or reset)."""
        if req.path.startswith("/_sim/"):
            return await self._admin(req, writer)
        arrived = asyncio.get_running_loop().time()  # a proxy's clock starts when it has the request
        try:
            body = req.json() if req.method == "POST" else {}
            fault = parse_fault(str(body.get("model") or ""), req.headers)
        except (BadRequest, FaultError) as exc:
            writer.write(json_response(400, p.error_body(str(exc), "invalid_request_error"),
                                       keep_alive=req.keep_alive))
            await writer.drain()
            return req.keep_alive
        entry = self.state.new_entry(req.method, req.path, fault.name, req.headers,
                                     req.target.partition("?")[2])
        attempt = self.state.attempt(req.method, req.path, req.body, req.headers)
        try:
            return await self._serve_faulted(req, body, fault, attempt, entry, reader, writer, arrived)
        except (ConnectionError, OSError):
            entry.end = entry.end or "client-hangup"
            entry.hangup_at = entry.hangup_at or self.state.now()
            return False
        except Exception as exc:  # a simulator bug must not look like an injected fault
            logger.exception("simulator error on %s %s", req.method, req.path)
            entry.end = "error"
            if entry.status is None and not writer.transport.is_closing():
                entry.status = 500
                writer.write(json_response(500, p.error_body(f"streamtriage simulator bug: {exc!r}",
                                                             "simulator_error"), keep_alive=False))
                with contextlib.suppress(Exception):
                    await writer.drain()
            return False
        finally:
            entry.ended = self.state.now()

    async def _serve_faulted(self, req: Request, body: dict[str, Any], fault: FaultSpec, attempt: int,
                             entry: LogEntry, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             arrived: float) -> bool:
        times = fault.get("times")
        active = times is None or attempt < int(times)
        if fault.name == "status" and active:
            entry.status = fault.int("status", 500)
            entry.end = "complete"
            writer.write(self._status_error(fault, req))
            await writer.drain()
            return req.keep_alive
        if fault.name == "drop" and active:
            await asyncio.sleep(0.01)
            entry.end = "drop-rst" if fault.get("how") == "rst" else "drop-fin"
            if fault.get("how") == "rst":
                reset(writer)
            else:
                writer.close()
            return False
        if fault.name == "stall-headers" and active:
            if await self._pause(reader, writer, fault.float("stall", 1.0)):
                entry.end, entry.hangup_at = "client-hangup", self.state.now()
                return False
        if fault.name in ("status", "drop", "stall-headers"):
            fault = FaultSpec("healthy", fault.params)
        handler, params = self._route(req)
        if handler is None:
            entry.status = 404
            entry.end = "complete"
            writer.write(json_response(404, p.error_body(f"Unknown route {req.method} {req.path}",
                                                         "invalid_request_error"), keep_alive=req.keep_alive))
            await writer.drain()
            return req.keep_alive
        reply = await handler(req, body, fault, **params)
        if isinstance(reply, Reply):
            entry.status = reply.status
            if reply.html:
                data = raw_response(reply.status, str(reply.payload).encode(), "text/html", reply.headers,
                                    keep_alive=req.keep_alive)
            else:
                data = json_response(reply.status, reply.payload, self._common_headers() | reply.headers,
                                     keep_alive=req.keep_alive)
            if fault.name == "cut" and reply.status == 200:  # Content-Length body cut short
                writer.write(data[: len(data) - max(1, len(data) // 3)])
                await writer.drain()
                entry.end = "cut-fin"
                writer.close()
                return False
            writer.write(data)
            await writer.drain()
            entry.end = "complete"
            return req.keep_alive
        entry.status = 200
        return await self._write_stream(req, reply, entry, reader, writer, arrived)

    def _route(self, req: Request) -> tuple[Any, dict[str, str]]:
        for method, pattern, handler in self._routes:
            if method == req.method:
                match = pattern.fullmatch(req.path)
                if match:
                    return handler, match.groupdict()
        return None, {}

    def _common_headers(self) -> dict[str, str]:
        return {"x-request-id": self.ids.new("req"), "openai-processing-ms": "12", "openai-version": "2020-10-01"}


    def _status_error(self, fault: FaultSpec, req: Request) -> bytes:
        """The HTTP error a ``status`` fault answers before any event (JSON, or a gateway's HTML page)."""
        status = fault.int("status", 500)
        headers = self._common_headers() | retry_headers(fault)
        if fault.get("body", "html" if status in (502, 504, 524) else "json") == "html":
            html = HTML_524 if status == 524 else HTML_502 if status == 502 else f"<html><body>{status}</body></html>"
            return raw_response(status, html.encode(), "text/html", headers, keep_alive=req.keep_alive)
        body = anthropic_status_body(fault, status) if req.path == "/v1/messages" else error_json(fault, status)
        return json_response(status, body, headers, keep_alive=req.keep_alive)

    # --- streaming --------------------------------------------------------------------------------

    @staticmethod
    def _hung_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        return reader.at_eof() or writer.transport.is_closing()

    async def _pause(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float,
                     keepalive: float = 0.0, encode: Callable[[bytes], bytes] | None = None,
                     keepalive_frame: bytes = KEEPALIVE) -> bool:
        """Sleep ``seconds`` (sending keep-alive comments every ``keepalive`` s); True if the client left."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        next_ka = loop.time() + keepalive if keepalive > 0 else float("inf")
        while True:
            if self._hung_up(reader, writer):
                return True
            now = loop.time()
            if now >= end:
                return False
            if now >= next_ka and encode is not None:
                writer.write(encode(keepalive_frame))
                await writer.drain()
                next_ka += keepalive
            await asyncio.sleep(max(0.0, min(0.02, end - now, next_ka - now)))

    def _error_frame(self, api: str, fault: FaultSpec, seq: int) -> bytes:
        if api == "chat":
            return provider_error_frame(fault) if fault.get("provider") else chat_error_frame(fault)
        if api == "responses":
            return responses_error_frame(fault, seq)
        if api == "anthropic":
            return anthropic_error_frame(fault)
        return run_error_frame(fault)

    def _shape_frames(self, reply: StreamReply) -> list[bytes]:
        fault, frames = reply.fault, list(reply.frames.frames)
        term = reply.frames.terminal
        if fault.name == "no-terminal":
            body, tail = frames[: len(frames) - term], frames[len(frames) - term:]
            keep_done = reply.api == "assistants" and fault.int("done", 0) and tail
            frames = body + ([tail[-1]] if keep_done else [])
        elif fault.name == "error-event":
            after = min(fault.int("after", 3), len(frames) - term)
            frames = frames[:after] + [self._error_frame(reply.api, fault, after)]
            if fault.int("done", 0):
                frames.append(sse("[DONE]"))
        elif fault.name == "empty-data":
            after = min(fault.int("after", 2), len(frames))
            frames.insert(after, b"data: \n\n")
        return frames

    async def _write_stream(self, req: Request, reply: StreamReply, entry: LogEntry,
                            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, arrived: float) -> bool:
        fault = reply.fault
        frames = self._shape_frames(reply)
        framing = str(fault.get("framing", "chunked"))
        headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                   **self._common_headers()}
        if framing == "length":
            headers["content-length"] = str(sum(len(f) for f in frames))
            headers["connection"] = "keep-alive"
        elif framing == "close":
            headers["connection"] = "close"
        else:
            headers["transfer-encoding"] = "chunked"
            headers["connection"] = "keep-alive"

        def encode(data: bytes) -> bytes:
            return chunk(data) if framing == "chunked" else data

        loop = asyncio.get_running_loop()
        writer.write(status_head(200, headers))
        gap = fault.float("gap", 0.0)
        cut_after = fault.int("after", 3) if fault.name == "cut" else None
        stall_after = fault.int("after", 3) if fault.name == "stall" else None
        wall_cut = fault.float("cut", 1.0) if fault.name == "wallclock-cut" else None
        # A proxy counts from the request's arrival: time to the first event (a model thinking, a queue)
        # counts against its limit. Frame i is due at arrival + first + i * gap; sending exactly the frames
        # scheduled before the cut keeps the count deterministic on a loaded machine.
        first = fault.float("first", 0.0) if wall_cut is not None else 0.0
        started = arrived + first if wall_cut is not None else loop.time()
        if wall_cut is not None:
            wall_cut -= first  # from here on, counted from the first event's due time
            if first > 0:
                await writer.drain()
                if await self._pause(reader, writer, max(0.0, started - loop.time())):
                    entry.end, entry.hangup_at = "client-hangup", self.state.now()
                    return False
        wall_frames = max(0, math.ceil(wall_cut / gap - 1e-9)) if wall_cut is not None and gap > 0 else None
        ended_cleanly = False

        async def hangup() -> bool:
            entry.end, entry.hangup_at = "client-hangup", self.state.now()
            return False

        async def cut() -> bool:
            await writer.drain()
            if fault.get("how") == "rst":
                await asyncio.sleep(0.05)  # let the client read what was sent before the reset
                entry.end = "cut-rst"
                reset(writer)
            else:
                entry.end = "cut-fin"
                writer.close()
            return False

        try:
            for i, frame in enumerate(frames):
                if self._hung_up(reader, writer):
                    return await hangup()
                if cut_after is not None and i >= cut_after:
                    return await cut()
                if stall_after is not None and i == stall_after:
                    await writer.drain()
                    if await self._pause(reader, writer, fault.float("stall", 1.0), fault.float("keepalive", 0.0),
                                         encode, reply.keepalive or KEEPALIVE):
                        return await hangup()
                if wall_cut is not None and (i == wall_frames if wall_frames is not None
                                             else loop.time() - started >= wall_cut):
                    if await self._pause(reader, writer, max(0.0, wall_cut - (loop.time() - started))):
                        return await hangup()
                    return await cut()
                writer.write(encode(frame))
                entry.events_sent += 1
                if gap > 0:
                    await writer.drain()
                    # A proxy's clock does not drift: frames of a wall-clock cut are due at start + i * gap,
                    # so sleep overshoot does not add up and the cut lands on its limit.
                    wait = gap if wall_cut is None else max(0.0, started + (i + 1) * gap - loop.time())
                    if await self._pause(reader, writer, wait):
                        return await hangup()
                elif writer.transport.get_write_buffer_size() > WRITE_BUFFER_HIGH:
                    await writer.drain()
            if cut_after is not None:  # asked to cut after the last frame: body still incomplete
                return await cut()
            ended_cleanly = True
            if fault.name == "done-hold":
                await writer.drain()
                if await self._pause(reader, writer, fault.float("hold", 1.0)):
                    return await hangup()
            if framing == "chunked":
                writer.write(LAST_CHUNK)
            await writer.drain()
            entry.end = "complete"
            if framing == "close":
                writer.close()
                return False
            return req.keep_alive
        finally:
            if reply.on_end is not None:
                reply.on_end(ended_cleanly and fault.name not in ("no-terminal", "error-event"))

    # --- admin ------------------------------------------------------------------------------------

    async def _admin(self, req: Request, writer: asyncio.StreamWriter) -> bool:
        if req.path == "/_sim/log" and req.method == "GET":
            run = req.query.get("run", [None])[0]
            log = [e for e in self.state.snapshot() if run is None or e["run"] == run]
            writer.write(json_response(200, {"data": log}, keep_alive=req.keep_alive))
        elif req.path == "/_sim/reset" and req.method == "POST":
            self.state.reset()
            writer.write(json_response(200, {"ok": True}, keep_alive=req.keep_alive))
        elif req.path == "/_sim/faults" and req.method == "GET":
            writer.write(json_response(200, {"data": FAULTS}, keep_alive=req.keep_alive))
        else:
            writer.write(json_response(404, p.error_body(f"Unknown admin route {req.path}", "invalid_request_error"),
                                       keep_alive=req.keep_alive))
        await writer.drain()
        return req.keep_alive


# --- running it -----------------------------------------------------------------------------------

class SimulatorHandle:
    """A running simulator on a background thread: ``base_url`` for clients, ``log()`` for assertions."""

    def __init__(self, server: SimServer, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.server = server
        self._loop = loop
        self._thread = thread
        self.host = server.host
        self.port = server.port
        self.base_url = f"http://{server.host}:{server.port}/v1"

    def log(self, run: str | None = None) -> list[dict[str, Any]]:
        """Requests seen so far (optionally only those of one driver run, by x-streamtriage-run)."""
        return [e for e in self.server.state.snapshot() if run is None or e["run"] == run]

    def wait_idle(self, run: str | None = None, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Log of ``run`` once every request in it has ended (hang-ups are detected asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log(run)
            if all(e["ended"] is not None for e in log) or time.monotonic() >= deadline:
                return log
            time.sleep(0.01)

    def reset(self) -> None:
        self.server.state.reset()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self.server.close(), self._loop)
        with contextlib.suppress(Exception):
            fut.result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def start_simulator(host: str = "127.0.0.1", port: int = 0) -> SimulatorHandle:
    """Start a simulator on its own thread and event loop; call ``stop()`` when done."""
    loop = asyncio.new_event_loop()
    server = SimServer(host, port)
    ready = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="streamtriage-simulator", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("simulator did not start within 10 s")
    if failure:
        raise RuntimeError(f"simulator failed to start on {host}:{port}: {failure[0]}") from failure[0]
    return SimulatorHandle(server, loop, thread)


@contextlib.contextmanager
def run_simulator(host: str = "127.0.0.1", port: int = 0) -> Iterator[SimulatorHandle]:
    """``with run_simulator() as sim: OpenAI(base_url=sim.base_url, ...)`` — stopped on exit."""
    handle = start_simulator(host, port)
    try:
        yield handle
    finally:
        handle.stop()


async def serve(host: str = "127.0.0.1", port: int = 8787, ready: Callable[[SimServer], None] | None = None) -> None:
    """Run in the foreground until cancelled (``streamtriage simulate``)."""
    server = SimServer(host, port)
    await server.start()
    if ready is not None:
        ready(server)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
