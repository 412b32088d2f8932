"""streamtriage: finds out why LLM streaming calls fail."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def instrument(
    endpoint: str | None = None,
    service_name: str | None = None,
    headers: dict[str, str] | None = None,
    **opts: Any,
) -> Any:
    """Export OpenAI and Anthropic SDK spans to a streamtriage collector (or any OTLP/HTTP endpoint).

    The Anthropic hook patches ``anthropic`` only once the app imports it.

    ``endpoint`` is the collector's base URL (``http://127.0.0.1:4318``); without it the standard
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` apply. Reuses the
    app's tracer provider if it has one. Options: ``coalesce_deltas``, ``flush_after_ms``,
    ``flush_after_events``, ``capture_content``. Returns a handle with ``force_flush()`` and
    ``shutdown()``; calling it again returns the same handle.
    """
    from streamtriage.instrumentation.bootstrap import instrument as _instrument

    return _instrument(endpoint=endpoint, service_name=service_name, headers=headers, **opts)


def instrument_asgi(app: Any, tracer_provider: Any = None) -> Any:
    """Wrap an ASGI app (FastAPI, Starlette) so every WebSocket and streamed response it relays to a
    browser gets a relay span, parent of the LLM calls made while serving it (instrumentation/relay.py)."""
    from streamtriage.instrumentation.relay import instrument_asgi as _instrument_asgi

    return _instrument_asgi(app, tracer_provider)


def instrument_httpx(hosts: list[str], tracer_provider: Any = None) -> None:
    """Opt in to recording hand-rolled streaming calls (plain ``httpx``, no SDK) to these LLM hosts, with
    the same call and event spans as the SDK hooks (instrumentation/sse_client.py)."""
    from streamtriage.instrumentation.sse_client import instrument_httpx as _instrument_httpx

    _instrument_httpx(hosts, tracer_provider)


__all__ = ["__version__", "instrument", "instrument_asgi", "instrument_httpx"]
