"""The OpenAI API surface the simulator answers: one handler per route, state-driven status timelines.

Handlers get the parsed request, its JSON body and the request's fault, and return a
:class:`~.replies.Reply` or a :class:`~.replies.StreamReply`; the server applies transport faults
(cuts, stalls, drops) while writing. Polled objects follow ``_timeline``: ``stuck`` never moves,
anything else finishes after ``polls`` GETs.
"""
from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from . import payloads as p
from .anthropic_api import messages_create
from .assistants import ROUTES as ASSISTANT_ROUTES
from .assistants import AssistantRoutes
from .faults import FaultSpec
from .provider_shapes import provider_chat_frames
from .replies import Reply, StreamReply, status_reply
from .state import PolledObject, RunState, SimState
from .streams import Frames, chat_finish, chat_frames, responses_frames, run_frames
from .wire import Request


def _sequence_number(frame: bytes) -> int:
    """``sequence_number`` of one encoded Responses SSE frame (-1 if it has none)."""
    for line in frame.split(b"\n"):
        if line.startswith(b"data: "):
            try:
                return int(json.loads(line[6:]).get("sequence_number", -1))
            except (ValueError, AttributeError):
                return -1
    return -1


Handler = Callable[..., Awaitable["Reply | StreamReply"]]


class ApiRoutes(AssistantRoutes):
    """Route table and handlers; mixed into the server, which owns ``state`` and ``ids``."""

    state: SimState
    ids: p.Ids

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        table = [
            ("POST", r"/v1/chat/completions", self._chat),
            ("POST", r"/v1/responses", self._responses_create),
            ("GET", r"/v1/responses/(?P<rid>[^/]+)", self._responses_get),
            ("POST", r"/v1/threads", self._thread_create),
            ("POST", r"/v1/threads/(?P<tid>[^/]+)/messages", self._message_create),
            ("POST", r"/v1/threads/(?P<tid>[^/]+)/runs", self._run_create),
            ("GET", r"/v1/threads/(?P<tid>[^/]+)/runs/(?P<rid>[^/]+)", self._run_get),
            ("POST", r"/v1/threads/(?P<tid>[^/]+)/runs/(?P<rid>[^/]+)/submit_tool_outputs", self._run_submit),
            ("POST", r"/v1/threads/(?P<tid>[^/]+)/runs/(?P<rid>[^/]+)/cancel", self._run_cancel),
            ("POST", r"/v1/files", self._file_create),
            ("POST", r"/v1/vector_stores", self._vs_create),
            ("GET", r"/v1/vector_stores/(?P<vid>[^/]+)", self._vs_get),
            ("POST", r"/v1/vector_stores/(?P<vid>[^/]+)/files", self._vs_file_create),
            ("GET", r"/v1/vector_stores/(?P<vid>[^/]+)/files/(?P<fid>[^/]+)", self._vs_file_get),
            ("POST", r"/v1/vector_stores/(?P<vid>[^/]+)/file_batches", self._batch_create),
            ("GET", r"/v1/vector_stores/(?P<vid>[^/]+)/file_batches/(?P<bid>[^/]+)", self._batch_get),
            ("GET", r"/v1/models", self._models),
            *((m, pattern, getattr(self, name)) for m, pattern, name in ASSISTANT_ROUTES),
            ("POST", r"/v1/messages", self._anthropic_messages),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in table]

    # --- Chat Completions -------------------------------------------------------------------------

    async def _chat(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply | StreamReply:
        if body.get("stream"):
            frames = (provider_chat_frames if fault.get("provider") else chat_frames)(body, fault, self.ids)
            return StreamReply(frames, fault, "chat")
        model = str(body.get("model") or "gpt-4o-mini")
        text = "".join(p.pieces(fault.int("n", 5), fault.get("text")))
        return Reply(200, p.chat_completion(self.ids.new("chatcmpl"), model, text, chat_finish(fault) or "stop"))

    # --- Responses --------------------------------------------------------------------------------

    async def _responses_create(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply | StreamReply:
        rid = self.ids.new("resp")
        created = p.now()
        background = bool(body.get("background"))
        frames = responses_frames(rid, body, fault, self.ids, created, background)
        if background:
            # Background jobs outlive the request: GET polls them, GET ?stream=true replays their events.
            queued = p.response_obj(rid, str(body.get("model") or "gpt-4o-mini"), "queued", created, background=True)
            self.state.objects[rid] = PolledObject(rid, "response", fault, created, "queued", payload={
                "queued": queued, "final": frames.final_object, "frames": frames})
            if not body.get("stream"):
                return Reply(200, queued)
        if body.get("stream"):
            return StreamReply(frames, fault, "responses")
        return Reply(200, frames.final_object)

    async def _responses_get(self, req: Request, body: dict[str, Any], fault: FaultSpec,
                             rid: str) -> Reply | StreamReply:
        obj = self.state.objects.get(rid)
        if obj is None or obj.kind != "response":
            return Reply(404, p.error_body(f"No response found with id '{rid}'.", "invalid_request_error"))
        if req.query.get("stream", [""])[0].lower() == "true":
            return self._responses_replay(obj, req)
        obj.polls += 1
        obj.status = self._timeline(obj.fault, obj.polls, stuck_default="queued")
        if obj.status in ("queued", "in_progress"):
            return Reply(200, dict(obj.payload["queued"], status=obj.status))
        return Reply(200, dict(obj.payload.get("final") or {}))

    @staticmethod
    def _responses_replay(obj: PolledObject, req: Request) -> StreamReply:
        """Replay a background response's events (resume); ``starting_after`` skips what the client has."""
        frames: Frames = obj.payload["frames"]
        after = req.query.get("starting_after", [None])[0]
        kept = list(frames.frames)
        if after is not None and after.lstrip("-").isdigit():
            kept = [f for f in kept if _sequence_number(f) > int(after)]
        return StreamReply(Frames(kept, frames.terminal, frames.final_status, frames.final_object),
                           FaultSpec("healthy"), "responses")

    @staticmethod
    def _timeline(fault: FaultSpec, polls: int, stuck_default: str, done: str = "completed") -> str:
        """Status after ``polls`` GETs: stuck never moves; otherwise in_progress until ``polls`` GETs."""
        if fault.name == "stuck":
            return str(fault.get("status", stuck_default))
        return "in_progress" if polls < fault.int("polls", 2) else done

    # --- Assistants -------------------------------------------------------------------------------

    async def _thread_create(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply:
        tid = self.ids.new("thread")
        self.state.threads[tid] = [
            p.message_obj(self.ids.new("msg"), tid, str(m.get("role", "user")),
                          m["content"] if isinstance(m.get("content"), str) else "(content parts)")
            for m in body.get("messages") or [] if isinstance(m, dict)]
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
        fault = self.assistant_fault(body, fault)
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
            return status_reply(run.fault, default=429)
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

    # --- Anthropic Messages (simulator/anthropic_api.py) --------------------------------------------

    async def _anthropic_messages(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply | StreamReply:
        return await messages_create(body, fault, self.ids)
