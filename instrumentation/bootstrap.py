"""``streamtriage.instrument()``: tracer provider + batching OTLP/HTTP exporter + hooks, in one call.

Reuses the app's SDK ``TracerProvider`` when it already set one (the app owns export then);
otherwise builds one from the arguments and the standard ``OTEL_*`` variables. Idempotent: a
second call returns the same handle.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from opentelemetry import trace

from .anthropic_instrumentor import AnthropicInstrumentor
from .instrumentor import OpenAIInstrumentor

_LOCK = threading.Lock()
_HANDLE: Handle | None = None


class Handle:
    """What ``instrument()`` returns: flush or shut down what it set up."""

    def __init__(self, provider: Any, owned: bool, instrumentor: OpenAIInstrumentor, endpoint: str | None,
                 anthropic: AnthropicInstrumentor | None = None) -> None:
        self.tracer_provider = provider
        self.owns_provider = owned
        self.instrumentor = instrumentor
        self.anthropic = anthropic
        self.endpoint = endpoint

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flush = getattr(self.tracer_provider, "force_flush", None)
        return bool(flush(timeout_millis)) if flush is not None else True

    def shutdown(self) -> None:
        """Remove the hooks; flush and close the exporter if ``instrument()`` created it."""
        global _HANDLE
        with _LOCK:
            for inst in (self.instrumentor, self.anthropic):
                if inst is not None and inst.is_instrumented_by_opentelemetry:
                    inst.uninstrument()
            if self.owns_provider:
                self.force_flush()
                self.tracer_provider.shutdown()
            if _HANDLE is self:
                _HANDLE = None


def _traces_endpoint(endpoint: str | None) -> str | None:
    """``http://host:4318`` -> ``http://host:4318/v1/traces``; ``None`` lets the exporter read the env."""
    if endpoint is None:
        return None
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def _parse_headers(raw: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (raw or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def instrument(
    endpoint: str | None = None,
    service_name: str | None = None,
    headers: dict[str, str] | None = None,
    **opts: Any,
) -> Handle:
    """Set up export (when the app has none) and install the OpenAI and Anthropic hooks; see the module doc."""
    global _HANDLE
    with _LOCK:
        if _HANDLE is not None:
            return _HANDLE
        from opentelemetry.sdk.trace import TracerProvider

        current = trace.get_tracer_provider()
        owned = False
        resolved = None
        if isinstance(current, TracerProvider):
            provider = current
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import SERVICE_NAME, Resource
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "unknown_service"
            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
            resolved = _traces_endpoint(endpoint)
            if headers is None and "OTEL_EXPORTER_OTLP_TRACES_HEADERS" not in os.environ:
                env_headers = _parse_headers(os.environ.get("OTEL_EXPORTER_OTLP_HEADERS"))
                token = os.environ.get("STREAMTRIAGE_TOKEN")
                if not env_headers and token:  # the collector's --token, as for opentelemetry-instrument
                    env_headers = {"Authorization": f"Bearer {token}"}
                headers = env_headers or None
            exporter = OTLPSpanExporter(endpoint=resolved, headers=headers)
            resolved = getattr(exporter, "_endpoint", resolved)
            delay = int(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "1000"))
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay))
            trace.set_tracer_provider(provider)  # if the app set a non-SDK provider, ours is still used by the hook
            owned = True
        inst = OpenAIInstrumentor()
        if not inst.is_instrumented_by_opentelemetry:
            inst.instrument(tracer_provider=provider, **opts)
        anthropic = AnthropicInstrumentor()  # hooks the anthropic SDK only once the app imports it
        if not anthropic.is_instrumented_by_opentelemetry:
            anthropic.instrument(tracer_provider=provider, **opts)
        _HANDLE = Handle(provider, owned, inst, resolved, anthropic)
        return _HANDLE
