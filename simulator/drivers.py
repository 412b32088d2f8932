"""Drive the real openai (or anthropic) SDK through one scenario, as an app would, and record what the app saw.

``run_scenario(scenario, base_url, mode="sync"|"async")`` builds a real ``openai.OpenAI`` /
``AsyncOpenAI`` client against the simulator, makes the scenario's SDK call (iterating the
stream, using the helper, polling) and **never raises**: everything ends up in an
:class:`Observation`. The hooks' differential tests run the same driver with and without
instrumentation and compare ``Observation.app_view()``, which leaves out timings and ids.

Works with openai 1.x (>= 1.40) and 3.x: the few API moves between them (``beta.chat.completions
.stream``, ``beta.vector_stores``) are looked up at run time.
"""
from __future__ import annotations

import asyncio
import ctypes
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import openai

from .faults import FAULT_HEADER, PARAMS_HEADER, RUN_HEADER
from .scenarios import Scenario

MESSAGES = [{"role": "user", "content": "Say something about foxes."}]
ASSISTANT_ID = "asst_sim"
DEFAULT_DEADLINE = 5.0  # seconds before an SDK poll helper is abandoned (stuck scenarios set a short one)
DEFAULT_MAX_POLLS = 20  # polls before the app's own retrieve() loop gives up (deterministic)

_ID_RE = re.compile(r"\b(chatcmpl-|file-|(?:resp|run|thread|msg|step|vs|vsfb|call|req)_)[A-Za-z0-9]+")


def qualname(exc: BaseException) -> str:
    """Module-qualified class name as the app would import it (``httpx2.ReadTimeout``)."""
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def exception_chain(exc: BaseException) -> list[str]:
    """Classes from ``exc`` inwards, following ``__cause__``, else ``__context__`` (span contract)."""
    out: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen and len(out) < 12:
        seen.add(id(cur))
        out.append(qualname(cur))
        cur = cur.__cause__ or cur.__context__
    return out


@dataclass
class ExceptionInfo:
    type: str
    message: str
    chain: list[str]

    @classmethod
    def of(cls, exc: BaseException) -> ExceptionInfo:
        return cls(qualname(exc), str(exc)[:512], exception_chain(exc))

    @property
    def cause(self) -> str | None:
        return self.chain[1] if len(self.chain) > 1 else None


@dataclass
class Observation:
    """What the app saw in one scenario run."""

    scenario: str
    call: str
    mode: str
    sdk_version: str
    run_id: str
    events: list[str] = field(default_factory=list)  # stream event types the app's loop received
    text: str = ""
    finish_reason: str | None = None
    status: str | None = None  # final response / run / file status the app saw
    exception: ExceptionInfo | None = None
    callbacks: list[str] = field(default_factory=list)  # AssistantEventHandler on_timeout/on_exception/on_end
    polls: int = 0  # polls made by the app's own loop
    gave_up: bool = False  # the driver's deadline ended a poll loop
    duration_s: float = 0.0

    @property
    def event_count(self) -> int:
        return len(self.events)

    @property
    def exception_type(self) -> str | None:
        return self.exception.type if self.exception else None

    def app_view(self) -> dict[str, Any]:
        """Deterministic view for comparing runs (no timings, run ids or server-generated ids)."""
        exc = None
        if self.exception:
            exc = {"type": self.exception.type, "message": _ID_RE.sub(r"\1*", self.exception.message),
                   "chain": list(self.exception.chain)}
        return {"scenario": self.scenario, "call": self.call, "events": list(self.events), "text": self.text,
                "finish_reason": self.finish_reason, "status": self.status, "exception": exc,
                "callbacks": list(self.callbacks), "polls": self.polls, "gave_up": self.gave_up}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PollDeadline(BaseException):
    """Raised into a sync app thread when a never-ending poll loop reaches the scenario's deadline.

    A BaseException (like KeyboardInterrupt) so the SDK's ``except Exception`` retry handling does not
    swallow it; the async twin of this is ``asyncio.wait_for`` cancelling the task.
    """


