"""``OpenAIInstrumentor``: the standard OpenTelemetry entry point for the hooks."""
from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]  # the installed package hides it from mypy

from . import patches
from .calls import Config
from .flusher import Flusher
from .polls import Registry

SCOPE = "streamtriage.instrumentation.openai"


def _version() -> str:
    try:
        from streamtriage import __version__

        return __version__
    except Exception:  # pragma: no cover
        return "0"


def _env_bool(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    if v is None:
        return default
    return v.strip().lower() in ("1", "true", "yes", "on")


def make_config(scope: str, static_attributes: dict[str, Any], kwargs: dict[str, Any]) -> Config:
    """The hooks' shared options (``instrument()`` keyword arguments) and their flusher thread."""
    provider = kwargs.get("tracer_provider") or trace.get_tracer_provider()
    tracer = trace.get_tracer(scope, _version(), tracer_provider=provider)
    flush_ms = float(kwargs.get("flush_after_ms", 1000.0))
    return Config(
        tracer=tracer,
        coalesce_deltas=bool(kwargs.get("coalesce_deltas", True)),
        flush_after_ms=flush_ms,
        flush_after_events=int(kwargs.get("flush_after_events", 256)),
        capture_content=bool(kwargs.get("capture_content", _env_bool("STREAMTRIAGE_CAPTURE_CONTENT", False))),
        static_attributes=static_attributes,
        flusher=Flusher(interval_s=min(0.25, flush_ms / 4000.0)),
        registry=Registry(int(kwargs.get("registry_size", 10_000))),
    )


class SdkHookInstrumentor(BaseInstrumentor):
    """One SDK's hooks as an OpenTelemetry instrumentor: a configuration with its own flusher thread,
    installed and taken off together. Subclasses say what to install and which static attributes."""

    SCOPE = ""
    _flusher: Flusher | None = None

    def _static_attributes(self) -> dict[str, Any]:
        return {}

    def _install(self, cfg: Config) -> None:
        raise NotImplementedError

    def _remove(self) -> None:
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        cfg = make_config(self.SCOPE, self._static_attributes(), kwargs)
        type(self)._flusher = cfg.flusher
        self._install(cfg)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._remove()
        flusher, type(self)._flusher = type(self)._flusher, None
        if flusher is not None:
            flusher.stop()


class OpenAIInstrumentor(SdkHookInstrumentor):
    """Wraps the openai SDK (sync and async) and emits call, event and poll spans.

    Options of ``instrument()``: ``tracer_provider``, ``coalesce_deltas`` (default ``True``),
    ``flush_after_ms`` (1000), ``flush_after_events`` (256), ``capture_content`` (``False``, or
    ``STREAMTRIAGE_CAPTURE_CONTENT=true``).
    """

    SCOPE = SCOPE

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.40",)

    def _static_attributes(self) -> dict[str, Any]:
        return patches.sdk_attributes()

    def _install(self, cfg: Config) -> None:
        patches.patch_all(cfg)

    def _remove(self) -> None:
        patches.unpatch_all()
