"""Scenarios on OpenAI-compatible providers' own stream shapes (``simulator/provider_shapes.py``).

Part of the one catalogue: ``scenarios.SCENARIOS`` includes them, so the simulator and hook tests, the
demo and the end-to-end accuracy run cover every shape. Each description names where the shape comes
from. Healthy shapes must get no incident; a provider's own abnormal stop gets an incident naming it.
All names start with ``provider-`` (``pytest -k provider``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .scenarios import AppView, Scenario


STREAM = "chat.create_stream"
BOTH_USAGE = {"stream_options": {"include_usage": True, "continuous_usage_stats": True}}


def provider_scenarios() -> tuple[Scenario, ...]:
    """The provider scenarios; built when ``scenarios`` has defined what they are made of (it includes them)."""
    from .scenarios import CHAT, INC, LENGTH, PEER, TRUNC, AppView, S, _transport

    def _events(n: int) -> dict[str, AppView]:
        view = AppView(events=n)
        return {"v3": view, "legacy": view}

    def _in_band(n: int) -> dict[str, AppView]:
        view = AppView(exception="openai.APIError", events=n)
        return {"v3": view, "legacy": view}

    def P(name: str, description: str, fault: str, provider: str, *, params: dict[str, Any] | None = None,
          **kw: Any) -> Scenario:
        """A chat stream scenario in ``provider``'s shape."""
        return S(name, description, CHAT, kw.pop("call", STREAM), fault,
                 params={**(params or {}), "provider": provider}, **kw)

    return (
        # ---------------------------------------------------------------- healthy shapes: no incident
        P("provider-azure-healthy", "Azure OpenAI: a first chunk with choices [], id \"\", model \"\" and "
          "prompt_filter_results, then content_filter_results on every choice (Azure OpenAI content filtering docs; "
          "learn.microsoft.com Q&A 1533887).", "healthy", "azure", healthy=True, expected_finish_reason="stop",
          views=_events(8)),
        P("provider-vllm-healthy", "vLLM OpenAI server stream: stop_reason on each choice (vllm serving_chat.py).",
          "healthy", "vllm", healthy=True, expected_finish_reason="stop", views=_events(7)),
        P("provider-vllm-continuous-usage", "vLLM with stream_options.continuous_usage_stats: usage on every chunk, "
          "then the usage chunk (vllm serving_chat.py, include_continuous_usage).", "healthy", "vllm",
          request=BOTH_USAGE, healthy=True, expected_finish_reason="stop", views=_events(8)),
        P("provider-ollama-reasoning", "Ollama's OpenAI compatibility stream (openai/openai.go): fp_ollama, the role on "
          "every delta, 3 delta.reasoning chunks before the content.", "healthy", "ollama", params={"reasoning": 3},
          healthy=True, expected_finish_reason="stop", views=_events(9)),
        P("provider-deepseek-reasoner", "DeepSeek: `: keep-alive` comments while waiting, a reasoning_content phase, "
          "then the content (api-docs.deepseek.com: rate limit; reasoning model).", "healthy", "deepseek",
          healthy=True, expected_finish_reason="stop", views=_events(10)),
        P("provider-openrouter-healthy", "OpenRouter: `: OPENROUTER PROCESSING` comments, gen- ids, provider and "
          "native_finish_reason (openrouter.ai/docs, streaming).", "healthy", "openrouter", healthy=True,
          expected_finish_reason="stop", views=_events(7)),
        P("provider-together-eos", "Together AI: an older model ends with finish_reason eos, a plain end of sequence on "
          "the knowledge base's allowlist (openai/openai-dotnet#267).", "finish", "together", params={"reason": "eos"},
          healthy=True, expected_finish_reason="eos", views=_events(7)),
        P("provider-groq-healthy", "Groq: x_groq.id on the first chunk, x_groq.usage on the last (Groq API reference).",
          "healthy", "groq", healthy=True, expected_finish_reason="stop", views=_events(7)),
        P("provider-litellm-filled-stop", "LiteLLM proxy look-alike: the upstream sent no finish_reason and the proxy "
          "filled \"stop\" (BerriAI/litellm#25825); on the wire it is a healthy stream, so no incident - see "
          "llm/litellm-filled-finish-reason-stop for what to do.", "finish-null", "litellm", healthy=True,
          expected_finish_reason="stop", views=_events(7)),
        # ---------------------------------------------------------------- the providers' own abnormal stops
        P("provider-azure-content-filter", "Azure OpenAI content-filter stop: finish_reason content_filter with "
          "filtered: true in content_filter_results (Azure OpenAI content filtering docs).", "content-filter",
          "azure", expected_kb_id="llm/content-filter-stop", expected_category="content_filter",
          expected_finish_reason="content_filter", views=_events(8)),
        P("provider-deepseek-insufficient-resource", "DeepSeek interrupts the answer for lack of capacity: "
          "finish_reason insufficient_system_resource, then [DONE] (DeepSeek API reference, finish_reason).",
          "finish", "deepseek", params={"reason": "insufficient_system_resource"},
          expected_kb_id="llm/deepseek-insufficient-system-resource", expected_category="server_error",
          expected_finish_reason="insufficient_system_resource", views=_events(10)),
        P("provider-vllm-unknown-finish", "vLLM ends a choice with finish_reason abort, a value the product does not "
          "know: an incident naming it (vllm FinishReason.ABORT).", "finish", "vllm", params={"reason": "abort"},
          expected_kb_id="llm/unknown-finish-reason", expected_category=TRUNC, expected_finish_reason="abort",
          views=_events(7)),
        # ---------------------------------------------------------------- transport and budget faults on the shapes
    P("provider-deepseek-cut-in-reasoning", "DeepSeek stream cut (FIN) during the reasoning_content phase, after "
      "the keep-alive comments, the role chunk and 3 reasoning chunks.", "cut", "deepseek", params={"after": 6},
      expected_kb_id=PEER, expected_category=INC, expected_outcome="transport_error", expected_terminal_seen=False,
      views=_transport("RemoteProtocolError", 4)),
    P("provider-vllm-continuous-usage-length", "vLLM with continuous usage stopped by max_tokens: finish_reason "
      "length, usage.completion_tokens == max_tokens on the last chunks.", "length", "vllm",
      request={"max_tokens": 16, **BOTH_USAGE}, expected_kb_id=LENGTH, expected_category=TRUNC,
      expected_finish_reason="length", views=_events(8)),
    P("provider-vllm-engine-error", "vLLM's in-band error after 3 chunks: data: {\"error\": {..., \"code\": 500}} "
          "then data: [DONE] (vllm create_streaming_error_response; EngineDeadError's message).", "error-event",
          "vllm", params={"after": 3}, expected_kb_id="llm/self-hosted-engine-crash-mid-stream", expected_category=INC,
          expected_outcome="error_event", expected_terminal_seen=False, views=_in_band(3)),
        P("provider-openrouter-error-chunk", "OpenRouter's mid-stream error: one chunk with a top-level error and "
          "finish_reason \"error\" after 3 chunks, then the stream ends (openrouter.ai/docs, errors during "
          "streaming).", "error-event", "openrouter", params={"after": 5},
          expected_kb_id="llm/openrouter-mid-stream-error", expected_category=INC, expected_outcome="error_event",
          expected_terminal_seen=False, views=_in_band(3)),
    )
