"""The hook on OpenAI-compatible providers' real stream shapes (simulator ``provider=NAME``).

A chunk with content is a delta whatever else it carries (vLLM's usage on every chunk), and the
response id and model come from the first chunk that has them (Azure's first chunk has neither).
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

from streamtriage.simulator import fault_model, run_simulator

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with run_simulator() as sim:
        yield sim.base_url


def _stream(url: str, model: str, **kw) -> list:
    client = openai.OpenAI(base_url=url, api_key="test", max_retries=0)
    try:
        return list(client.chat.completions.create(model=model, messages=MSGS, stream=True, **kw))
    finally:
        client.close()


def _vllm(hooked, url: str, continuous: bool) -> tuple[list[int], dict]:
    hooked.clear()
    chunks = _stream(url, fault_model("healthy", provider="vllm", n=1000),
                     stream_options={"include_usage": True, "continuous_usage_stats": continuous})
    if continuous:  # the shape really carries usage on every chunk
        assert all(c.usage is not None for c in chunks)
    else:
        assert sum(c.usage is not None for c in chunks) == 1
    return [e.attributes["streamtriage.event.count"] for e in hooked.events()], dict(hooked.call().attributes)


@pytest.mark.parametrize("hooked", [{"flush_after_ms": 60_000}], indirect=True)
def test_continuous_usage_vllm_stream_is_coalesced_like_one_without(hooked, sim_url):
    plain_groups, plain = _vllm(hooked, sim_url, continuous=False)
    usage_groups, usage = _vllm(hooked, sim_url, continuous=True)
    assert len(usage_groups) == len(plain_groups), (usage_groups, plain_groups)
    assert usage_groups == plain_groups
    assert len(usage_groups) < 12  # coalesced: not one span per token
    for key in ("streamtriage.event.count", "streamtriage.delta.count", "streamtriage.delta.bytes",
                "gen_ai.usage.output_tokens"):
        assert usage[key] == plain[key], key
    assert usage["streamtriage.delta.count"] == 1001  # role chunk + 1,000 tokens, all content deltas
    assert usage["gen_ai.usage.output_tokens"] == 1000


def test_azure_call_span_carries_response_id_and_model(hooked, sim_url):
    chunks = _stream(sim_url, fault_model("healthy", provider="azure"))
    assert chunks[0].choices == [] and chunks[0].id == "" and chunks[0].model == ""  # Azure's filter chunk
    a = hooked.call().attributes
    assert a["gen_ai.response.id"] == chunks[1].id and a["gen_ai.response.id"].startswith("chatcmpl-")
    assert a["gen_ai.response.model"] == "gpt-4o-2024-11-20"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["streamtriage.delta.count"] == 6  # role chunk + 5 content chunks; the filter chunk is an event
    assert hooked.events()[0].attributes["streamtriage.event.count"] == 1


def test_azure_async_stream_too(hooked, sim_url):
    async def run() -> list[str]:
        client = openai.AsyncOpenAI(base_url=sim_url, api_key="test", max_retries=0)
        try:
            stream = await client.chat.completions.create(model=fault_model("content-filter", provider="azure"),
                                                          messages=MSGS, stream=True)
            return [c.id async for c in stream]
        finally:
            await client.close()

    ids = asyncio.run(run())
    a = hooked.call().attributes
    assert a["gen_ai.response.id"] == ids[-1] and a["gen_ai.response.model"] == "gpt-4o-2024-11-20"
    assert a["gen_ai.response.finish_reasons"] == ("content_filter",)


@pytest.mark.parametrize("provider,field", [("deepseek", "reasoning_content"), ("ollama", "reasoning")])
def test_reasoning_phase_counts_as_deltas(hooked, sim_url, provider, field):
    chunks = _stream(sim_url, fault_model("healthy", provider=provider, reasoning=4, n=5))
    reasoning = [c for c in chunks if c.choices and (c.choices[0].delta.model_extra or {}).get(field)]
    assert len(reasoning) == 4
    a = hooked.call().attributes
    role_chunk = 1 if provider == "deepseek" else 0
    assert a["streamtriage.delta.count"] == role_chunk + 4 + 5
    assert a["streamtriage.outcome"] == "completed" and a["gen_ai.response.finish_reasons"] == ("stop",)


def test_provider_stop_reason_is_recorded_as_sent(hooked, sim_url):
    _stream(sim_url, fault_model("finish", reason="insufficient_system_resource", provider="deepseek"))
    a = hooked.call().attributes
    assert a["streamtriage.outcome"] == "completed" and a["streamtriage.terminal.seen"] is True
    assert a["gen_ai.response.finish_reasons"] == ("insufficient_system_resource",)