class _Rec:
    """Accumulates what the app's loop sees."""

    def __init__(self, obs: Observation) -> None:
        self.obs = obs

    def chat_chunk(self, chunk: Any) -> None:
        self.obs.events.append("chat.completion.chunk")
        for choice in getattr(chunk, "choices", None) or []:
            delta = getattr(choice, "delta", None)
            if delta is not None and getattr(delta, "content", None):
                self.obs.text += delta.content
            if getattr(choice, "finish_reason", None) is not None:
                self.obs.finish_reason = choice.finish_reason

    def response_event(self, event: Any) -> None:
        etype = str(getattr(event, "type", None))
        self.obs.events.append(etype)
        if etype == "response.output_text.delta":
            self.obs.text += event.delta
        response = getattr(event, "response", None)
        if response is not None and getattr(response, "status", None):
            self.obs.status = response.status

    def run_event(self, event: Any) -> None:
        name = str(getattr(event, "event", None))
        self.obs.events.append(name)
        data = getattr(event, "data", None)
        if name == "thread.message.delta" and data is not None:
            for part in getattr(data.delta, "content", None) or []:
                text = getattr(part, "text", None)
                if text is not None and getattr(text, "value", None):
                    self.obs.text += text.value
        elif name.startswith("thread.run.") and not name.startswith("thread.run.step") and data is not None:
            self.obs.status = getattr(data, "status", self.obs.status)


def _fault_headers(sc: Scenario) -> dict[str, str]:
    params = ";".join(f"{k}={v}" for k, v in dict(sc.params).items())
    headers = {FAULT_HEADER: sc.fault}
    if params:
        headers[PARAMS_HEADER] = params
    return headers


def _chat_stream_helper(client: Any) -> Any:
    chat = client.chat.completions
    return chat if hasattr(chat, "stream") else client.beta.chat.completions


def _vector_stores(client: Any) -> Any:
    return getattr(client, "vector_stores", None) or client.beta.vector_stores


def _tool_outputs(run: Any) -> list[dict[str, str]]:
    calls = run.required_action.submit_tool_outputs.tool_calls if run.required_action else []
    return [{"tool_call_id": c.id, "output": "{\"temp_c\": 21}"} for c in calls]


# --- the driver table: call -> how an app makes it, sync and async ----------------------------------

SyncDriver = Callable[[Scenario, Any, "_Rec"], None]
AsyncDriver = Callable[[Scenario, Any, "_Rec"], Awaitable[None]]


@dataclass(frozen=True)
class Driver:
    """One row of the table: the app code for a scenario call, sync and async, and the SDK it drives."""

    sync: SyncDriver
    async_: AsyncDriver
    sdk: str = "openai"


_SYNC: dict[str, SyncDriver] = {}
_ASYNC: dict[str, AsyncDriver] = {}


def _sync(*calls: str) -> Callable[[SyncDriver], SyncDriver]:
    def register(fn: SyncDriver) -> SyncDriver:
        _SYNC.update(dict.fromkeys(calls, fn))
        return fn

    return register


def _async(*calls: str) -> Callable[[AsyncDriver], AsyncDriver]:
    def register(fn: AsyncDriver) -> AsyncDriver:
        _ASYNC.update(dict.fromkeys(calls, fn))
        return fn

    return register


# --- sync drivers ---------------------------------------------------------------------------------

def _sync_handler(obs: Observation) -> Any:
    class Handler(openai.AssistantEventHandler):
        def on_timeout(self) -> None:
            obs.callbacks.append("on_timeout")

        def on_exception(self, exception: Exception) -> None:
            obs.callbacks.append(f"on_exception:{qualname(exception)}")

        def on_end(self) -> None:
            obs.callbacks.append("on_end")

    return Handler()


def _async_handler(obs: Observation) -> Any:
    class Handler(openai.AsyncAssistantEventHandler):
        async def on_timeout(self) -> None:
            obs.callbacks.append("on_timeout")

        async def on_exception(self, exception: Exception) -> None:
            obs.callbacks.append(f"on_exception:{qualname(exception)}")

        async def on_end(self) -> None:
            obs.callbacks.append("on_end")

    return Handler()


