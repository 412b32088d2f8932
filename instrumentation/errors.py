"""Exception facts in the span contract's vocabulary (module-qualified names, cause chains, outcomes)."""
from __future__ import annotations

import asyncio

MAX_MESSAGE = 512


def qualified(exc: BaseException) -> str:
    """``httpx2.RemoteProtocolError``, ``openai.APIConnectionError``, ``builtins.KeyError``."""
    t = type(exc)
    return f"{t.__module__}.{t.__qualname__}"


def message(exc: BaseException) -> str:
    try:
        return str(exc)[:MAX_MESSAGE]
    except Exception:
        return ""


def chain(exc: BaseException, limit: int = 8) -> list[str]:
    """Classes from the raised exception inwards: ``__cause__``, else ``__context__``; cycles cut."""
    out: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen and len(out) < limit:
        seen.add(id(cur))
        out.append(qualified(cur))
        cur = cur.__cause__ if cur.__cause__ is not None else cur.__context__
    return out


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def outcome_of(exc: BaseException, *, in_stream: bool) -> str:
    """Map an exception the app saw to ``streamtriage.outcome``.

    Class names are compared rather than imported classes so the same rule covers ``httpx`` (SDK
    1.x/2.x) and ``httpx2`` (3.x) without importing either.
    """
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if not isinstance(exc, Exception):
        return "cancelled"  # GeneratorExit, KeyboardInterrupt, an app deadline raised into the thread
    names = _names(exc)
    if "APIStatusError" in names:
        return "http_error"
    if "APITimeoutError" in names or "TimeoutException" in names or isinstance(exc, TimeoutError):
        return "timeout"
    if (
        "APIConnectionError" in names
        or "TransportError" in names
        or "NetworkError" in names
        or "RemoteProtocolError" in names
        or isinstance(exc, ConnectionError)
    ):
        return "transport_error"
    if in_stream and "APIError" in names:
        return "error_event"
    return "error"


def cancel_reason(exc: BaseException) -> str:
    """``streamtriage.cancel.reason`` for an exception that stopped the call from outside."""
    if isinstance(exc, asyncio.CancelledError):
        return "task_cancelled"
    if isinstance(exc, GeneratorExit):
        return "generator_exit"
    return "interrupted"


def api_error_fields(exc: BaseException) -> tuple[str | None, str | None]:
    """``code`` and ``type`` of an ``openai.APIError`` (status or in-band), when present."""
    code = getattr(exc, "code", None)
    etype = getattr(exc, "type", None)
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error")
        inner = err if isinstance(err, dict) else body
        code = code if code is not None else inner.get("code")
        etype = etype if etype is not None else inner.get("type")
    return (str(code) if code is not None else None, str(etype) if etype is not None else None)
