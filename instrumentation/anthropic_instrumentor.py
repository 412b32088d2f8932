"""``AnthropicInstrumentor``: the standard OpenTelemetry entry point for the Anthropic Messages hook.

Registered as the ``streamtriage_anthropic`` entry point and installed by ``streamtriage.instrument()``
next to the OpenAI hook. It declares no dependency: with no ``anthropic`` installed, or not yet
imported, it only registers an import hook, so the base install stays OpenTelemetry-only and an app
that never imports ``anthropic`` is never touched.
"""
from __future__ import annotations

from collections.abc import Collection

from . import anthropic_patches
from .calls import Config
from .instrumentor import SdkHookInstrumentor

SCOPE = "streamtriage.instrumentation.anthropic"


class AnthropicInstrumentor(SdkHookInstrumentor):
    """Wraps the anthropic SDK (sync and async, 0.x on httpx and 1.x/2.x on httpx2) once the app imports it.

    Same options as ``OpenAIInstrumentor``: ``tracer_provider``, ``coalesce_deltas``, ``flush_after_ms``,
    ``flush_after_events``, ``capture_content``.
    """

    SCOPE = SCOPE

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # patched lazily, only if the app imports anthropic

    # No static attributes: the SDK's are read when the app imports it.
    def _install(self, cfg: Config) -> None:
        anthropic_patches.install(cfg)

    def _remove(self) -> None:
        anthropic_patches.uninstall()