def _sync_thread(client: Any) -> str:
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content="What is the weather in Paris?")
    return thread.id


def _sync_run_stream(client: Any, sc: Scenario, rec: _Rec, tid: str) -> Any:
    with client.beta.threads.runs.stream(thread_id=tid, assistant_id=ASSISTANT_ID, model=sc.model,
                                         event_handler=_sync_handler(rec.obs), **dict(sc.request)) as stream:
        for event in stream:
            rec.run_event(event)
        run = stream.get_final_run()
    rec.obs.status = run.status
    return run


@_sync("chat.create")
def _s_chat_create(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    completion = client.chat.completions.create(model=sc.model, messages=MESSAGES, **req)
    obs.text = completion.choices[0].message.content or ""
    obs.finish_reason = completion.choices[0].finish_reason


@_sync(
    "chat.create_stream", "chat.create_stream_break", "chat.create_stream_index0", "chat.create_stream_dict",
)
def _s_chat_create_stream(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    call = sc.call
    stream = client.chat.completions.create(model=sc.model, messages=MESSAGES, stream=True, **req)
    if call == "chat.create_stream_break":
        for chunk in stream:
            rec.chat_chunk(chunk)
            if obs.event_count >= int(sc.app.get("break_after", 5)):
                break
        stream.close()
        return
    for chunk in stream:
        rec.chat_chunk(chunk)
        if call == "chat.create_stream_index0":
            _ = chunk.choices[0].delta.content  # the app's assumption: every chunk has a choice
        elif call == "chat.create_stream_dict":
            _ = chunk.to_dict()["choices"][0]["finish_reason"]  # hand-written parsing


@_sync("chat.stream_helper")
def _s_chat_stream_helper(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    with _chat_stream_helper(client).stream(model=sc.model, messages=MESSAGES, **req) as stream:
        for event in stream:
            if event.type == "chunk":
                rec.chat_chunk(event.chunk)
        final = stream.get_final_completion()
    obs.finish_reason = final.choices[0].finish_reason


@_sync("responses.create_stream")
def _s_responses_create_stream(sc: Scenario, client: Any, rec: _Rec) -> None:
    req = dict(sc.request)
    for event in client.responses.create(model=sc.model, input="Say something about foxes.", stream=True, **req):
        rec.response_event(event)


@_sync("responses.stream_helper")
def _s_responses_stream_helper(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    with client.responses.stream(model=sc.model, input="Say something about foxes.", **req) as stream:
        for event in stream:
            rec.response_event(event)
        final = stream.get_final_response()
    obs.status = final.status


@_sync("responses.background_resume")
def _s_responses_background_resume(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    rid, last = None, None
    try:
        for event in client.responses.create(model=sc.model, input="Write a long report.", background=True,
                                             stream=True, **req):
            rec.response_event(event)
            last = event.sequence_number
            if event.type == "response.created":
                rid = event.response.id
    except Exception as exc:  # the app resumes the background job instead of failing
        if rid is None:
            raise
        obs.callbacks.append(f"resume_after:{qualname(exc)}")
        with client.responses.stream(response_id=rid, starting_after=last) as stream:
            for event in stream:
                rec.response_event(event)
            obs.status = stream.get_final_response().status


@_sync("responses.background_poll")
def _s_responses_background_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    resp = client.responses.create(model=sc.model, input="Write a long report.", background=True, **req)
    obs.status = resp.status
    while resp.status in ("queued", "in_progress"):
        if obs.polls >= int(sc.app.get("max_polls", DEFAULT_MAX_POLLS)):
            obs.gave_up = True
            break
        time.sleep(float(sc.app.get("poll_interval", 0.05)))
        resp = client.responses.retrieve(resp.id)
        obs.polls += 1
        obs.status = resp.status
    if resp.status == "completed":
        obs.text = resp.output_text


@_sync("runs.stream_handler")
def _s_runs_stream_handler(sc: Scenario, client: Any, rec: _Rec) -> None:
    _sync_run_stream(client, sc, rec, _sync_thread(client))


@_sync("runs.create_stream")
def _s_runs_create_stream(sc: Scenario, client: Any, rec: _Rec) -> None:
    req = dict(sc.request)
    tid = _sync_thread(client)
    for event in client.beta.threads.runs.create(thread_id=tid, assistant_id=ASSISTANT_ID, model=sc.model,
                                                 stream=True, **req):
        rec.run_event(event)


@_sync("runs.submit_tool_outputs_stream", "runs.submit_tool_outputs_late")
def _s_runs_submit_tool_outputs_stream(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    call = sc.call
    tid = _sync_thread(client)
    run = _sync_run_stream(client, sc, rec, tid)
    if call == "runs.submit_tool_outputs_late":
        time.sleep(float(sc.app.get("tool_seconds", 0.05)))  # the slow tool
        run = client.beta.threads.runs.submit_tool_outputs(thread_id=tid, run_id=run.id,
                                                           tool_outputs=_tool_outputs(run))
        obs.status = run.status
        return
    obs.events.clear()
    obs.text = ""
    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=tid, run_id=run.id, tool_outputs=_tool_outputs(run),
            event_handler=_sync_handler(obs)) as stream:
        for event in stream:
            rec.run_event(event)
        obs.status = stream.get_final_run().status


@_sync("runs.create_and_poll")
def _s_runs_create_and_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    tid = _sync_thread(client)
    run = _sync_with_deadline(sc, obs, lambda: client.beta.threads.runs.create_and_poll(
        thread_id=tid, assistant_id=ASSISTANT_ID, model=sc.model,
        poll_interval_ms=int(sc.app.get("poll_interval_ms", 50)), **req))
    if run is not None:
        obs.status = run.status


@_sync("runs.submit_tool_outputs_and_poll")
def _s_runs_submit_tool_outputs_and_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    tid = _sync_thread(client)
    interval = int(sc.app.get("poll_interval_ms", 50))
    run = client.beta.threads.runs.create_and_poll(thread_id=tid, assistant_id=ASSISTANT_ID, model=sc.model,
                                                   poll_interval_ms=interval, **req)
    obs.status = run.status
    if run.status == "requires_action":
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=tid, run_id=run.id, tool_outputs=_tool_outputs(run), poll_interval_ms=interval)
        obs.status = run.status


@_sync("runs.manual_poll")
def _s_runs_manual_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    tid = _sync_thread(client)
    run = client.beta.threads.runs.create(thread_id=tid, assistant_id=ASSISTANT_ID, model=sc.model, **req)
    obs.status = run.status
    while run.status in ("queued", "in_progress", "cancelling"):
        if obs.polls >= int(sc.app.get("max_polls", DEFAULT_MAX_POLLS)):
            obs.gave_up = True
            break
        time.sleep(float(sc.app.get("poll_interval", 0.05)))
        run = client.beta.threads.runs.retrieve(run.id, thread_id=tid)
        obs.polls += 1
        obs.status = run.status


@_sync("vector_stores.manual_poll")
def _s_vector_stores_manual_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    upload = client.files.create(file=("notes.txt", b"streamtriage test document\n"), purpose="assistants")
    vs_api = _vector_stores(client)
    store = vs_api.create(name="sim-docs", file_ids=[upload.id], extra_headers=_fault_headers(sc))
    obs.status = store.status
    while store.status == "in_progress":
        if obs.polls >= int(sc.app.get("max_polls", DEFAULT_MAX_POLLS)):
            obs.gave_up = True
            break
        time.sleep(float(sc.app.get("poll_interval", 0.05)))
        store = vs_api.retrieve(store.id)
        obs.polls += 1
        obs.status = store.status


@_sync("vector_stores.files.create_and_poll", "vector_stores.file_batches.create_and_poll")
def _s_vector_stores_files_create_and_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    call = sc.call
    vs_api = _vector_stores(client)
    store = vs_api.create(name="sim-docs", extra_headers=_fault_headers(sc))
    upload = client.files.create(file=("notes.txt", b"streamtriage test document\n"), purpose="assistants")
    interval = int(sc.app.get("poll_interval_ms", 50))
    if call == "vector_stores.files.create_and_poll":
        result = _sync_with_deadline(sc, obs, lambda: vs_api.files.create_and_poll(
            file_id=upload.id, vector_store_id=store.id, poll_interval_ms=interval))
    else:
        result = _sync_with_deadline(sc, obs, lambda: vs_api.file_batches.create_and_poll(
            vector_store_id=store.id, file_ids=[upload.id], poll_interval_ms=interval))
    if result is not None:
        obs.status = result.status


def _sync_with_deadline(sc: Scenario, obs: Observation, fn: Callable[[], Any]) -> Any:
    """Run a never-ending SDK poll loop with a wall-clock deadline (PollDeadline raised into this thread)."""
    seconds = float(sc.app.get("deadline", DEFAULT_DEADLINE))
    target = threading.get_ident()
    lock = threading.Lock()
    finished = threading.Event()
    fired = threading.Event()

    def timer() -> None:
        if finished.wait(seconds):
            return
        with lock:
            if finished.is_set():
                return
            fired.set()
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(PollDeadline))

    thread = threading.Thread(target=timer, name="streamtriage-deadline", daemon=True)
    thread.start()
    delivered = False
    result = None
    try:
        try:
            result = fn()
        finally:
            with lock:
                finished.set()
    except PollDeadline:
        delivered = True
    if fired.is_set() and not delivered:  # injected just as fn returned: absorb it here
        for _ in range(200):
            try:
                time.sleep(0.001)
            except PollDeadline:
                break
    thread.join()
    if fired.is_set():
        obs.gave_up = True
        return None
    return result


# --- async drivers --------------------------------------------------------------------------------

async def _async_thread(client: Any) -> str:
    thread = await client.beta.threads.create()
    await client.beta.threads.messages.create(thread.id, role="user", content="What is the weather in Paris?")
    return thread.id


async def _async_run_stream(client: Any, sc: Scenario, rec: _Rec, tid: str) -> Any:
    async with client.beta.threads.runs.stream(thread_id=tid, assistant_id=ASSISTANT_ID, model=sc.model,
                                               event_handler=_async_handler(rec.obs), **dict(sc.request)) as stream:
        async for event in stream:
            rec.run_event(event)
        run = await stream.get_final_run()
    rec.obs.status = run.status
    return run


async def _async_with_deadline(sc: Scenario, obs: Observation, make: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await asyncio.wait_for(make(), float(sc.app.get("deadline", DEFAULT_DEADLINE)))
    except asyncio.TimeoutError:
        obs.gave_up = True
        return None


@_async("chat.create")
async def _a_chat_create(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    completion = await client.chat.completions.create(model=sc.model, messages=MESSAGES, **req)
    obs.text = completion.choices[0].message.content or ""
    obs.finish_reason = completion.choices[0].finish_reason


@_async(
    "chat.create_stream", "chat.create_stream_break", "chat.create_stream_index0", "chat.create_stream_dict",
)
async def _a_chat_create_stream(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    call = sc.call
    stream = await client.chat.completions.create(model=sc.model, messages=MESSAGES, stream=True, **req)
    if call == "chat.create_stream_break":
        async for chunk in stream:
            rec.chat_chunk(chunk)
            if obs.event_count >= int(sc.app.get("break_after", 5)):
                break
        await stream.close()
        return
    async for chunk in stream:
        rec.chat_chunk(chunk)
        if call == "chat.create_stream_index0":
            _ = chunk.choices[0].delta.content
        elif call == "chat.create_stream_dict":
            _ = chunk.to_dict()["choices"][0]["finish_reason"]


@_async("chat.stream_helper")
async def _a_chat_stream_helper(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    async with _chat_stream_helper(client).stream(model=sc.model, messages=MESSAGES, **req) as stream:
        async for event in stream:
            if event.type == "chunk":
                rec.chat_chunk(event.chunk)
        final = await stream.get_final_completion()
    obs.finish_reason = final.choices[0].finish_reason


@_async("responses.create_stream")
async def _a_responses_create_stream(sc: Scenario, client: Any, rec: _Rec) -> None:
    req = dict(sc.request)
    async for event in await client.responses.create(model=sc.model, input="Say something about foxes.",
                                                     stream=True, **req):
        rec.response_event(event)


@_async("responses.stream_helper")
async def _a_responses_stream_helper(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    async with client.responses.stream(model=sc.model, input="Say something about foxes.", **req) as stream:
        async for event in stream:
            rec.response_event(event)
        final = await stream.get_final_response()
    obs.status = final.status


@_async("responses.background_resume")
async def _a_responses_background_resume(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    rid, last = None, None
    try:
        async for event in await client.responses.create(model=sc.model, input="Write a long report.",
                                                         background=True, stream=True, **req):
            rec.response_event(event)
            last = event.sequence_number
            if event.type == "response.created":
                rid = event.response.id
    except Exception as exc:
        if rid is None:
            raise
        obs.callbacks.append(f"resume_after:{qualname(exc)}")
        async with client.responses.stream(response_id=rid, starting_after=last) as stream:
            async for event in stream:
                rec.response_event(event)
            obs.status = (await stream.get_final_response()).status


@_async("responses.background_poll")
async def _a_responses_background_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    resp = await client.responses.create(model=sc.model, input="Write a long report.", background=True, **req)
    obs.status = resp.status
    while resp.status in ("queued", "in_progress"):
        if obs.polls >= int(sc.app.get("max_polls", DEFAULT_MAX_POLLS)):
            obs.gave_up = True
            break
        await asyncio.sleep(float(sc.app.get("poll_interval", 0.05)))
        resp = await client.responses.retrieve(resp.id)
        obs.polls += 1
        obs.status = resp.status
    if resp.status == "completed":
        obs.text = resp.output_text


@_async("runs.stream_handler")
async def _a_runs_stream_handler(sc: Scenario, client: Any, rec: _Rec) -> None:
    await _async_run_stream(client, sc, rec, await _async_thread(client))


@_async("runs.create_stream")
async def _a_runs_create_stream(sc: Scenario, client: Any, rec: _Rec) -> None:
    req = dict(sc.request)
    tid = await _async_thread(client)
    async for event in await client.beta.threads.runs.create(thread_id=tid, assistant_id=ASSISTANT_ID,
                                                             model=sc.model, stream=True, **req):
        rec.run_event(event)


@_async("runs.submit_tool_outputs_stream", "runs.submit_tool_outputs_late")
async def _a_runs_submit_tool_outputs_stream(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    call = sc.call
    tid = await _async_thread(client)
    run = await _async_run_stream(client, sc, rec, tid)
    if call == "runs.submit_tool_outputs_late":
        await asyncio.sleep(float(sc.app.get("tool_seconds", 0.05)))
        run = await client.beta.threads.runs.submit_tool_outputs(thread_id=tid, run_id=run.id,
                                                                 tool_outputs=_tool_outputs(run))
        obs.status = run.status
        return
    obs.events.clear()
    obs.text = ""
    async with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=tid, run_id=run.id, tool_outputs=_tool_outputs(run),
            event_handler=_async_handler(obs)) as stream:
        async for event in stream:
            rec.run_event(event)
        obs.status = (await stream.get_final_run()).status


@_async("runs.create_and_poll")
async def _a_runs_create_and_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    tid = await _async_thread(client)
    run = await _async_with_deadline(sc, obs, lambda: client.beta.threads.runs.create_and_poll(
        thread_id=tid, assistant_id=ASSISTANT_ID, model=sc.model,
        poll_interval_ms=int(sc.app.get("poll_interval_ms", 50)), **req))
    if run is not None:
        obs.status = run.status


@_async("runs.submit_tool_outputs_and_poll")
async def _a_runs_submit_tool_outputs_and_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    tid = await _async_thread(client)
    interval = int(sc.app.get("poll_interval_ms", 50))
    run = await client.beta.threads.runs.create_and_poll(thread_id=tid, assistant_id=ASSISTANT_ID,
                                                         model=sc.model, poll_interval_ms=interval, **req)
    obs.status = run.status
    if run.status == "requires_action":
        run = await client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=tid, run_id=run.id, tool_outputs=_tool_outputs(run), poll_interval_ms=interval)
        obs.status = run.status


@_async("runs.manual_poll")
async def _a_runs_manual_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    req = dict(sc.request)
    tid = await _async_thread(client)
    run = await client.beta.threads.runs.create(thread_id=tid, assistant_id=ASSISTANT_ID, model=sc.model, **req)
    obs.status = run.status
    while run.status in ("queued", "in_progress", "cancelling"):
        if obs.polls >= int(sc.app.get("max_polls", DEFAULT_MAX_POLLS)):
            obs.gave_up = True
            break
        await asyncio.sleep(float(sc.app.get("poll_interval", 0.05)))
        run = await client.beta.threads.runs.retrieve(run.id, thread_id=tid)
        obs.polls += 1
        obs.status = run.status


@_async("vector_stores.manual_poll")
async def _a_vector_stores_manual_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    upload = await client.files.create(file=("notes.txt", b"streamtriage test document\n"),
                                       purpose="assistants")
    vs_api = _vector_stores(client)
    store = await vs_api.create(name="sim-docs", file_ids=[upload.id], extra_headers=_fault_headers(sc))
    obs.status = store.status
    while store.status == "in_progress":
        if obs.polls >= int(sc.app.get("max_polls", DEFAULT_MAX_POLLS)):
            obs.gave_up = True
            break
        await asyncio.sleep(float(sc.app.get("poll_interval", 0.05)))
        store = await vs_api.retrieve(store.id)
        obs.polls += 1
        obs.status = store.status


@_async("vector_stores.files.create_and_poll", "vector_stores.file_batches.create_and_poll")
async def _a_vector_stores_files_create_and_poll(sc: Scenario, client: Any, rec: _Rec) -> None:
    obs = rec.obs
    call = sc.call
    vs_api = _vector_stores(client)
    store = await vs_api.create(name="sim-docs", extra_headers=_fault_headers(sc))
    upload = await client.files.create(file=("notes.txt", b"streamtriage test document\n"),
                                       purpose="assistants")
    interval = int(sc.app.get("poll_interval_ms", 50))
    if call == "vector_stores.files.create_and_poll":
        result = await _async_with_deadline(sc, obs, lambda: vs_api.files.create_and_poll(
            file_id=upload.id, vector_store_id=store.id, poll_interval_ms=interval))
    else:
        result = await _async_with_deadline(sc, obs, lambda: vs_api.file_batches.create_and_poll(
            vector_store_id=store.id, file_ids=[upload.id], poll_interval_ms=interval))
    if result is not None:
        obs.status = result.status


assert _SYNC.keys() == _ASYNC.keys(), "every call needs a sync and an async driver"
DRIVERS: dict[str, Driver] = {call: Driver(_SYNC[call], _ASYNC[call]) for call in _SYNC}


def _anthropic_rows() -> None:
    """The Anthropic Messages rows (``anthropic_drivers`` imports this module's Driver and helpers)."""
    from . import anthropic_drivers

    DRIVERS.update(anthropic_drivers.DRIVERS)


_anthropic_rows()


def driver(call: str) -> Driver:
    """The table row of ``call`` (ValueError for an unknown call)."""
    try:
        return DRIVERS[call]
    except KeyError:
        raise ValueError(f"unknown call {call!r}") from None


_PRIMARY = (
    ("chat.", "POST", re.compile(r"/v1/chat/completions")),
    ("responses.", "POST", re.compile(r"/v1/responses")),
    ("runs.", "POST", re.compile(r"/v1/threads/[^/]+/runs")),
    ("vector_stores.files.", "POST", re.compile(r"/v1/vector_stores/[^/]+/files")),
    ("vector_stores.file_batches.", "POST", re.compile(r"/v1/vector_stores/[^/]+/file_batches")),
    ("vector_stores.manual_poll", "POST", re.compile(r"/v1/vector_stores")),
    ("anthropic.", "POST", re.compile(r"/v1/messages")),
)


def primary_requests(log: list[dict[str, Any]], scenario: Scenario) -> list[dict[str, Any]]:
    """The simulator log entries of the scenario's main SDK call (its attempts), without setup calls."""
    for prefix, method, pattern in _PRIMARY:
        if scenario.call.startswith(prefix):
            return [e for e in log if e["method"] == method and pattern.fullmatch(e["path"])]
    return []


# --- entry point ----------------------------------------------------------------------------------

def make_client(scenario: Scenario, base_url: str, mode: str = "sync", run_id: str | None = None,
                **client_kw: Any) -> Any:
    """A real client configured as the scenario says (timeout, retries), tagged with the run id."""
    headers = {RUN_HEADER: run_id or uuid.uuid4().hex[:12]}
    headers.update(client_kw.pop("default_headers", None) or {})
    if driver(scenario.call).sdk == "anthropic":
        from .anthropic_drivers import make_client as anthropic_client

        return anthropic_client(scenario, base_url, mode, headers, **client_kw)
    kw: dict[str, Any] = {"api_key": "sk-sim", "base_url": base_url, "timeout": scenario.timeout,
                          "max_retries": scenario.max_retries, "default_headers": headers}
    kw.update(client_kw)
    return (openai.OpenAI if mode == "sync" else openai.AsyncOpenAI)(**kw)


def sdk_version(scenario: Scenario) -> str:
    """Version of the SDK the scenario's call drives."""
    if driver(scenario.call).sdk == "anthropic":
        from .anthropic_drivers import VERSION

        return VERSION
    return str(openai.__version__)


def run_scenario(scenario: Scenario, base_url: str, mode: str = "sync", **client_kw: Any) -> Observation:
    """Run one scenario with the real SDK and return what the app saw. Never raises for SDK/app errors."""
    if mode not in ("sync", "async"):
        raise ValueError(f"mode must be 'sync' or 'async', not {mode!r}")
    run_id = uuid.uuid4().hex[:12]
    obs = Observation(scenario.name, scenario.call, mode, sdk_version(scenario), run_id)
    rec = _Rec(obs)
    start = time.perf_counter()
    client = make_client(scenario, base_url, mode, run_id, **client_kw)
    try:
        if mode == "sync":
            try:
                driver(scenario.call).sync(scenario, client, rec)
            except Exception as exc:  # the app's view of the failure is the point
                obs.exception = ExceptionInfo.of(exc)
            finally:
                client.close()
        else:
            asyncio.run(_async_main(scenario, client, rec))
    finally:
        obs.duration_s = round(time.perf_counter() - start, 4)
    return obs


def _quiet_asyncgen_close(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop the shutdown noise of streams an app abandoned on an exception; report anything else."""
    if "asynchronous generator" in str(context.get("message", "")):
        return
    loop.default_exception_handler(context)


async def _async_main(scenario: Scenario, client: Any, rec: _Rec) -> None:
    asyncio.get_running_loop().set_exception_handler(_quiet_asyncgen_close)
    try:
        await driver(scenario.call).async_(scenario, client, rec)
    except Exception as exc:
        rec.obs.exception = ExceptionInfo.of(exc)
    finally:
        await client.close()


async def arun_scenario(scenario: Scenario, base_url: str, **client_kw: Any) -> Observation:
    """Async-mode ``run_scenario`` for callers already inside an event loop."""
    run_id = uuid.uuid4().hex[:12]
    obs = Observation(scenario.name, scenario.call, "async", sdk_version(scenario), run_id)
    start = time.perf_counter()
    client = make_client(scenario, base_url, "async", run_id, **client_kw)
    try:
        await _async_main(scenario, client, _Rec(obs))
    finally:
        obs.duration_s = round(time.perf_counter() - start, 4)
    return obs
