"""Opt-in hook for hand-rolled LLM streaming over plain ``httpx``: apps that POST to a provider with
``"stream": true`` and parse the ``text/event-stream`` body themselves (no SDK).

``streamtriage.instrument_httpx(hosts=["api.openai.com"])`` patches ``httpx.Client.send`` and
``httpx.AsyncClient.send``. A POST to one of the configured hosts whose JSON body asks for a stream
gets the same call and event spans as an SDK call (docs/span-contract.md): content deltas coalesced,
the terminal marker (``[DONE]``, ``response.completed``...), finish reasons, in-band errors, and how the
stream ended: read to the end, cut (the transport's exception), or closed early by the app (with the
app's own exception when one is being handled, e.g. ``KeyError: 'finish_reason'``). Requests the
official SDKs make (they carry ``X-Stainless-*`` headers) are left to the SDK hooks.

The body bytes the app reads are the server's, unchanged: the hook parses a copy of each chunk.
"""
from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpx

from ._safety import hook_failed
from .calls import CallState, Config
from .hooks.requests import call_attributes
from .routes import RequestInfo, with_body

SDK_NAME = "httpx-sse"
_STATE: dict[str, Any] = {"hosts": frozenset(), "cfg": None, "orig": None}


def _info(request: Any) -> tuple[RequestInfo, str] | None:
    """The contract identity of a hand-rolled streaming request to a configured host, else None."""
    url = request.url
    if request.method != "POST" or (url.host not in _STATE["hosts"] and f"{url.host}:{url.port}" not in _STATE["hosts"]):
        return None
    if any(k.lower().startswith("x-stainless") for k in request.headers):
        return None  # an official SDK's request: its own hook records it
    try:
        body = json.loads(request.content or b"{}")
    except (ValueError, UnicodeDecodeError, RuntimeError):  # RuntimeError: a streaming request body
        return None
    if not isinstance(body, dict) or body.get("stream") is not True:
        return None
    path = url.path
    api = "responses" if path.rstrip("/").endswith("/responses") else "chat.completions"
    return with_body(RequestInfo(api, "stream"), body), path


def _attributes(cfg: Config, info: RequestInfo, path: str, request: Any) -> dict[str, Any]:
    """The SDK hooks' call attributes, with this hook's SDK, transport and server (no SDK client here)."""
    a = call_attributes(info, path, None, None, cfg)
    a.update({
        "streamtriage.contract": 1, "gen_ai.provider.name": "openai", "gen_ai.system": "openai",
        "streamtriage.sdk.name": SDK_NAME, "streamtriage.sdk.version": httpx.__version__,
        "streamtriage.transport.name": "httpx", "streamtriage.transport.version": httpx.__version__,
        "server.address": request.url.host, "server.port": request.url.port or (443 if request.url.scheme == "https" else 80),
    })
    return a


class _Parser:
    """Incremental SSE parsing of a copy of the body, feeding one CallState."""

    def __init__(self, st: CallState) -> None:
        self.st = st
        self.buf = b""
        self.event_name = ""

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r")
            if line.startswith(b"event:"):
                self.event_name = line[6:].strip().decode("utf-8", "replace")
            elif line.startswith(b"data:"):
                self._data(line[5:].strip(), self.event_name)
            elif not line:
                self.event_name = ""

    def _data(self, data: bytes, name: str) -> None:
        st = self.st
        if data == b"[DONE]":
            st.done_seen = True
            st.event("[DONE]", {"streamtriage.terminal": True})
            return
        try:
            obj = json.loads(data)
        except ValueError:
            st.event(name or "message")
            return
        if not isinstance(obj, dict):
            st.event(name or "message")
            return
        if "error" in obj and not obj.get("choices"):
            st.error_event = True
            err = obj["error"] if isinstance(obj["error"], dict) else {}
            st.error_code = str(err.get("code") or err.get("type") or "") or None
            st.event("error", {"streamtriage.error.code": st.error_code} if st.error_code else None)
            return
        etype = name or obj.get("type") or "chat.completion.chunk"
        if etype.startswith("response."):
            if etype.endswith(".delta"):
                st.delta(etype, len(str(obj.get("delta", "")).encode()))
            else:
                if etype in ("response.completed", "response.incomplete", "response.failed"):
                    st.terminal_event = etype
                st.event(etype)
            return
        choices = obj.get("choices") or []
        if st.response_id is None and obj.get("id"):
            st.response_id = str(obj["id"])
        if st.response_model is None and obj.get("model"):
            st.response_model = str(obj["model"])
        finish = None
        text = ""
        for i, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            st.nchoices = max(st.nchoices, i + 1)
            fr = choice.get("finish_reason")
            if fr is not None:
                st.finish_reasons[i] = str(fr)
                finish = finish or str(fr)
            delta = choice.get("delta") or {}
            text += str(delta.get("content") or "")
        if finish is None and text:
            st.delta("chat.completion.chunk", len(text.encode()))
        else:
            st.event("chat.completion.chunk", {"streamtriage.finish_reason": finish} if finish else None)


