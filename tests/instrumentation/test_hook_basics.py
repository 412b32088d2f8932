"""Hook behaviour on a tiny canned SSE server: outcomes, coalescing, cancellation, helpers, retries.

These run without the simulator so the hook's own mechanics are pinned down independently; the
catalogue-wide checks live in ``test_scenarios.py``.
"""
from __future__ import annotations

import asyncio
import gc

import openai
import pytest

from streamtriage.instrumentation import stats

MSGS = [{"role": "user", "content": "hi"}]


def client(url: str, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="test", max_retries=kw.pop("max_retries", 0), **kw)


def aclient(url: str, **kw) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url, api_key="test", max_retries=kw.pop("max_retries", 0), **kw)


def test_healthy_stream_is_completed_and_coalesced(hooked, mini_url):
    chunks = list(client(mini_url).chat.completions.create(model="mini-healthy", messages=MSGS, stream=True, max_tokens=40))
    call = hooked.call()
    a = call.attributes
    assert a["streamtriage.outcome"] == "completed"
    assert a["streamtriage.terminal.seen"] is True and a["streamtriage.terminal.event"] == "[DONE]"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["streamtriage.event.count"] == len(chunks) + 1  # + [DONE]
    assert a["streamtriage.delta.count"] == 40
    assert a["gen_ai.request.max_tokens"] == 40
    assert a["gen_ai.usage.output_tokens"] == 40
    assert a["streamtriage.delta.bytes"] == sum(len(c.choices[0].delta.content or "") for c in chunks if c.choices)
    assert len(a["streamtriage.request.fingerprint"]) == 16
    events = hooked.events()
    # first event alone, the 39 following deltas in one span, the finish chunk, the usage chunk, [DONE]
    assert [e.attributes["streamtriage.event.count"] for e in events] == [1, 39, 1, 1, 1]
    assert events[0].attributes["streamtriage.api"] == "chat.completions"
    assert events[2].attributes["streamtriage.finish_reason"] == "stop"
    assert events[-1].name == "[DONE]" and events[-1].attributes["streamtriage.terminal"] is True
    assert all(e.parent.span_id == call.context.span_id for e in events)
    assert str(call.status.status_code) == "StatusCode.UNSET"


@pytest.mark.parametrize("hooked", [{"coalesce_deltas": False}], indirect=True)
def test_one_span_per_delta_when_asked(hooked, mini_url):
    list(client(mini_url).chat.completions.create(model="mini-healthy", messages=MSGS, stream=True, max_tokens=7))
    assert [e.attributes["streamtriage.event.count"] for e in hooked.events()] == [1] * 10


@pytest.mark.parametrize("hooked", [{"flush_after_events": 4}], indirect=True)
def test_coalesced_group_flushes_at_event_limit(hooked, mini_url):
    list(client(mini_url).chat.completions.create(model="mini-healthy", messages=MSGS, stream=True, max_tokens=13))
    assert [e.attributes["streamtriage.event.count"] for e in hooked.events()][:4] == [1, 4, 4, 4]


@pytest.mark.parametrize("hooked", [{"flush_after_ms": 100}], indirect=True)
def test_stalled_stream_deltas_visible_before_the_stream_ends(hooked, mini_url):
    """A coalesced group is flushed by the background timer during a stall, not at the next event."""
    c = client(mini_url)
    stream = c.chat.completions.create(model="mini-healthy", messages=MSGS, stream=True, max_tokens=5, metadata={"stall": "0.6"})
    it = iter(stream)
    next(it), next(it)  # first event, then a delta that opens a group; the server stalls before the third
    import time

    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and len(hooked.kind("event")) < 2:
        time.sleep(0.02)
    assert len(hooked.kind("event")) == 2  # group of one delta flushed while the server stalls
    assert hooked.kind("call") == []  # the call is still open
    list(it)
    assert hooked.call().attributes["streamtriage.max_gap_ms"] >= 500


def test_clean_end_without_done_is_no_terminal(hooked, mini_url):
    list(client(mini_url).chat.completions.create(model="mini-nodone", messages=MSGS, stream=True))
    a = hooked.call().attributes
    assert a["streamtriage.outcome"] == "no_terminal"
    assert a["streamtriage.terminal.seen"] is False
    assert a["gen_ai.response.finish_reasons"] == ("stop",)


def test_cut_stream_is_transport_error_with_chain(hooked, mini_url):
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client(mini_url).chat.completions.create(model="mini-cut", messages=MSGS, stream=True):
            seen.append(chunk)
    a = hooked.call().attributes
    assert a["streamtriage.outcome"] == "transport_error"
    assert a["error.type"] == "openai.APIConnectionError"
    assert a["streamtriage.exception.chain"][:2] == ("openai.APIConnectionError", "httpx2.RemoteProtocolError")
    assert a["streamtriage.event.count"] == len(seen) == 3
    assert a["gen_ai.response.finish_reasons"] == ("",)


def test_close_after_break_is_cancelled_close(hooked, mini_url):
    s = client(mini_url).chat.completions.create(model="mini-healthy", messages=MSGS, stream=True)
    for _ in s:
        break
    assert hooked.kind("call") == []
    s.close()
    a = hooked.call().attributes
    assert (a["streamtriage.outcome"], a["streamtriage.cancel.reason"]) == ("cancelled", "close")


