"""``AnthropicInstrumentor``: the standard OpenTelemetry entry point for the Anthropic Messages hook.

Registered as the ``streamtriage_anthropic`` entry point and installed by ``streamtriage.instrument()``
next to the OpenAI hook. It declares no dependency: with no ``anthropic`` installed, or not yet
imported, it only registers an import hook, so the base install stays OpenTelemetry-only and an app
that never imports ``anthropic`` is never touched.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from . import anthropic_patches
from .flusher import Flusher
from .instrumentor import make_config

SCOPE = "streamtriage.instrumentation.anthropic"


class AnthropicInstrumentor(BaseInstrumentor):
    """Wraps the anthropic SDK (sync and async, 0.x on httpx and 1.x/2.x on httpx2) once the app imports it.

    Same options as ``OpenAIInstrumentor``: ``tracer_provider``, ``coalesce_deltas``, ``flush_after_ms``,
    ``flush_after_events``, ``capture_content``.
    """

    _flusher: Flusher | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # patched lazily, only if the app imports anthropic

    def _instrument(self, **kwargs: Any) -> None:
        cfg = make_config(SCOPE, {}, kwargs)  # SDK attributes are read when the SDK is imported
        AnthropicInstrumentor._flusher = cfg.flusher
        anthropic_patches.install(cfg)

    def _uninstrument(self, **kwargs: Any) -> None:
        anthropic_patches.uninstall()
        if AnthropicInstrumentor._flusher is not None:
            AnthropicInstrumentor._flusher.stop()
            AnthropicInstrumentor._flusher = None