def _guard(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - the app's stream never sees the hook's failures
        hook_failed("sse_client", exc)


class _SyncStream(httpx.SyncByteStream):
    """Wraps ``response.stream`` (httpx.SyncByteStream): yields the same bytes, parses a copy."""

    def __init__(self, inner: Any, st: CallState) -> None:
        self.inner, self.st, self.parser = inner, st, _Parser(st)

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.inner:
                _guard(self.parser.feed, chunk)
                yield chunk
        except GeneratorExit:  # the app stopped iterating: close() / the `with` exit say why
            raise
        except BaseException as exc:
            _guard(self.st.stream_failed, exc)
            raise
        _guard(self.st.stream_finished)

    def close(self) -> None:
        _guard(_closed, self.st)
        self.inner.close()


class _AsyncStream(httpx.AsyncByteStream):
    def __init__(self, inner: Any, st: CallState) -> None:
        self.inner, self.st, self.parser = inner, st, _Parser(st)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                _guard(self.parser.feed, chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            _guard(self.st.stream_failed, exc)
            raise
        _guard(self.st.stream_finished)

    async def aclose(self) -> None:
        _guard(_closed, self.st)
        await self.inner.aclose()


class _StreamContext:
    """Wraps ``client.stream(...)``: its exit is where the app's own exception (a parser bug) shows."""

    def __init__(self, cm: Any) -> None:
        self.cm = cm
        self.response: Any = None

    def _exit(self, exc: BaseException | None) -> None:
        st = getattr(getattr(self.response, "stream", None), "st", None)
        if st is not None and exc is not None and not st.stream_ended:
            st.cancelled("context_exit", exc if isinstance(exc, Exception) else None)

    def __enter__(self) -> Any:
        self.response = self.cm.__enter__()
        return self.response

    def __exit__(self, et: Any, exc: Any, tb: Any) -> Any:
        _guard(self._exit, exc)
        return self.cm.__exit__(et, exc, tb)

    async def __aenter__(self) -> Any:
        self.response = await self.cm.__aenter__()
        return self.response

    async def __aexit__(self, et: Any, exc: Any, tb: Any) -> Any:
        _guard(self._exit, exc)
        return await self.cm.__aexit__(et, exc, tb)


def _closed(st: CallState) -> None:
    """The app closed the response: before the end of the body, that is the app stopping early."""
    if not st.stream_ended:
        handling = sys.exc_info()[1]
        st.cancelled("close", handling if isinstance(handling, Exception) else None)


def _begin(request: Any) -> CallState | None:
    cfg = _STATE["cfg"]
    got = _info(request)
    if cfg is None or got is None:
        return None
    info, path = got
    return CallState(cfg, info, _attributes(cfg, info, path, request))


def _safe_begin(request: Any) -> CallState | None:
    try:
        return _begin(request)
    except Exception as exc:  # noqa: BLE001 - the request goes out unobserved rather than not at all
        hook_failed("sse_client_begin", exc)
        return None


def _after(st: CallState, response: Any, is_async: bool) -> None:
    st.http_status = response.status_code
    if response.status_code >= 400:
        st.outcome = "http_error"
        st.stream_ended = True
        st.finish()
        return
    response.stream = _AsyncStream(response.stream, st) if is_async else _SyncStream(response.stream, st)


def instrument_httpx(hosts: Iterable[str], tracer_provider: Any = None) -> None:
    """Record hand-rolled streams to these hosts (``"api.openai.com"`` or ``"127.0.0.1:8900"``)."""
    from opentelemetry import trace

    from streamtriage import __version__

    provider = tracer_provider or trace.get_tracer_provider()
    _STATE["hosts"] = frozenset(hosts)
    _STATE["cfg"] = Config(tracer=provider.get_tracer("streamtriage.instrumentation.httpx", __version__))
    if _STATE["orig"] is not None:
        return
    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send
    sync_stream, async_stream = httpx.Client.stream, httpx.AsyncClient.stream
    _STATE["orig"] = (sync_send, async_send, sync_stream, async_stream)

    def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _StreamContext(sync_stream(self, *args, **kwargs))

    def astream(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _StreamContext(async_stream(self, *args, **kwargs))

    # The sync and async senders are twins on purpose: one awaits, the other does not.
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        st = _safe_begin(request)
        if st is None:
            return sync_send(self, request, *args, **kwargs)
        try:
            response = sync_send(self, request, *args, **kwargs)
        except BaseException as exc:
            _guard(_failed_before_stream, st, exc)
            raise
        _guard(_after, st, response, False)
        return response

    async def asend(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        st = _safe_begin(request)
        if st is None:
            return await async_send(self, request, *args, **kwargs)
        try:
            response = await async_send(self, request, *args, **kwargs)
        except BaseException as exc:
            _guard(_failed_before_stream, st, exc)
            raise
        _guard(_after, st, response, True)
        return response

    httpx.Client.send = send  # type: ignore[method-assign]
    httpx.AsyncClient.send = asend  # type: ignore[method-assign]
    httpx.Client.stream = stream  # type: ignore[method-assign]
    httpx.AsyncClient.stream = astream  # type: ignore[method-assign]


def _failed_before_stream(st: CallState, exc: BaseException) -> None:
    st.set_exception(exc, in_stream=False)
    st.stream_ended = True
    st.finish()


def uninstrument_httpx() -> None:
    orig = _STATE["orig"]
    if orig is not None:
        httpx.Client.send, httpx.AsyncClient.send, httpx.Client.stream, httpx.AsyncClient.stream = orig  # type: ignore[method-assign]
        _STATE["orig"] = None
    _STATE["cfg"] = None


__all__ = ["instrument_httpx", "uninstrument_httpx"]
