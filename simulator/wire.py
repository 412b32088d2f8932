"""HTTP/1.1 at byte level: request parsing and response bodies that can break on purpose.

A framework would always finish (or always reset) a response; the faults need incomplete chunked
bodies, FIN vs RST, stalls before the status line and after ``[DONE]``, so responses are written
by hand here.
"""
from __future__ import annotations

import asyncio
import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024

REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 409: "Conflict",
    411: "Length Required", 413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 524: "A Timeout Occurred",
}


class BadRequest(Exception):
    """The bytes on the wire are not a request we can answer; the connection is answered 400 and closed."""


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    path: str = field(init=False)
    query: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path
        self.query = parse_qs(parts.query)

    def json(self) -> dict[str, Any]:
        """JSON body, or {} for an empty/multipart body (file uploads only need to exist)."""
        if not self.body or "json" not in self.headers.get("content-type", "application/json"):
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("JSON body must be an object")
        return data

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request; None when the client closed the connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest("connection closed inside the request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        raise BadRequest(f"malformed request line {lines[0]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"malformed header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise BadRequest("Content-Length out of range")
        body = await reader.readexactly(length)
    return Request(method.upper(), target, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            await reader.readuntil(b"\r\n")  # (no trailers expected)
            return b"".join(parts)
        total += size
        if total > MAX_BODY_BYTES:
            raise BadRequest("chunked body too large")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def status_head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


LAST_CHUNK = b"0\r\n\r\n"


def sse(data: str | dict[str, Any] | None, event: str | None = None) -> bytes:
    """One SSE frame. ``data=None`` gives an event line only; a dict is JSON-encoded compactly."""
    out = b""
    if event:
        out += b"event: " + event.encode() + b"\n"
    if data is not None:
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out += b"".join(b"data: " + line.encode() + b"\n" for line in (text.split("\n") if text else [""]))
    return out + b"\n"


KEEPALIVE = b": keep-alive\n\n"


def json_response(status: int, payload: Any, extra_headers: dict[str, str] | None = None,
                  keep_alive: bool = True) -> bytes:
    """A complete Content-Length JSON response."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", "content-length": str(len(body)),
               "connection": "keep-alive" if keep_alive else "close"}
    headers.update(extra_headers or {})
    return status_head(status, headers) + body


def raw_response(status: int, body: bytes, content_type: str, extra_headers: dict[str, str] | None = None,
                 keep_alive: bool = True) -> bytes:
    headers = {"content-type": content_type, "content-length": str(len(body)),
               "connection": "keep-alive" if keep_alive else "close"}
    headers.update(extra_headers or {})
    return status_head(status, headers) + body


def reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection with TCP RST (SO_LINGER 0, then close) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
