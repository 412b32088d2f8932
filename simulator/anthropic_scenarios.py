"""Anthropic Messages scenarios: the failures of ``messages.create(stream=True)`` / ``messages.stream()``
and their look-alikes, run with the real ``anthropic`` SDK (``simulator/anthropic_drivers.py``).

Included in ``scenarios.SCENARIOS``, so the simulator tests, the hooks' tests, the accuracy test and
``streamtriage demo`` run them. App views (what the app catches) per SDK line, read from the SDK
source and checked against the simulator: ``v3`` is anthropic >= 2 (httpx2; a transport error is
wrapped in ``anthropic.APIConnectionError``), ``legacy`` is 0.x (httpx; the transport's
``RemoteProtocolError`` reaches the app untouched). ``Scenario.view`` reads the anthropic version.
"""
from __future__ import annotations

from .scenario_model import AppView, S, Scenario

MSG = "messages"
CALLS = ("anthropic.create", "anthropic.create_stream", "anthropic.stream_helper", "anthropic.text_stream",
         "anthropic.stream_deadline")
PEER = "llm/peer-closed-incomplete-chunked-read"
IN_BAND = "llm/anthropic-in-band-error-event-http-200"
NO_STOP = "llm/anthropic-stream-ended-without-message-stop"
MAX_TOKENS = "llm/anthropic-stop-reason-max-tokens"
CONTEXT = "llm/anthropic-model-context-window-exceeded"
REFUSAL = "llm/anthropic-refusal-stop-reason"
PAUSE = "llm/anthropic-pause-turn-not-continued"
PING_STALL = "llm/anthropic-ping-keepalive-hides-dead-generation"
TOOL_JSON = "llm/anthropic-tool-input-json-unparseable"
LONG = "llm/anthropic-streaming-required-long-request"
OVERLOADED = "llm/anthropic-overloaded-529"
INC, TRUNC = "incomplete_stream", "truncation"
# Events the app's loop sees: every event but ping (the SDK drops pings).
RAW_EVENTS = 10


def _same(**kw: object) -> dict[str, AppView]:
    view = AppView(**kw)  # type: ignore[arg-type]
    return {"v3": view, "legacy": view}


def _cut(events: int) -> dict[str, AppView]:
    return {"v3": AppView(exception="anthropic.APIConnectionError", cause="httpx2.RemoteProtocolError", events=events),
            "legacy": AppView(exception="httpx.RemoteProtocolError", cause="httpcore.RemoteProtocolError",
                              events=events)}


def A(name: str, description: str, call: str, fault: str, **kw: object) -> Scenario:
    return S(name, description, MSG, call, fault, sdk="anthropic", **kw)  # type: ignore[arg-type]


