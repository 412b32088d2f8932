"""OpenTelemetry hooks for the OpenAI Python SDK: a call span per request, a span per stream event
(deltas coalesced), a span per poll, and a precise outcome for every call.

``OpenAIInstrumentor`` is a standard ``BaseInstrumentor`` (also registered as the
``streamtriage_openai`` entry point for ``opentelemetry-instrument``); most apps call
``streamtriage.instrument()`` instead, which also sets up the exporter. Attribute names: see
``docs/span-contract.md``.
"""
from ._safety import reset_stats, stats
from .instrumentor import SCOPE, OpenAIInstrumentor

__all__ = ["OpenAIInstrumentor", "SCOPE", "stats", "reset_stats"]