def test_garbage_collected_stream_is_cancelled_gc(hooked, mini_url):
    s = client(mini_url).chat.completions.create(model="mini-healthy", messages=MSGS, stream=True)
    next(s)
    del s
    gc.collect()
    a = hooked.call().attributes
    assert (a["streamtriage.outcome"], a["streamtriage.cancel.reason"]) == ("cancelled", "gc")
    assert stats()["streams_abandoned"] >= 1


def test_app_exception_in_with_block_is_app_error(hooked, mini_url):
    with pytest.raises(KeyError):
        with client(mini_url).chat.completions.create(model="mini-healthy", messages=MSGS, stream=True) as s:
            for _chunk in s:
                raise KeyError("finish_reason")
    a = hooked.call().attributes
    assert a["streamtriage.outcome"] == "app_error"
    assert a["streamtriage.app_exception.type"] == "builtins.KeyError"
    assert a["streamtriage.cancel.reason"] == "context_exit"


def test_with_block_left_early_is_context_exit(hooked, mini_url):
    with client(mini_url).chat.completions.create(model="mini-healthy", messages=MSGS, stream=True) as s:
        next(s)
    a = hooked.call().attributes
    assert (a["streamtriage.outcome"], a["streamtriage.cancel.reason"]) == ("cancelled", "context_exit")


def test_stream_helper_counts_events_once(hooked, mini_url):
    with client(mini_url).chat.completions.stream(model="mini-healthy", messages=MSGS, max_tokens=6) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    assert final.choices[0].finish_reason == "stop"
    a = hooked.call().attributes
    assert a["streamtriage.helper"] == "chat.completions.stream"
    assert a["streamtriage.outcome"] == "completed"
    assert a["streamtriage.event.count"] == 6 + 3  # deltas + finish chunk + usage chunk + [DONE], once
    assert sum(e.attributes["streamtriage.event.count"] for e in hooked.events()) == 9


def test_plain_request_and_http_error_with_retries(hooked, mini_url):
    c = client(mini_url, max_retries=2)
    assert c.chat.completions.create(model="mini-healthy", messages=MSGS).choices[0].finish_reason == "stop"
    a = hooked.call().attributes
    assert (a["streamtriage.call.mode"], a["streamtriage.outcome"]) == ("request", "completed")
    hooked.clear()
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="mini-429", messages=MSGS)
    a = hooked.call().attributes
    assert a["streamtriage.outcome"] == "http_error"
    assert a["http.response.status_code"] == 429
    assert a["streamtriage.retry.count"] == 2
    assert a["streamtriage.error.code"] == "rate_limit_exceeded"
    assert a["streamtriage.retry.after_ms"] == 10.0


def test_async_stream_and_task_cancellation(hooked, mini_url):
    async def main() -> None:
        c = aclient(mini_url)
        s = await c.chat.completions.create(model="mini-healthy", messages=MSGS, stream=True, max_tokens=4)
        n = 0
        async for _ in s:
            n += 1
        assert n == 6
        done = hooked.call().attributes
        assert done["streamtriage.outcome"] == "completed"
        hooked.clear()

        async def consume() -> None:
            s2 = await c.chat.completions.create(model="mini-healthy", messages=MSGS, stream=True, max_tokens=4, metadata={"stall": "2"})
            async for _ in s2:
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    a = hooked.call().attributes
    assert (a["streamtriage.outcome"], a["streamtriage.cancel.reason"]) == ("cancelled", "task_cancelled")


def test_uninstrument_restores_the_sdk(mini_url):
    from openai._streaming import Stream

    from streamtriage.instrumentation import OpenAIInstrumentor

    before = Stream.__dict__["__stream__"]
    inst = OpenAIInstrumentor()
    inst.instrument()
    assert Stream.__dict__["__stream__"] is not before
    inst.uninstrument()
    assert Stream.__dict__["__stream__"] is before


def test_with_raw_response_stream_is_observed_after_parse(hooked, mini_url):
    raw = client(mini_url).chat.completions.with_raw_response.create(model="mini-healthy", messages=MSGS, stream=True, max_tokens=3)
    assert hooked.kind("call") == []  # the stream has not been read yet
    chunks = list(raw.parse())
    a = hooked.call().attributes
    assert a["streamtriage.outcome"] == "completed"
    assert a["streamtriage.event.count"] == len(chunks) + 1


def test_capture_content_is_off_by_default_and_opt_in(mini_url):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from streamtriage.instrumentation import OpenAIInstrumentor

    for capture in (False, True):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        inst = OpenAIInstrumentor()
        inst.instrument(tracer_provider=provider, capture_content=capture)
        try:
            list(client(mini_url).chat.completions.create(model="mini-healthy", messages=MSGS, stream=True, max_tokens=3))
        finally:
            inst.uninstrument()
        spans = exporter.get_finished_spans()
        text = repr([dict(s.attributes) for s in spans])
        assert ("tok0" in text) is capture and ("hi" in repr([s.attributes.get("gen_ai.input.messages") for s in spans])) is capture
        call = [s for s in spans if s.attributes["streamtriage.span"] == "call"][0]
        if capture:
            assert "tok0 tok1 tok2" in call.attributes["gen_ai.output.messages"]


def test_async_abandoned_stream_is_cancelled_gc(hooked, mini_url):
    async def main() -> None:
        s = await aclient(mini_url).chat.completions.create(model="mini-healthy", messages=MSGS, stream=True)
        await s.__anext__()

    asyncio.run(main())
    gc.collect()
    a = hooked.call().attributes
    assert a["streamtriage.outcome"] == "cancelled"
    assert a["streamtriage.cancel.reason"] in ("gc", "generator_exit")
