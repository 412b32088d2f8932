"""What a route handler returns: a complete reply or an SSE stream to write (with its fault).

Also the canned error bodies: OpenAI-style JSON errors per status, and the HTML pages gateways send.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import payloads as p
from .faults import FaultSpec
from .streams import Frames

HTML_524 = ("<!DOCTYPE html><html><head><title>127.0.0.1 | 524: A timeout occurred</title></head><body>"
            "<h1>Error 524</h1><p>A timeout occurred</p><p>The origin web server timed out responding to "
            "this request.</p></body></html>")
HTML_502 = ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
            "<hr><center>nginx</center></body></html>")
ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    408: ("Request timed out.", "timeout", None),
    409: ("Conflict.", "invalid_request_error", None),
    429: ("Rate limit reached for gpt-4o-mini in organization org-sim on requests per min (RPM): Limit 3, "
          "Used 3, Requested 1. Please try again in 20s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


@dataclass
class Reply:
    """A complete (Content-Length) response."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    html: bool = False


@dataclass
class StreamReply:
    """An SSE response and the fault to apply while writing it."""

    frames: Frames
    fault: FaultSpec
    api: str  # chat | responses | assistants | anthropic
    on_end: Callable[[bool], None] | None = None  # called with "terminal frames were sent"
    keepalive: bytes | None = None  # what a stall's keep-alives send (default an SSE comment; Anthropic: ping)


def retry_headers(fault: FaultSpec) -> dict[str, str]:
    """Retry-After / retry-after-ms / x-should-retry headers asked for by the fault's parameters."""
    headers: dict[str, str] = {}
    if "retry_after" in fault.params:
        ra = fault.float("retry_after", 1)
        headers["retry-after"] = str(int(ra)) if ra == int(ra) else str(ra)
    if "retry_after_ms" in fault.params:
        headers["retry-after-ms"] = str(fault.int("retry_after_ms", 0))
    if "should_retry" in fault.params:
        headers["x-should-retry"] = str(fault.get("should_retry")).lower()
    return headers


def error_json(fault: FaultSpec, status: int) -> dict[str, Any]:
    """The JSON error body for ``status``, with message/type/code overridable by the fault's parameters."""
    message, type_, code = ERROR_DEFAULTS.get(status, (f"HTTP {status}", "server_error", None))
    return p.error_body(str(fault.get("message", message)), str(fault.get("type", type_)), fault.get("code", code))


def status_reply(fault: FaultSpec, default: int) -> Reply:
    """An HTTP error reply for a polled object's GET (JSON body, retry headers from the params)."""
    status = fault.int("status", default)
    return Reply(status, error_json(fault, status), retry_headers(fault))
