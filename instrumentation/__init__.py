"""OpenTelemetry hooks for the OpenAI and Anthropic Python SDKs: a call span per request, a span per stream event
(deltas coalesced), a span per poll, and a precise outcome for every call.

``OpenAIInstrumentor`` and ``AnthropicInstrumentor`` are standard ``BaseInstrumentor``s (also
registered as the ``streamtriage_openai`` / ``streamtriage_anthropic`` entry points for
``opentelemetry-instrument``); most apps call
``streamtriage.instrument()`` instead, which also sets up the exporter. Attribute names: see
``docs/span-contract.md``.
"""
from ._safety import reset_stats, stats
from .anthropic_instrumentor import AnthropicInstrumentor
from .instrumentor import SCOPE, OpenAIInstrumentor

__all__ = ["AnthropicInstrumentor", "OpenAIInstrumentor", "SCOPE", "stats", "reset_stats"]
