"""Assistants objects a normal Assistants app touches besides runs: assistants, threads, message lists.

With these, the app a newcomer writes from the OpenAI docs runs against the simulator unchanged::

    assistant = client.beta.assistants.create(model="gpt-4o-mini", instructions="...")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    client.beta.threads.messages.list(thread_id=thread.id)    # the assistant's answer, newest first

An assistant created with a fault model (``fault/stuck;status=queued``) passes that fault on to every
run created for it without a model of its own, as a run uses its assistant's model.
"""
from __future__ import annotations

from typing import Any

from . import payloads as p
from .faults import MODEL_PREFIX, FaultSpec, parse_fault
from .replies import Reply
from .state import SimState
from .wire import Request

ROUTES = [
    ("POST", r"/v1/assistants", "_assistant_create"),
    ("GET", r"/v1/assistants", "_assistant_list"),
    ("GET", r"/v1/assistants/(?P<aid>[^/]+)", "_assistant_get"),
    ("DELETE", r"/v1/assistants/(?P<aid>[^/]+)", "_assistant_delete"),
    ("GET", r"/v1/threads/(?P<tid>[^/]+)", "_thread_get"),
    ("DELETE", r"/v1/threads/(?P<tid>[^/]+)", "_thread_delete"),
    ("GET", r"/v1/threads/(?P<tid>[^/]+)/messages", "_message_list"),
]


def assistant_obj(aid: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": aid, "object": "assistant", "created_at": p.now(), "name": body.get("name"),
            "description": body.get("description"), "model": str(body.get("model") or "gpt-4o-mini"),
            "instructions": body.get("instructions"), "tools": list(body.get("tools") or []),
            "metadata": dict(body.get("metadata") or {}), "top_p": 1.0, "temperature": 1.0,
            "response_format": "auto", "tool_resources": body.get("tool_resources") or {}}


def _not_found(kind: str, oid: str) -> Reply:
    return Reply(404, p.error_body(f"No {kind} found with id '{oid}'.", "invalid_request_error"))


def _list(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": False}


class AssistantRoutes:
    """Handlers mixed into the server next to ``ApiRoutes`` (which owns runs)."""

    state: SimState
    ids: p.Ids

    def _assistants(self) -> dict[str, dict[str, Any]]:
        store: dict[str, dict[str, Any]] | None = getattr(self.state, "assistants", None)
        if store is None:
            store = {}
            self.state.assistants = store  # type: ignore[attr-defined]
        return store

    def assistant_fault(self, body: dict[str, Any], fault: FaultSpec) -> FaultSpec:
        """A run without its own model or fault runs with its assistant's model, hence its fault."""
        if body.get("model") or fault.name != "healthy" or fault.params:
            return fault
        model = str(self._assistants().get(str(body.get("assistant_id")), {}).get("model", ""))
        return parse_fault(model, {}) if model.startswith(MODEL_PREFIX) else fault

    async def _assistant_create(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply:
        obj = assistant_obj(self.ids.new("asst"), body)
        self._assistants()[obj["id"]] = obj
        return Reply(200, obj)

    async def _assistant_list(self, req: Request, body: dict[str, Any], fault: FaultSpec) -> Reply:
        return Reply(200, _list(sorted(self._assistants().values(), key=lambda a: a["id"], reverse=True)))

    async def _assistant_get(self, req: Request, body: dict[str, Any], fault: FaultSpec, aid: str) -> Reply:
        obj = self._assistants().get(aid)
        return Reply(200, obj) if obj else _not_found("assistant", aid)

    async def _assistant_delete(self, req: Request, body: dict[str, Any], fault: FaultSpec, aid: str) -> Reply:
        if self._assistants().pop(aid, None) is None:
            return _not_found("assistant", aid)
        return Reply(200, {"id": aid, "object": "assistant.deleted", "deleted": True})

    async def _thread_get(self, req: Request, body: dict[str, Any], fault: FaultSpec, tid: str) -> Reply:
        return Reply(200, p.thread_obj(tid)) if tid in self.state.threads else _not_found("thread", tid)

    async def _thread_delete(self, req: Request, body: dict[str, Any], fault: FaultSpec, tid: str) -> Reply:
        if self.state.threads.pop(tid, None) is None:
            return _not_found("thread", tid)
        return Reply(200, {"id": tid, "object": "thread.deleted", "deleted": True})

    async def _message_list(self, req: Request, body: dict[str, Any], fault: FaultSpec, tid: str) -> Reply:
        """The thread's messages, newest first (the API's default order), with each completed run's answer."""
        messages = self.state.threads.get(tid)
        if messages is None:
            return _not_found("thread", tid)
        answered = {m.get("run_id") for m in messages}
        for run in list(self.state.runs.values()):
            if run.thread_id == tid and run.status == "completed" and run.id not in answered:
                text = "".join(p.pieces(run.fault.int("n", 5), run.fault.get("text")))
                messages.append(p.message_obj(self.ids.new("msg"), tid, "assistant", text, run_id=run.id,
                                              assistant_id=run.assistant_id))
        order = req.query.get("order", ["desc"])[0]
        return Reply(200, _list(list(messages) if order == "asc" else list(reversed(messages))))