ANTHROPIC_SCENARIOS: tuple[Scenario, ...] = (
    # ---------------------------------------------------------------- healthy controls and look-alikes
    A("anthropic-healthy", "messages.create(stream=True): message_start, ping, one text block of 5 deltas, "
      "message_delta end_turn, message_stop.", "anthropic.create_stream", "healthy", healthy=True,
      expected_finish_reason="end_turn", views=_same(events=RAW_EVENTS)),
    A("anthropic-healthy-helper", "Healthy stream through messages.stream() and get_final_message().",
      "anthropic.stream_helper", "healthy", healthy=True, expected_finish_reason="end_turn",
      views=_same(events=RAW_EVENTS)),
    A("anthropic-healthy-text-stream", "Healthy stream read with the text_stream, until_done() and "
      "get_final_message() helpers.", "anthropic.text_stream", "healthy", healthy=True,
      expected_finish_reason="end_turn", views=_same(events=5)),
    A("anthropic-request", "Non-streamed messages.create(): one Message, stop_reason end_turn.", "anthropic.create",
      "healthy", healthy=True, expected_finish_reason="end_turn", views=_same(events=None)),
    A("anthropic-tool-use", "A tool_use block streamed as input_json_delta fragments, stop_reason tool_use: "
      "the app runs the tool, not an incident.", "anthropic.create_stream", "tool-calls", healthy=True,
      expected_finish_reason="tool_use", views=_same(events=RAW_EVENTS)),
    A("anthropic-ping-pause-short", "A 0.3 s pause with pings every 0.1 s against a 1.5 s read timeout, then the "
      "rest of the answer: a healthy pause, not a stall.", "anthropic.stream_helper", "stall",
      params={"after": 4, "stall": 0.3, "keepalive": 0.1}, timeout=1.5, healthy=True,
      expected_finish_reason="end_turn", views=_same(events=RAW_EVENTS)),
    A("anthropic-overloaded-retried", "HTTP 529 overloaded_error on the first attempt, then a healthy stream: the "
      "SDK's retry hides it.", "anthropic.create_stream", "status", params={"status": 529, "times": 1,
      "retry_after_ms": 20}, max_retries=2, expected_attempts=2, healthy=True, expected_finish_reason="end_turn",
      views=_same(events=RAW_EVENTS)),
    # ---------------------------------------------------------------- transport and protocol
    A("anthropic-cut", "The connection is cut after 5 events (mid text block): peer closed connection without "
      "sending complete message body.", "anthropic.create_stream", "cut", params={"after": 5},
      expected_kb_id=PEER, expected_category=INC, expected_outcome="transport_error", expected_terminal_seen=False,
      views=_cut(4)),
    A("anthropic-cut-helper", "The same cut under messages.stream().", "anthropic.stream_helper", "cut",
      params={"after": 5}, expected_kb_id=PEER, expected_category=INC, expected_outcome="transport_error",
      expected_terminal_seen=False, views=_cut(4)),
    A("anthropic-error-event", "event: error overloaded_error after 5 events of an HTTP 200 stream: APIStatusError "
      "with status_code 200, never retried (max_retries=2, one attempt).", "anthropic.create_stream",
      "error-event", params={"after": 5}, max_retries=2, expected_kb_id=IN_BAND, expected_category=INC,
      expected_outcome="error_event", expected_terminal_seen=False,
      views=_same(exception="anthropic.APIStatusError", events=4)),
    A("anthropic-error-event-helper", "The in-band overloaded_error under messages.stream().",
      "anthropic.stream_helper", "error-event", params={"after": 5}, max_retries=2, expected_kb_id=IN_BAND,
      expected_category=INC, expected_outcome="error_event", expected_terminal_seen=False,
      views=_same(exception="anthropic.APIStatusError", events=4)),
    A("anthropic-no-message-stop", "The body ends cleanly after content_block_stop: no message_delta, no "
      "message_stop. get_final_message() returns stop_reason None without a word.", "anthropic.stream_helper",
      "no-terminal", expected_kb_id=NO_STOP, expected_category=INC, expected_outcome="no_terminal",
      expected_terminal_seen=False, views=_same(events=8)),
    A("anthropic-no-message-start", "A body without message_start or message_stop: get_final_message() fails "
      "(AssertionError on 2.x; 0.x's accumulator raises RuntimeError 'Unexpected event order').",
      "anthropic.stream_helper", "no-terminal", params={"start": 0}, expected_kb_id=NO_STOP,
      expected_category=INC, expected_outcome="error", expected_terminal_seen=False,
      views={"v3": AppView(exception="builtins.AssertionError", events=7),
             "legacy": AppView(exception="builtins.RuntimeError", events=0)}),
    A("anthropic-ping-stall", "The generation dies after 4 events while the API keeps sending a ping every "
      "0.1 s: the 0.5 s read timeout never fires; the app's own 1.2 s deadline abandons the stream.",
      "anthropic.stream_deadline", "stall", params={"after": 4, "stall": 5.0, "keepalive": 0.1}, timeout=0.5,
      expected_kb_id=PING_STALL, expected_category=INC, expected_outcome="cancelled", expected_terminal_seen=False,
      gives_up=True, app={"deadline": 1.2}, views=_same(events=3)),
    # ---------------------------------------------------------------- stop reasons read as success
    A("anthropic-max-tokens", "stop_reason max_tokens: the answer stopped at the requested cap.",
      "anthropic.create_stream", "finish", params={"reason": "max_tokens"}, request={"max_tokens": 16},
      expected_kb_id=MAX_TOKENS, expected_category=TRUNC, expected_finish_reason="max_tokens",
      views=_same(events=RAW_EVENTS)),
    A("anthropic-context-window", "stop_reason model_context_window_exceeded: prompt plus output filled the "
      "context window.", "anthropic.stream_helper", "finish", params={"reason": "model_context_window_exceeded"},
      expected_kb_id=CONTEXT, expected_category=TRUNC, expected_finish_reason="model_context_window_exceeded",
      views=_same(events=RAW_EVENTS)),
    A("anthropic-refusal", "stop_reason refusal: the safety classifiers stopped the answer mid-stream.",
      "anthropic.create_stream", "finish", params={"reason": "refusal"}, expected_kb_id=REFUSAL,
      expected_category="content_filter", expected_finish_reason="refusal", views=_same(events=RAW_EVENTS)),
    A("anthropic-pause-turn", "Non-streamed create() ending with stop_reason pause_turn: a long server-tool turn "
      "was paused and must be sent back to continue.", "anthropic.create", "finish",
      params={"reason": "pause_turn"}, expected_kb_id=PAUSE, expected_category=TRUNC,
      expected_finish_reason="pause_turn", views=_same(events=None)),
    # ---------------------------------------------------------------- client-side and before the stream
    A("anthropic-tool-json-invalid", "A tool_use block whose input_json_delta fragments add up to unparseable "
      "JSON: messages.stream() raises ValueError 'Unable to parse tool parameter JSON from model'.",
      "anthropic.stream_helper", "tool-calls", params={"invalid": 1}, expected_kb_id=TOOL_JSON,
      expected_category="client_parser", expected_outcome="error", expected_terminal_seen=False,
      views=_same(exception="builtins.ValueError", events=5)),
    A("anthropic-streaming-required", "Non-streamed create() with max_tokens=128000 on the default timeout: the SDK "
      "refuses before sending ('Streaming is required for operations that may take longer than 10 minutes').",
      "anthropic.create", "healthy", request={"max_tokens": 128000}, app={"default_timeout": True},
      expected_attempts=0, expected_kb_id=LONG, expected_category="client_misuse", expected_outcome="error",
      expected_terminal_seen=False, views=_same(exception="builtins.ValueError", events=None)),
    A("anthropic-overloaded-529", "HTTP 529 overloaded_error on every attempt before the stream starts: "
      "OverloadedError after 2 attempts.", "anthropic.create_stream", "status",
      params={"status": 529, "retry_after_ms": 20}, max_retries=1, expected_attempts=2, expected_kb_id=OVERLOADED,
      expected_category="server_error", expected_outcome="http_error", expected_terminal_seen=False,
      views=_same(exception="anthropic.OverloadedError", events=0)),
)
