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
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator

from . import payloads as p
from .faults import FAULTS, FaultError, FaultSpec, parse_fault
from .state import LogEntry, PolledObject, RunState, SimState
from .streams import (Frames, chat_error_frame, chat_frames, responses_error_frame, responses_frames,
                      run_error_frame, run_frames)
from .wire import (KEEPALIVE, LAST_CHUNK, BadRequest, Request, chunk, json_response, raw_response, read_request,
                   reset, sse, status_head)

logger = logging.getLogger("streamtriage.simulator")
WRITE_BUFFER_HIGH = 256 * 1024
HTML_524 = ("<!DOCTYPE html><html><head><title>127.0.0.1 | 524: A timeout occurred</title></head><body>"
            "<h1>Error 524</h1><p>A timeout occurred</p><p>The origin web server timed out responding to "
            "this request.</p></body></html>")
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>" \
           "<hr><center>nginx</center></body></html>"
ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    408: ("Request timed out.", "timeout", None),
    409: ("Conflict.", "invalid_request_error", None),
    429: ("Rate limit reached for gpt-4o-mini in organization org-sim on requests per min (RPM): Limit 3, "
          "Used 3, Requested 1. Please try again in 20s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


@dataclass
class Reply:
    """A complete (Content-Length) response."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    html: bool = False


@dataclass
class StreamReply:
    """An SSE response and the fault to apply while writing it."""

    frames: Frames
    fault: FaultSpec
    api: str  # chat | responses | assistants
    on_end: Callable[[bool], None] | None = None  # called with "terminal frames were sent"


class SimServer:
    """Owns the listening socket, the state and the request handlers."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.state = SimState()
        self.ids = p.Ids()
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Awaitable[Reply | StreamReply]]]] = [
            ("POST", re.compile(r"/v1/chat/completions"), self._chat),
            ("POST", re.compile(r"/v1/responses"), self._responses_create),
            ("GET", re.compile(r"/v1/responses/(?P<rid>[^/]+)"), self._responses_get),
            ("POST", re.compile(r"/v1/threads"), self._thread_create),
            ("POST", re.compile(r"/v1/threads/(?P<tid>[^/]+)/messages"), self._message_create),
            ("POST", re.compile(r"/v1/threads/(?P<tid>[^/]+)/runs"), self._run_create),
            ("GET", re.compile(r"/v1/threads/(?P<tid>[^/]+)/runs/(?P<rid>[^/]+)"), self._run_get),
            ("POST", re.compile(r"/v1/threads/(?P<tid>[^/]+)/runs/(?P<rid>[^/]+)/submit_tool_outputs"),
             self._run_submit),
            ("POST", re.compile(r"/v1/threads/(?P<tid>[^/]+)/runs/(?P<rid>[^/]+)/cancel"), self._run_cancel),
            ("POST", re.compile(r"/v1/files"), self._file_create),
            ("POST", re.compile(r"/v1/vector_stores"), self._vs_create),
            ("GET", re.compile(r"/v1/vector_stores/(?P<vid>[^/]+)"), self._vs_get),
            ("POST", re.compile(r"/v1/vector_stores/(?P<vid>[^/]+)/files"), self._vs_file_create),
            ("GET", re.compile(r"/v1/vector_stores/(?P<vid>[^/]+)/files/(?P<fid>[^/]+)"), self._vs_file_get),
            ("POST", re.compile(r"/v1/vector_stores/(?P<vid>[^/]+)/file_batches"), self._batch_create),
            ("GET", re.compile(r"/v1/vector_stores/(?P<vid>[^/]+)/file_batches/(?P<bid>[^/]+)"), self._batch_get),
            ("GET", re.compile(r"/v1/models"), self._models),
        ]

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
        try:
            body = req.json() if req.method == "POST" else {}
            fault = parse_fault(str(body.get("model") or ""), req.headers)
        except (BadRequest, FaultError) as exc:
            writer.write(json_response(400, p.error_body(str(exc), "invalid_request_error"),
                                       keep_alive=req.keep_alive))
            await writer.drain()
            return req.keep_alive
        entry = self.state.new_entry(req.method, req.path, fault.name, req.headers)
        attempt = self.state.attempt(req.method, req.path, req.body, req.headers)
        try:
            return await self._serve_faulted(req, body, fault, attempt, entry, reader, writer)
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
                             entry: LogEntry, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
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
        return await self._write_stream(req, reply, entry, reader, writer)

    def _route(self, req: Request) -> tuple[Any, dict[str, str]]:
        for method, pattern, handler in self._routes:
            if method == req.method:
                match = pattern.fullmatch(req.path)
                if match:
                    return handler, match.groupdict()
        return None, {}

    def _common_headers(self) -> dict[str, str]:
        return {"x-request-id": self.ids.new("req"), "openai-processing-ms": "12", "openai-version": "2020-10-01"}

    def _status_reply(self, fault: FaultSpec, default: int) -> Reply:
        """An HTTP error for a polled object's GET (JSON body, Retry-After headers from the params)."""
        status = fault.int("status", default)
        headers: dict[str, str] = {}
        if "retry_after" in fault.params:
            headers["retry-after"] = str(fault.get("retry_after"))
        if "retry_after_ms" in fault.params:
            headers["retry-after-ms"] = str(fault.int("retry_after_ms", 0))
        message, type_, code = ERROR_DEFAULTS.get(status, (f"HTTP {status}", "server_error", None))
        return Reply(status, p.error_body(str(fault.get("message", message)), str(fault.get("type", type_)),
                                          fault.get("code", code)), headers)

    def _status_error(self, fault: FaultSpec, req: Request) -> bytes:
        status = fault.int("status", 500)
        headers = self._common_headers()
        if "retry_after" in fault.params:
            ra = fault.float("retry_after", 1)
            headers["retry-after"] = str(int(ra)) if ra == int(ra) else str(ra)
        if "retry_after_ms" in fault.params:
            headers["retry-after-ms"] = str(fault.int("retry_after_ms", 0))
        if "should_retry" in fault.params:
            headers["x-should-retry"] = str(fault.get("should_retry")).lower()
        kind = fault.get("body", "html" if status in (502, 504, 524) else "json")
        if kind == "html":
            html = HTML_524 if status == 524 else HTML_502 if status == 502 else f"<html><body>{status}</body></html>"
            return raw_response(status, html.encode(), "text/html", headers, keep_alive=req.keep_alive)
        message, type_, code = ERROR_DEFAULTS.get(status, (f"HTTP {status}", "server_error", None))
        err = p.error_body(str(fault.get("message", message)), str(fault.get("type", type_)),
                           fault.get("code", code))
        return json_response(status, err, headers, keep_alive=req.keep_alive)

    # --- streaming --------------------------------------------------------------------------------

    @staticmethod
    def _hung_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        return reader.at_eof() or writer.transport.is_closing()

    async def _pause(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float,
                     keepalive: float = 0.0, encode: Callable[[bytes], bytes] | None = None) -> bool:
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
                writer.write(encode(KEEPALIVE))
                await writer.drain()
                next_ka += keepalive
            await asyncio.sleep(max(0.0, min(0.02, end - now, next_ka - now)))

    def _error_frame(self, api: str, fault: FaultSpec, seq: int) -> bytes:
        if api == "chat":
            return chat_error_frame(fault)
        if api == "responses":
            return responses_error_frame(fault, seq)
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
                            reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
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
        started = loop.time()
        gap = fault.float("gap", 0.0)
        cut_after = fault.int("after", 3) if fault.name == "cut" else None
        stall_after = fault.int("after", 3) if fault.name == "stall" else None
        wall_cut = fault.float("cut", 1.0) if fault.name == "wallclock-cut" else None
        # A proxy's cut is wall-clock; sending exactly the frames scheduled before it keeps the count
        # deterministic on a loaded machine (frame i is due at i * gap).
        wall_frames = math.ceil(wall_cut / gap - 1e-9) if wall_cut is not None and gap > 0 else None
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
                                         encode):
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
                    if await self._pause(reader, writer, gap):
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

    # --- Chat Completions -------------------------------------------------------------------------

    async def _chat(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply | StreamReply:
        if body.get("stream"):
            return StreamReply(chat_frames(body, fault, self.ids), fault, "chat")
        model = str(body.get("model") or "gpt-4o-mini")
        text = "".join(p.pieces(fault.int("n", 5), fault.get("text")))
        finish = {"length": "length", "content-filter": "content_filter"}.get(fault.name, "stop")
        return Reply(200, p.chat_completion(self.ids.new("chatcmpl"), model, text, finish))

    # --- Responses --------------------------------------------------------------------------------

    async def _responses_create(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply | StreamReply:
        rid = self.ids.new("resp")
        created = p.now()
        background = bool(body.get("background"))
        frames = responses_frames(rid, body, fault, self.ids, created, background)
        if body.get("stream"):
            if background:
                self.state.objects[rid] = PolledObject(rid, "response", fault, created, "in_progress",
                                                       payload=frames.final_object or {})
            return StreamReply(frames, fault, "responses")
        if background:
            queued = p.response_obj(rid, str(body.get("model") or "gpt-4o-mini"), "queued", created, background=True)
            self.state.objects[rid] = PolledObject(rid, "response", fault, created, "queued",
                                                   payload={"queued": queued, "final": frames.final_object})
            return Reply(200, queued)
        return Reply(200, frames.final_object)

    async def _responses_get(self, req: Request, body: dict[str, Any], fault: FaultSpec, rid: str) -> Reply:
        obj = self.state.objects.get(rid)
        if obj is None or obj.kind != "response":
            return Reply(404, p.error_body(f"No response found with id '{rid}'.", "invalid_request_error"))
        obj.polls += 1
        obj.status = self._timeline(obj.fault, obj.polls, stuck_default="queued")
        final = obj.payload.get("final") or {}
        if obj.status in ("queued", "in_progress"):
            out = dict(obj.payload["queued"], status=obj.status)
        else:
            out = dict(final)
        return Reply(200, out)

    @staticmethod
    def _timeline(fault: FaultSpec, polls: int, stuck_default: str, done: str = "completed") -> str:
        """Status after ``polls`` GETs: stuck never moves; otherwise in_progress until ``polls`` GETs."""
        if fault.name == "stuck":
            return str(fault.get("status", stuck_default))
        return "in_progress" if polls < fault.int("polls", 2) else done

    # --- Assistants -------------------------------------------------------------------------------

    async def _thread_create(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply:
        tid = self.ids.new("thread")
        self.state.threads[tid] = []
        return Reply(200, p.thread_obj(tid))

    async def _message_create(self, req: Request, body: dict[str, Any], fault: FaultSpec, tid: str) -> Reply:
        if tid not in self.state.threads:
            return Reply(404, p.error_body(f"No thread found with id '{tid}'.", "invalid_request_error"))
        content = body.get("content")
        text = content if isinstance(content, str) else "(content parts)"
        msg = p.message_obj(self.ids.new("msg"), tid, str(body.get("role", "user")), text)
        self.state.threads[tid].append(msg)
        return Reply(200, msg)

    async def _run_create(self, req: Request, body: dict[str, Any], fault: FaultSpec, tid: str) -> Reply | StreamReply:
        if tid not in self.state.threads:
            return Reply(404, p.error_body(f"No thread found with id '{tid}'.", "invalid_request_error"))
        if fault.name == "active-run":
            other = self.ids.new("run")
            return Reply(400, p.error_body(f"Thread {tid} already has an active run {other}.",
                                           "invalid_request_error"))
        run = RunState(self.ids.new("run"), tid, str(body.get("assistant_id", "asst_sim")),
                       str(body.get("model") or "gpt-4o-mini"), fault, p.now())
        self.state.runs[run.id] = run
        if not body.get("stream"):
            return Reply(200, p.run_obj(run))
        frames = run_frames(run, fault, self.ids, "create")
        final = run.status

        def on_end(complete: bool) -> None:
            # The run keeps going server-side when the client stream breaks.
            run.status = final if complete else "in_progress"
            if fault.name == "requires-action" and fault.int("expire", 0):
                run.expired = True

        return StreamReply(frames, fault, "assistants", on_end)

    def _run_or_404(self, tid: str, rid: str) -> RunState | Reply:
        run = self.state.runs.get(rid)
        if run is None or run.thread_id != tid:
            return Reply(404, p.error_body(f"No run found with id '{rid}'.", "invalid_request_error"))
        return run

    async def _run_get(self, req: Request, body: dict[str, Any], fault: FaultSpec, tid: str, rid: str) -> Reply:
        run = self._run_or_404(tid, rid)
        if isinstance(run, Reply):
            return run
        run.polls += 1
        if run.fault.name == "poll-status" and run.polls <= run.fault.int("times", 1 << 30):
            return self._status_reply(run.fault, default=429)
        if run.expired:
            run.status = "expired"
        elif run.status == "cancelling":
            run.status = "cancelled"
        elif run.status in ("queued", "in_progress"):
            name = run.fault.name
            done = {"failed": "failed", "expired": "expired", "cancelled": "cancelled", "incomplete": "incomplete",
                    "requires-action": "requires_action"}.get(name, "completed")
            run.status = self._timeline(run.fault, run.polls, stuck_default="in_progress", done=done)
            if run.status == "failed" and run.last_error is None:
                code = str(run.fault.get("code", "server_error"))
                run.last_error = {"code": code, "message": "Sorry, something went wrong."
                                  if code == "server_error" else "Rate limit reached."}
            if run.status == "incomplete":
                run.incomplete_reason = str(run.fault.get("reason", "max_completion_tokens"))
            if run.status == "requires_action":
                run.required_action = p.required_action(self.ids.new("call"))
        return Reply(200, p.run_obj(run))

    async def _run_submit(self, req: Request, body: dict[str, Any], fault: FaultSpec, tid: str,
                          rid: str) -> Reply | StreamReply:
        run = self._run_or_404(tid, rid)
        if isinstance(run, Reply):
            return run
        if run.expired or run.status != "requires_action":
            status = "expired" if run.expired else run.status
            run.status = status
            return Reply(400, p.error_body(f'Runs in status "{status}" do not accept tool outputs.',
                                           "invalid_request_error"))
        run.required_action = None
        run.fault = FaultSpec("healthy", {"polls": 1})
        run.polls = 0
        run.status = "queued"
        if not body.get("stream"):
            return Reply(200, p.run_obj(run))
        frames = run_frames(run, fault, self.ids, "submit")
        final = run.status
        return StreamReply(frames, fault, "assistants",
                           lambda complete: setattr(run, "status", final if complete else "in_progress"))

    async def _run_cancel(self, req: Request, body: dict[str, Any], fault: FaultSpec, tid: str, rid: str) -> Reply:
        run = self._run_or_404(tid, rid)
        if isinstance(run, Reply):
            return run
        if run.status in ("completed", "failed", "expired", "cancelled", "incomplete"):
            return Reply(400, p.error_body(f"Cannot cancel run with status '{run.status}'.", "invalid_request_error"))
        run.status = "cancelling"
        return Reply(200, p.run_obj(run))

    # --- files and vector stores ------------------------------------------------------------------

    async def _file_create(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply:
        name = "upload.txt"
        match = re.search(rb'filename="([^"]+)"', req.body)
        if match:
            name = match.group(1).decode("utf-8", "replace")
        return Reply(200, p.file_obj(self.ids.new("file"), len(req.body), name))

    async def _vs_create(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply:
        vid = self.ids.new("vs")
        # The store's fault is inherited by files and batches added to it: the 1.x polling helpers
        # cannot pass headers, so a scenario marks the store instead.
        store = {"created": p.now(), "files": [], "fault": fault}
        self.state.vector_stores[vid] = store
        for fid in [str(f) for f in body.get("file_ids") or []]:  # files attached at creation index too
            obj = PolledObject(f"{vid}/{fid}", "vs_file", fault, store["created"], "in_progress")
            self.state.objects[obj.id] = obj
            store["files"].append(obj.id)
        return await self._vs_get(req, {}, fault, vid)

    def _vs_or_404(self, vid: str) -> dict[str, Any] | Reply:
        store = self.state.vector_stores.get(vid)
        if store is None:
            return Reply(404, p.error_body(f"No vector store found with id '{vid}'.", "invalid_request_error"))
        return store

    async def _vs_get(self, req: Request, body: dict[str, Any], fault: FaultSpec, vid: str) -> Reply:
        store = self._vs_or_404(vid)
        if isinstance(store, Reply):
            return store
        # Reading the store advances its files' indexing like polling them would.
        for key in store["files"]:
            obj = self.state.objects[key]
            if req.method == "GET":
                obj.polls += 1
                obj.status = self._timeline(obj.fault, obj.polls, stuck_default="in_progress")
        statuses = [self.state.objects[f].status for f in store["files"]]
        busy = sum(s == "in_progress" for s in statuses)
        return Reply(200, p.vector_store_obj(vid, busy, len(statuses) - busy, store["created"]))

    async def _vs_file_create(self, req: Request, body: dict[str, Any], fault: FaultSpec, vid: str) -> Reply:
        store = self._vs_or_404(vid)
        if isinstance(store, Reply):
            return store
        fid = str(body.get("file_id") or self.ids.new("file"))
        fault = fault if fault.name != "healthy" else store["fault"]
        obj = PolledObject(f"{vid}/{fid}", "vs_file", fault, p.now(), "in_progress")
        self.state.objects[obj.id] = obj
        store["files"].append(obj.id)
        return Reply(200, p.vector_store_file_obj(fid, vid, obj.status, obj.created))

    async def _vs_file_get(self, req: Request, body: dict[str, Any], fault: FaultSpec, vid: str, fid: str) -> Reply:
        obj = self.state.objects.get(f"{vid}/{fid}")
        if obj is None:
            return Reply(404, p.error_body(f"No file found with id '{fid}' in vector store '{vid}'.",
                                           "invalid_request_error"))
        obj.polls += 1
        obj.status = self._timeline(obj.fault, obj.polls, stuck_default="in_progress")
        return Reply(200, p.vector_store_file_obj(fid, vid, obj.status, obj.created))

    async def _batch_create(self, req: Request, body: dict[str, Any], fault: FaultSpec, vid: str) -> Reply:
        store = self._vs_or_404(vid)
        if isinstance(store, Reply):
            return store
        files = [str(f) for f in body.get("file_ids") or []]
        bid = self.ids.new("vsfb")
        fault = fault if fault.name != "healthy" else store["fault"]
        obj = PolledObject(f"{vid}/batch/{bid}", "batch", fault, p.now(), "in_progress", payload={"n": len(files)})
        self.state.objects[obj.id] = obj
        return Reply(200, p.file_batch_obj(bid, vid, obj.status, len(files), obj.created))

    async def _batch_get(self, req: Request, body: dict[str, Any], fault: FaultSpec, vid: str, bid: str) -> Reply:
        obj = self.state.objects.get(f"{vid}/batch/{bid}")
        if obj is None:
            return Reply(404, p.error_body(f"No file batch found with id '{bid}'.", "invalid_request_error"))
        obj.polls += 1
        obj.status = self._timeline(obj.fault, obj.polls, stuck_default="in_progress")
        return Reply(200, p.file_batch_obj(bid, vid, obj.status, obj.payload["n"], obj.created))

    async def _models(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply:
        return Reply(200, {"object": "list", "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"}]})


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
