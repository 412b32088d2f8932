"""Drive the real ``anthropic`` SDK through an Anthropic scenario, as an app would: rows of the driver table.

Works with anthropic 0.x (httpx) and 2.x (httpx2). The app reads ``stop_reason`` as its finish reason;
``events`` are the stream event types its loop received (the helper's own ``text`` / ``input_json``
events, which repeat a raw delta, are left out); ``text_stream`` yields strings, counted as events.
"""
from __future__ import annotations

import asyncio
from typing import Any

import anthropic

from .drivers import Driver, Observation, _sync_with_deadline
from .scenarios import Scenario

MESSAGES = [{"role": "user", "content": "Say something about foxes."}]
MAX_TOKENS = 1024
VERSION = anthropic.__version__
HELPER_EVENTS = frozenset({"text", "input_json", "citation", "thinking", "signature"})


class _AppLoop:
    """Accumulates what the app's loop sees."""

    def __init__(self, obs: Observation) -> None:
        self.obs = obs

    def event(self, event: Any) -> None:
        etype = str(getattr(event, "type", None))
        if etype in HELPER_EVENTS:
            return  # the helper's own events repeat a raw one: the app counts stream events once
        self.obs.events.append(etype)
        if etype == "content_block_delta" and getattr(event.delta, "type", None) == "text_delta":
            self.obs.text += event.delta.text
        elif etype == "message_delta":
            self.obs.finish_reason = event.delta.stop_reason

    def text(self, text: str) -> None:
        self.obs.events.append("text")
        self.obs.text += text

    def final(self, message: Any) -> None:
        self.obs.finish_reason = message.stop_reason
        if not self.obs.text:
            self.obs.text = "".join(b.text for b in message.content if b.type == "text")


def _kwargs(sc: Scenario) -> dict[str, Any]:
    return {"model": sc.model, "messages": MESSAGES, "max_tokens": MAX_TOKENS, **dict(sc.request)}


def make_client(sc: Scenario, base_url: str, mode: str, headers: dict[str, str], **client_kw: Any) -> Any:
    """A real Anthropic client against the simulator (its base URL has no ``/v1``: the SDK adds it)."""
    kw: dict[str, Any] = {"api_key": "sk-ant-sim", "base_url": base_url.removesuffix("/v1"),
                          "max_retries": sc.max_retries, "default_headers": headers}
    if not sc.app.get("default_timeout"):  # the 10-minute rule only applies on the default timeout
        kw["timeout"] = sc.timeout
    kw.update(client_kw)
    return (anthropic.Anthropic if mode == "sync" else anthropic.AsyncAnthropic)(**kw)


# --- sync ---------------------------------------------------------------------------------------

def _s_create(sc: Scenario, client: Any, rec: Any) -> None:
    _AppLoop(rec.obs).final(client.messages.create(**_kwargs(sc)))


def _s_create_stream(sc: Scenario, client: Any, rec: Any) -> None:
    r = _AppLoop(rec.obs)
    for event in client.messages.create(stream=True, **_kwargs(sc)):
        r.event(event)


def _s_stream_helper(sc: Scenario, client: Any, rec: Any) -> None:
    r = _AppLoop(rec.obs)
    with client.messages.stream(**_kwargs(sc)) as stream:
        for event in stream:
            r.event(event)
        r.final(stream.get_final_message())


def _s_text_stream(sc: Scenario, client: Any, rec: Any) -> None:
    r = _AppLoop(rec.obs)
    with client.messages.stream(**_kwargs(sc)) as stream:
        for text in stream.text_stream:
            r.text(text)
        stream.until_done()
        r.final(stream.get_final_message())


def _s_stream_deadline(sc: Scenario, client: Any, rec: Any) -> None:
    """A raw stream the app bounds with its own wall-clock deadline (its read timeout never fires on pings)."""
    r = _AppLoop(rec.obs)

    def consume() -> None:
        with client.messages.stream(**_kwargs(sc)) as stream:
            for event in stream:
                r.event(event)

    _sync_with_deadline(sc, rec.obs, consume)


# --- async --------------------------------------------------------------------------------------

async def _a_create(sc: Scenario, client: Any, rec: Any) -> None:
    _AppLoop(rec.obs).final(await client.messages.create(**_kwargs(sc)))


async def _a_create_stream(sc: Scenario, client: Any, rec: Any) -> None:
    r = _AppLoop(rec.obs)
    async for event in await client.messages.create(stream=True, **_kwargs(sc)):
        r.event(event)


async def _a_stream_helper(sc: Scenario, client: Any, rec: Any) -> None:
    r = _AppLoop(rec.obs)
    async with client.messages.stream(**_kwargs(sc)) as stream:
        async for event in stream:
            r.event(event)
        r.final(await stream.get_final_message())


async def _a_text_stream(sc: Scenario, client: Any, rec: Any) -> None:
    r = _AppLoop(rec.obs)
    async with client.messages.stream(**_kwargs(sc)) as stream:
        async for text in stream.text_stream:
            r.text(text)
        await stream.until_done()
        r.final(await stream.get_final_message())


async def _a_stream_deadline(sc: Scenario, client: Any, rec: Any) -> None:
    r = _AppLoop(rec.obs)

    async def consume() -> None:
        async with client.messages.stream(**_kwargs(sc)) as stream:
            async for event in stream:
                r.event(event)

    try:
        await asyncio.wait_for(consume(), float(sc.app.get("deadline", 1.0)))
    except asyncio.TimeoutError:
        rec.obs.gave_up = True


DRIVERS: dict[str, Driver] = {
    "anthropic.create": Driver(_s_create, _a_create, "anthropic"),
    "anthropic.create_stream": Driver(_s_create_stream, _a_create_stream, "anthropic"),
    "anthropic.stream_helper": Driver(_s_stream_helper, _a_stream_helper, "anthropic"),
    "anthropic.text_stream": Driver(_s_text_stream, _a_text_stream, "anthropic"),
    "anthropic.stream_deadline": Driver(_s_stream_deadline, _a_stream_deadline, "anthropic"),
}
