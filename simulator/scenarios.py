"""The scenario catalogue: every failure (and healthy control) the product must explain.

One list read by the simulator tests, the demo, the hooks' differential tests and the classifier's
accuracy test. A :class:`Scenario` says which fault the simulator injects, which SDK call an app
makes (``call``, run by ``drivers.run_scenario``), and what should come out:

* the label: ``expected_kb_id`` / ``expected_category`` from ``failure-catalog.yaml``, chosen by
  root cause. Healthy controls have both ``None`` and ``healthy=True``. An incident the catalogue
  has no entry for (a plain 429 or 500 on Chat Completions) has ``expected_kb_id=None`` with a
  category, or both ``None`` with ``healthy=False``: the classifier should call it unclassified.
* what the hook records on the call span of the scenario's *last* SDK call: ``expected_outcome``
  (span-contract §4.2), ``expected_terminal_seen``, ``expected_finish_reason`` / ``expected_status``.
* what the app itself sees per SDK line (:class:`AppView`), from ``sdk-fault-ground-truth.md``:
  ``v3`` for openai >= 3.15 (transport errors wrapped, ``httpx2``), ``legacy`` for 1.x/2.x (raw
  ``httpx`` errors). ``None`` fields are not checked.

For the app's own poll loops (``*.background_poll``, ``*.manual_poll``) the last SDK call is the create;
``expected_status`` / ``expected_terminal_seen`` then describe the object as the app's last poll saw it.
SDK poll helpers that never return are abandoned by the driver (``gives_up``); their ``expected_outcome``
is ``cancelled``.

All stalls and timeouts are short (well under 2 s per scenario) so the catalogue runs in CI.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from .anthropic_scenarios import ANTHROPIC_SCENARIOS
from .provider_scenarios import provider_scenarios
from .scenario_model import _CATEGORY, AppView, S, Scenario

APIS = ("chat.completions", "responses", "assistants.runs", "vector_stores.files", "vector_stores.file_batches",
        "vector_stores", "messages")
OUTCOMES = ("completed", "no_terminal", "transport_error", "timeout", "error_event", "http_error", "cancelled",
            "app_error", "error")
CALLS = (
    "chat.create", "chat.create_stream", "chat.stream_helper", "chat.create_stream_break",
    "chat.create_stream_index0", "chat.create_stream_dict",
    "responses.create_stream", "responses.stream_helper", "responses.background_poll", "responses.background_resume",
    "runs.create_stream", "runs.stream_handler", "runs.submit_tool_outputs_stream", "runs.submit_tool_outputs_late",
    "runs.create_and_poll", "runs.submit_tool_outputs_and_poll", "runs.manual_poll",
    "vector_stores.files.create_and_poll", "vector_stores.file_batches.create_and_poll", "vector_stores.manual_poll",
    # Anthropic Messages (simulator/anthropic_drivers.py)
    "anthropic.create", "anthropic.create_stream", "anthropic.stream_helper", "anthropic.text_stream",
    "anthropic.stream_deadline",
)

# Exception classes by SDK line. v3 wraps transport errors; the Assistants helper unwraps them again.
CONN3, TIMEOUT3 = "openai.APIConnectionError", "openai.APITimeoutError"


def _transport(kind: str, events: int, helper_unwraps: bool = False) -> dict[str, AppView]:
    """AppViews of a transport failure (``RemoteProtocolError``/``ReadError``/``ReadTimeout``)."""
    outer3 = TIMEOUT3 if kind == "ReadTimeout" else CONN3
    core = {"RemoteProtocolError": "RemoteProtocolError", "ReadError": "ReadError", "ReadTimeout": "ReadTimeout"}[kind]
    if helper_unwraps:
        v3 = AppView(exception=f"httpx2.{kind}", cause=outer3, events=events)
    else:
        v3 = AppView(exception=outer3, cause=f"httpx2.{kind}", events=events)
    return {"v3": v3, "legacy": AppView(exception=f"httpx.{kind}", cause=f"httpcore.{core}", events=events)}


def _same(**kw: Any) -> dict[str, AppView]:
    view = AppView(**kw)
    return {"v3": view, "legacy": view}




CHAT, RESP, RUNS = "chat.completions", "responses", "assistants.runs"
PEER = "llm/peer-closed-incomplete-chunked-read"
STALL = "llm/stream-stall-no-idle-timeout"
PROXY = "llm/proxy-timeout-cuts-stream"
SSE_ERR = "llm/sse-error-event-mid-stream"
NO_FINISH = "llm/chat-stream-ended-without-finish-reason"
LENGTH = "llm/finish-reason-length-output-cap"
FILTER = "llm/content-filter-stop"
RESP_CLOSED = "llm/responses-stream-closed-before-completed"
RESP_SWALLOWED = "llm/responses-failed-event-swallowed"
NO_RUN_TERMINAL = "llm/assistant-stream-no-terminal-run-event"
POLL_FOREVER = "llm/assistants-poll-loop-no-deadline"
INC, TRUNC, HANG = "incomplete_stream", "truncation", "polling_hang"
RESP_CLOSED_MSG = "builtins.RuntimeError"

SCENARIOS: tuple[Scenario, ...] = (
    # ---------------------------------------------------------------- Chat Completions: healthy controls
    S("chat-healthy", "Plain streamed chat completion: role chunk, 5 deltas, finish_reason stop, [DONE].",
      CHAT, "chat.create_stream", "healthy", healthy=True, expected_finish_reason="stop", views=_same(events=7)),
    S("chat-healthy-helper", "Healthy stream through client.chat.completions.stream() and get_final_completion().",
      CHAT, "chat.stream_helper", "healthy", healthy=True, expected_finish_reason="stop", views=_same(events=7)),
    S("chat-request", "Non-streamed chat completion (one JSON body).", CHAT, "chat.create", "healthy",
      healthy=True, expected_finish_reason="stop", views=_same(events=None)),
    S("chat-slow-healthy", "Slow but healthy stream: 30 deltas 10 ms apart (benchmarks scale n and gap).",
      CHAT, "chat.create_stream", "healthy", params={"n": 30, "gap": 0.01}, healthy=True,
      expected_finish_reason="stop", views=_same(events=32)),
    S("chat-stall-short", "Mid-stream stall of 0.3 s, shorter than the 1.5 s read timeout: completes normally.",
      CHAT, "chat.create_stream", "stall", params={"after": 3, "stall": 0.3}, timeout=1.5, healthy=True,
      expected_finish_reason="stop", views=_same(events=7)),
    S("chat-stall-keepalive", "1.2 s stall with `: keep-alive` comments every 0.15 s and a 0.8 s read timeout: "
      "comments reset the timer, so the stream completes.", CHAT, "chat.create_stream", "stall",
      params={"after": 3, "stall": 1.2, "keepalive": 0.15}, timeout=0.8, healthy=True,
      expected_finish_reason="stop", views=_same(events=7)),
    S("chat-no-done", "Provider ends the body cleanly without data: [DONE] after finish_reason stop: the answer "
      "is complete, no incident.", CHAT, "chat.create_stream", "no-terminal", healthy=True,
      expected_outcome="no_terminal", expected_terminal_seen=False, expected_finish_reason="stop",
      views=_same(events=7)),
    S("chat-tool-calls", "Tool call streamed in argument fragments, finish_reason tool_calls.", CHAT,
      "chat.create_stream", "tool-calls", healthy=True, expected_finish_reason="tool_calls", views=_same(events=7)),
    S("chat-retry-500-once", "HTTP 500 on the first attempt, then a healthy stream: the SDK's retry hides it.",
      CHAT, "chat.create_stream", "status", params={"status": 500, "times": 1, "retry_after_ms": 20},
      max_retries=2, expected_attempts=2, healthy=True, expected_finish_reason="stop", views=_same(events=7)),
    S("chat-retry-429-once", "HTTP 429 with retry-after-ms on the first attempt, then a healthy stream.",
      CHAT, "chat.create_stream", "status", params={"status": 429, "times": 1, "retry_after_ms": 20},
      max_retries=2, expected_attempts=2, healthy=True, expected_finish_reason="stop", views=_same(events=7)),
    # ---------------------------------------------------------------- Chat Completions: cuts
    S("chat-cut-fin", "Server FIN after 3 chunks, chunked body left incomplete.", CHAT, "chat.create_stream", "cut",
      params={"after": 3}, expected_kb_id=PEER, expected_category=INC, expected_outcome="transport_error",
      expected_terminal_seen=False, views=_transport("RemoteProtocolError", 3)),
    S("chat-cut-fin-helper", "FIN after 3 chunks while using the chat stream() helper.", CHAT, "chat.stream_helper",
      "cut", params={"after": 3}, expected_kb_id=PEER, expected_category=INC, expected_outcome="transport_error",
      expected_terminal_seen=False, views=_transport("RemoteProtocolError", 3)),
    S("chat-cut-rst", "TCP RST after 3 chunks.", CHAT, "chat.create_stream", "cut", params={"after": 3, "how": "rst"},
      expected_kb_id=PEER, expected_category=INC, expected_outcome="transport_error", expected_terminal_seen=False,
      views=_transport("ReadError", 3)),
    S("chat-cut-length", "Content-Length body cut short after 3 chunks.", CHAT, "chat.create_stream", "cut",
      params={"after": 3, "framing": "length"}, expected_kb_id=PEER, expected_category=INC,
      expected_outcome="transport_error", expected_terminal_seen=False, views=_transport("RemoteProtocolError", 3)),
    S("chat-cut-close-delimited", "Close-delimited body (no length, no chunking) cut after 3 chunks: the loop ends "
      "normally, but neither finish_reason nor [DONE] ever arrive.", CHAT, "chat.create_stream", "cut",
      params={"after": 3, "framing": "close"}, expected_kb_id=PEER, expected_category=INC,
      expected_outcome="no_terminal", expected_terminal_seen=False, views=_same(events=3)),
    # The limit stands well apart from how long ordinary cuts take, as real limits (60-180 s) do: under
    # load, an SDK's first-use costs stretch ordinary cut calls to about a second.
    S("chat-wallclock-cut", "A proxy cuts every stream 1.5 s after the headers while chunks flow every 50 ms.",
      CHAT, "chat.create_stream", "wallclock-cut", params={"n": 40, "gap": 0.05, "cut": 1.5}, expected_kb_id=PROXY,
      expected_category=INC, expected_outcome="transport_error", expected_terminal_seen=False,
      views=_transport("RemoteProtocolError", 30)),
    # ---------------------------------------------------------------- Chat Completions: stalls
    S("chat-stall-timeout", "Mid-stream stall of 1.0 s against a 0.3 s read timeout.", CHAT, "chat.create_stream",
      "stall", params={"after": 3, "stall": 1.0}, timeout=0.3, expected_kb_id=STALL, expected_category=INC,
      expected_outcome="timeout", expected_terminal_seen=False, views=_transport("ReadTimeout", 3)),
    S("chat-stall-headers", "No status line for 1.0 s against a 0.25 s timeout: retried once, then "
      "APITimeoutError.", CHAT, "chat.create_stream", "stall-headers",
      params={"stall": 1.0}, timeout=0.25, max_retries=1, expected_attempts=2, expected_outcome="timeout",
      expected_kb_id="llm/no-response-before-read-timeout", expected_category="server_error",
      expected_terminal_seen=False,
      views={"v3": AppView(exception=TIMEOUT3, cause="httpx2.ReadTimeout", events=0),
             "legacy": AppView(exception=TIMEOUT3, cause="httpx.ReadTimeout", events=0)}),
    S("chat-done-hold", "[DONE] sent, then the body held open 1.0 s (0.4 s timeout). 3.x stops at [DONE]; "
      "1.x drains the body and raises ReadTimeout after the complete answer.", CHAT, "chat.create_stream",
      "done-hold", params={"hold": 1.0}, timeout=0.4, healthy=True, expected_finish_reason="stop",
      views={"v3": AppView(events=7), "v2": AppView(events=7),
             "legacy": AppView(exception="httpx.ReadTimeout", cause="httpcore.ReadTimeout", events=7,
                               outcome="timeout", kb_id=STALL, healthy=False)}),
    # ---------------------------------------------------------------- Chat Completions: finish_reason
    S("chat-finish-null", "Last chunk has finish_reason null, then [DONE].", CHAT, "chat.create_stream",
      "finish-null", expected_kb_id=NO_FINISH, expected_category=INC, views=_same(events=7)),
    S("chat-finish-absent", "No chunk carries the finish_reason key at all.", CHAT, "chat.create_stream",
      "finish-absent", expected_kb_id=NO_FINISH, expected_category=INC, views=_same(events=7)),
    S("chat-finish-absent-keyerror", "No finish_reason key; the app parses chunk.to_dict()['choices'][0]"
      "['finish_reason'] by hand and crashes with KeyError on the first chunk.", CHAT, "chat.create_stream_dict",
      "finish-absent", expected_kb_id="llm/keyerror-finish-reason-parser", expected_category="client_parser",
      expected_outcome="app_error", expected_terminal_seen=False,
      views=_same(exception="builtins.KeyError", events=1)),
    S("chat-length", "finish_reason length: the token cap stopped the answer.", CHAT, "chat.create_stream", "length",
      request={"max_tokens": 16}, expected_kb_id=LENGTH, expected_category=TRUNC, expected_finish_reason="length",
      views=_same(events=7)),
    S("chat-length-helper", "finish_reason length through the stream() helper: get_final_completion() raises "
      "LengthFinishReasonError.", CHAT, "chat.stream_helper", "length", request={"max_tokens": 16},
      expected_kb_id="llm/structured-output-length-limit-error", expected_category=TRUNC, expected_outcome="error",
      expected_finish_reason="length", views=_same(exception="openai.LengthFinishReasonError", events=7)),
    S("chat-content-filter", "finish_reason content_filter on the raw stream.", CHAT, "chat.create_stream",
      "content-filter", expected_kb_id=FILTER, expected_category="content_filter",
      expected_finish_reason="content_filter", views=_same(events=7)),
    S("chat-content-filter-helper", "finish_reason content_filter through the helper: "
      "ContentFilterFinishReasonError.", CHAT, "chat.stream_helper", "content-filter", expected_kb_id=FILTER,
      expected_category="content_filter", expected_outcome="error", expected_finish_reason="content_filter",
      views=_same(exception="openai.ContentFilterFinishReasonError", events=7)),
    S("chat-tool-calls-truncated", "Tool-call arguments cut by the token cap but reported as finish_reason "
      "tool_calls; usage.completion_tokens == max_tokens.", CHAT, "chat.create_stream", "tool-calls",
      params={"truncated": 1, "n": 3}, request={"max_tokens": 16},
      expected_kb_id="llm/tool-call-truncated-misreported", expected_category=TRUNC,
      expected_finish_reason="tool_calls", views=_same(events=6)),
    # ---------------------------------------------------------------- Chat Completions: in-band errors
    S("chat-error-event", "data: {\"error\": {...}} after 3 chunks on an HTTP 200 stream.", CHAT,
      "chat.create_stream", "error-event", params={"after": 3}, expected_kb_id=SSE_ERR, expected_category=INC,
      expected_outcome="error_event", expected_terminal_seen=False, views=_same(exception="openai.APIError", events=3)),
    S("chat-error-event-named", "event: error + data: {\"error\": {...}} after 3 chunks.", CHAT,
      "chat.create_stream", "error-event", params={"after": 3, "named": 1}, expected_kb_id=SSE_ERR,
      expected_category=INC, expected_outcome="error_event", expected_terminal_seen=False,
      views=_same(exception="openai.APIError", events=3)),
    S("chat-error-event-bare", "event: error with a bare error object (no \"error\" key): the SDK yields one bogus "
      "chunk with no choices and raises nothing.", CHAT, "chat.create_stream", "error-event",
      params={"after": 3, "shape": "bare"}, expected_kb_id=SSE_ERR, expected_category=INC,
      expected_outcome="error_event", expected_terminal_seen=False, views=_same(events=4)),
    S("chat-in-band-error", "HTTP 200 whose only event is an error object (bad request in-band), then [DONE].",
      CHAT, "chat.create_stream", "error-event",
      params={"after": 0, "done": 1, "code": "400", "type": "BadRequestError",
              "message": "The model is not multimodal. Please remove image inputs."},
      expected_kb_id="llm/in-band-error-on-http-200", expected_category="client_misuse",
      expected_outcome="error_event", expected_terminal_seen=False, views=_same(exception="openai.APIError", events=0)),
    # ---------------------------------------------------------------- Chat Completions: HTTP errors
    S("chat-429", "HTTP 429 rate_limit_exceeded with retry-after-ms on every attempt: RateLimitError after 3 "
      "attempts.", CHAT, "chat.create_stream", "status",
      params={"status": 429, "retry_after_ms": 20}, max_retries=2, expected_attempts=3,
      expected_kb_id="llm/rate-limit-exceeded", expected_category="rate_limit",
      expected_outcome="http_error", expected_terminal_seen=False, views=_same(exception="openai.RateLimitError",
                                                                               events=0)),
    S("chat-500", "HTTP 500 on every attempt (1 retry).", CHAT, "chat.create_stream", "status",
      params={"status": 500, "retry_after_ms": 20}, max_retries=1, expected_attempts=2,
      expected_kb_id="llm/server-error-before-stream", expected_category="server_error",
      expected_outcome="http_error", expected_terminal_seen=False,
      views=_same(exception="openai.InternalServerError", events=0)),
    S("chat-502", "HTTP 502 with an nginx HTML page from a gateway.", CHAT, "chat.create_stream", "status",
      params={"status": 502}, expected_kb_id=PROXY, expected_category=INC, expected_outcome="http_error",
      expected_terminal_seen=False, views=_same(exception="openai.InternalServerError", events=0)),
    S("chat-524", "Cloudflare 524 HTML page before any chunk, retried once.", CHAT, "chat.create_stream", "status",
      params={"status": 524, "retry_after_ms": 20}, max_retries=1, expected_attempts=2, expected_kb_id=PROXY,
      expected_category=INC, expected_outcome="http_error", expected_terminal_seen=False,
      views=_same(exception="openai.InternalServerError", events=0)),
    S("chat-429-retry-after-long", "HTTP 429 with Retry-After: 200. 3.x (and 2.54) give up at once; 1.x retries "
      "with its own backoff.", CHAT, "chat.create_stream", "status", params={"status": 429, "retry_after": 200},
      max_retries=1, expected_kb_id="llm/rate-limit-exceeded", expected_category="rate_limit",
      expected_outcome="http_error", expected_terminal_seen=False,
      views={"v3": AppView(exception="openai.RateLimitError", events=0, attempts=1),
             "v2": AppView(exception="openai.RateLimitError", events=0, attempts=1),
             "legacy": AppView(exception="openai.RateLimitError", events=0, attempts=2)}),
    S("chat-503-no-retry", "HTTP 503 with x-should-retry: false: not retried.", CHAT, "chat.create_stream", "status",
      params={"status": 503, "should_retry": "false"}, max_retries=2,
      expected_kb_id="llm/server-error-before-stream", expected_category="server_error",
      expected_outcome="http_error", expected_terminal_seen=False,
      views=_same(exception="openai.InternalServerError", events=0)),
    S("chat-drop-once", "Connection closed before the status line once (stale keep-alive), then a healthy "
      "stream: the SDK retries.", CHAT, "chat.create_stream", "drop", params={"times": 1}, max_retries=2,
      expected_attempts=2, healthy=True, expected_finish_reason="stop", views=_same(events=7)),
    S("chat-drop", "Connection closed before the status line on every attempt (1 retry): APIConnectionError "
      "'Server disconnected without sending a response.'", CHAT, "chat.create_stream", "drop",
      max_retries=1, expected_attempts=2, expected_kb_id="llm/server-disconnected-before-response",
      expected_category="server_error", expected_outcome="transport_error", expected_terminal_seen=False,
      views={"v3": AppView(exception=CONN3, cause="httpx2.RemoteProtocolError", events=0),
             "legacy": AppView(exception=CONN3, cause="httpx.RemoteProtocolError", events=0)}),
    S("chat-request-cut", "Non-streamed completion whose Content-Length body is cut: raised inside the retry loop, "
      "so unlike a stream it is retried.", CHAT, "chat.create", "cut", max_retries=1, expected_attempts=2,
      expected_kb_id=PEER, expected_category=INC, expected_outcome="transport_error", expected_terminal_seen=False,
      views={"v3": AppView(exception=CONN3, cause="httpx2.RemoteProtocolError"),
             "legacy": AppView(exception=CONN3, cause="httpx.RemoteProtocolError")}),
    # ---------------------------------------------------------------- Chat Completions: parser traps / client side
    S("chat-empty-choices-usage", "include_usage adds a final chunk with choices [] and usage; the app reads "
      "chunk.choices[0] and crashes with IndexError.", CHAT, "chat.create_stream_index0", "usage",
      request={"stream_options": {"include_usage": True}}, expected_kb_id="llm/empty-choices-chunk-indexerror",
      expected_category="client_parser", expected_outcome="app_error", expected_terminal_seen=False,
      expected_finish_reason="stop", views=_same(exception="builtins.IndexError", events=8)),
    S("chat-empty-data", "An empty `data:` frame after 2 chunks (gateway keep-alive) crashes the SDK's JSON parse.",
      CHAT, "chat.create_stream", "empty-data", params={"after": 2},
      expected_kb_id="llm/sse-empty-data-frame-jsondecodeerror", expected_category="client_parser",
      expected_outcome="error", expected_terminal_seen=False,
      views=_same(exception="json.decoder.JSONDecodeError", events=2)),
    S("chat-early-break", "The app breaks out after 5 of 200 chunks and closes the stream: the server sees the "
      "hang-up at once.", CHAT, "chat.create_stream_break", "healthy", params={"n": 200, "gap": 0.01},
      app={"break_after": 5}, expected_kb_id="llm/client-abort-or-early-break", expected_category="client_cancel",
      expected_outcome="cancelled", expected_terminal_seen=False, views=_same(events=5)),
    # ---------------------------------------------------------------- Responses
    S("responses-healthy", "Healthy Responses stream: created ... 9 deltas ... response.completed.", RESP,
      "responses.create_stream", "healthy", healthy=True, expected_status="completed", views=_same(events=17)),
    S("responses-healthy-helper", "Healthy stream through responses.stream() and get_final_response().", RESP,
      "responses.stream_helper", "healthy", healthy=True, expected_status="completed", views=_same(events=17)),
    S("responses-cut", "FIN after 6 events, before response.completed.", RESP, "responses.create_stream", "cut",
      params={"after": 6}, expected_kb_id=PEER, expected_category=INC, expected_outcome="transport_error",
      expected_terminal_seen=False, views=_transport("RemoteProtocolError", 6)),
    S("responses-cut-helper", "FIN after 6 events with the responses.stream() helper.", RESP,
      "responses.stream_helper", "cut", params={"after": 6}, expected_kb_id=PEER, expected_category=INC,
      expected_outcome="transport_error", expected_terminal_seen=False,
      views=_transport("RemoteProtocolError", 6)),
    S("responses-no-terminal", "Body ends cleanly after the done events but without response.completed.", RESP,
      "responses.create_stream", "no-terminal", expected_kb_id=RESP_CLOSED, expected_category=INC,
      expected_outcome="no_terminal", expected_terminal_seen=False, views=_same(events=16)),
    S("responses-no-terminal-helper", "Clean end without response.completed: get_final_response() raises "
      "RuntimeError.", RESP, "responses.stream_helper", "no-terminal", expected_kb_id=RESP_CLOSED,
      expected_category=INC, expected_outcome="error", expected_terminal_seen=False,
      views=_same(exception=RESP_CLOSED_MSG, events=16)),
    S("responses-incomplete", "response.incomplete with incomplete_details.reason max_output_tokens.", RESP,
      "responses.create_stream", "incomplete", request={"max_output_tokens": 16}, expected_kb_id=LENGTH,
      expected_category=TRUNC, expected_status="incomplete", views=_same(events=17)),
    S("responses-incomplete-helper", "response.incomplete through the helper: get_final_response() raises "
      "RuntimeError although the terminal event arrived.", RESP, "responses.stream_helper", "incomplete",
      request={"max_output_tokens": 16}, expected_kb_id=LENGTH, expected_category=TRUNC, expected_outcome="error",
      expected_status="incomplete", views=_same(exception=RESP_CLOSED_MSG, events=17)),
    S("responses-content-filter", "response.incomplete with reason content_filter.", RESP,
      "responses.create_stream", "content-filter", expected_kb_id=FILTER, expected_category="content_filter",
      expected_status="incomplete", views=_same(events=17)),
    S("responses-failed", "response.failed (error.code server_error) after 2 deltas: the raw loop ends normally.",
      RESP, "responses.create_stream", "failed", expected_kb_id=RESP_SWALLOWED, expected_category="server_error",
      expected_status="failed", views=_same(events=7)),
    S("responses-error-flat", "Documented flat `error` event after 6 events: yielded as a typed event, no "
      "exception.", RESP, "responses.create_stream", "error-event", params={"after": 6, "shape": "flat"},
      expected_kb_id=RESP_SWALLOWED, expected_category="server_error", expected_outcome="error_event",
      expected_terminal_seen=False, views=_same(events=7)),
    S("responses-error-nested", "`error` event with a nested error object: APIError mid-stream.", RESP,
      "responses.create_stream", "error-event", params={"after": 6, "shape": "nested"}, expected_kb_id=SSE_ERR,
      expected_category=INC, expected_outcome="error_event", expected_terminal_seen=False,
      views=_same(exception="openai.APIError", events=6)),
    S("responses-stall-timeout", "1.0 s stall after 6 events against a 0.3 s read timeout.", RESP,
      "responses.create_stream", "stall", params={"after": 6, "stall": 1.0}, timeout=0.3, expected_kb_id=STALL,
      expected_category=INC, expected_outcome="timeout", expected_terminal_seen=False,
      views=_transport("ReadTimeout", 6)),
    S("responses-background-healthy", "background=true, then retrieve() until completed (2 polls).", RESP,
      "responses.background_poll", "slow-done", params={"polls": 2}, healthy=True, expected_status="completed",
      app={"poll_interval": 0.02}),
    S("responses-background-stuck", "Background job stays queued forever; the app's poll loop gives up at its "
      "deadline.", RESP, "responses.background_poll", "stuck", params={"status": "queued"},
      expected_kb_id="llm/responses-background-poll-or-resume-failure", expected_category=HANG,
      expected_terminal_seen=False, expected_status="queued", gives_up=True,
      app={"poll_interval": 0.02, "max_polls": 8}),
    S("responses-background-stuck-in-progress", "Background job stays in_progress forever; the app's poll loop "
      "gives up after 8 polls.", RESP, "responses.background_poll", "stuck", params={"status": "in_progress"},
      expected_kb_id="llm/responses-background-poll-or-resume-failure", expected_category=HANG,
      expected_terminal_seen=False, expected_status="in_progress", gives_up=True,
      app={"poll_interval": 0.02, "max_polls": 8}),
    # ---------------------------------------------------------------- Assistants runs: streams
    S("runs-stream-healthy", "Healthy run stream via runs.stream(event_handler=...), until_done(), get_final_run().",
      RUNS, "runs.stream_handler", "healthy", healthy=True, expected_status="completed", views=_same(events=15)),
    S("runs-create-stream-healthy", "Healthy raw runs.create(stream=True).", RUNS, "runs.create_stream", "healthy",
      healthy=True, expected_status="completed", views=_same(events=15)),
    S("runs-stream-cut", "FIN after 7 events with the AssistantEventHandler: 3.x re-raises the raw httpx2 error.",
      RUNS, "runs.stream_handler", "cut", params={"after": 7}, expected_kb_id=PEER, expected_category=INC,
      expected_outcome="transport_error", expected_terminal_seen=False,
      views=_transport("RemoteProtocolError", 7, helper_unwraps=True)),
    S("runs-create-stream-cut", "FIN after 7 events on raw runs.create(stream=True).", RUNS, "runs.create_stream",
      "cut", params={"after": 7}, expected_kb_id=PEER, expected_category=INC, expected_outcome="transport_error",
      expected_terminal_seen=False, views=_transport("RemoteProtocolError", 7)),
    S("runs-stream-no-terminal", "Run stream ends (with event: done) without any terminal thread.run.* event: "
      "get_final_run() quietly returns the in_progress run.", RUNS, "runs.stream_handler", "no-terminal",
      params={"done": 1}, expected_kb_id=NO_RUN_TERMINAL, expected_category=INC, expected_outcome="no_terminal",
      expected_terminal_seen=False, expected_status="in_progress", views=_same(events=14)),
    S("runs-stream-stall-timeout", "1.0 s stall after 7 events, 0.3 s timeout: on_timeout, then the raw "
      "httpx2.ReadTimeout on 3.x.", RUNS, "runs.stream_handler", "stall", params={"after": 7, "stall": 1.0},
      timeout=0.3, expected_kb_id=STALL, expected_category=INC, expected_outcome="timeout",
      expected_terminal_seen=False, views=_transport("ReadTimeout", 7, helper_unwraps=True)),
    S("runs-stream-requires-action", "Stream ends at thread.run.requires_action and the app never submits "
      "tool outputs.", RUNS, "runs.stream_handler", "requires-action",
      expected_kb_id="llm/assistants-stream-ends-at-requires-action", expected_category="client_misuse",
      expected_status="requires_action", views=_same(events=6)),
    S("runs-submit-tool-outputs-stream", "requires_action, then submit_tool_outputs_stream() completes the run.",
      RUNS, "runs.submit_tool_outputs_stream", "requires-action", healthy=True, expected_status="completed",
      views=_same(events=14)),
    S("runs-requires-action-expired", "Tool outputs submitted after the run expired: 400 'Runs in status "
      "\"expired\" do not accept tool outputs.'", RUNS, "runs.submit_tool_outputs_late", "requires-action",
      params={"expire": 1}, expected_kb_id="llm/assistants-requires-action-expired", expected_category=HANG,
      expected_outcome="http_error", expected_terminal_seen=False, expected_status="requires_action",
      views=_same(exception="openai.BadRequestError", events=6)),
    S("runs-stream-failed", "thread.run.failed with last_error server_error: returned, not raised.", RUNS,
      "runs.stream_handler", "failed", params={"code": "server_error"},
      expected_kb_id="llm/assistants-run-failed-server-error", expected_category="server_error",
      expected_status="failed", views=_same(events=4)),
    S("runs-stream-failed-rate-limit", "thread.run.failed with last_error rate_limit_exceeded.", RUNS,
      "runs.stream_handler", "failed", params={"code": "rate_limit_exceeded"},
      expected_kb_id="llm/assistants-rate-limit-during-run", expected_category="rate_limit",
      expected_status="failed", views=_same(events=4)),
    S("runs-stream-expired", "thread.run.expired.", RUNS, "runs.stream_handler", "expired",
      expected_kb_id="llm/assistants-requires-action-expired", expected_category=HANG, expected_status="expired",
      views=_same(events=4)),
    S("runs-stream-cancelled", "thread.run.cancelling then thread.run.cancelled (someone cancelled the run).",
      RUNS, "runs.stream_handler", "cancelled", expected_kb_id="llm/client-abort-or-early-break",
      expected_category="client_cancel", expected_status="cancelled", views=_same(events=5)),
    S("runs-stream-incomplete", "thread.run.incomplete (max_completion_tokens) after a thread.message.incomplete.",
      RUNS, "runs.stream_handler", "incomplete", params={"reason": "max_completion_tokens"},
      expected_kb_id="llm/assistants-run-incomplete-misread-as-cut", expected_category=TRUNC,
      expected_status="incomplete", views=_same(events=15)),
    S("runs-stream-error-event", "event: error with the documented flat shape mid-stream: the helper swallows it "
      "(mis-parsed event) and get_final_run() returns the in_progress run.", RUNS, "runs.stream_handler",
      "error-event", params={"after": 9, "shape": "flat"}, expected_kb_id=SSE_ERR, expected_category=INC,
      expected_outcome="error_event", expected_terminal_seen=False, expected_status="in_progress",
      views=_same(events=10)),
    S("runs-stream-error-nested", "event: error with {\"error\": {...}} mid-stream: APIError.", RUNS,
      "runs.stream_handler", "error-event", params={"after": 9, "shape": "nested"}, expected_kb_id=SSE_ERR,
      expected_category=INC, expected_outcome="error_event", expected_terminal_seen=False,
      views=_same(exception="openai.APIError", events=9)),
    S("runs-active-run", "400 'Thread ... already has an active run ...' on run create (not retried).", RUNS,
      "runs.stream_handler", "active-run", expected_kb_id="llm/assistants-active-run-blocks-thread",
      expected_category=HANG, expected_outcome="http_error", expected_terminal_seen=False, max_retries=2,
      views=_same(exception="openai.BadRequestError", events=0)),
    S("runs-create-429", "429 rate_limit_exceeded on run creation, 3 attempts.", RUNS, "runs.create_and_poll",
      "status", params={"status": 429, "retry_after_ms": 20}, max_retries=2, expected_attempts=3,
      expected_kb_id="llm/assistants-rate-limit-during-run", expected_category="rate_limit",
      expected_outcome="http_error", expected_terminal_seen=False,
      views=_same(exception="openai.RateLimitError")),
    # ---------------------------------------------------------------- Assistants runs: polling
    S("runs-poll-429", "Run created, but every status GET of create_and_poll() answers 429 (retried once each): "
      "RateLimitError out of the poll loop.", RUNS, "runs.create_and_poll", "poll-status",
      params={"status": 429, "retry_after_ms": 20}, max_retries=1,
      expected_kb_id="llm/assistants-rate-limit-during-run", expected_category="rate_limit",
      expected_outcome="http_error", expected_terminal_seen=False, views=_same(exception="openai.RateLimitError"),
      app={"poll_interval_ms": 20}),
    S("runs-poll-healthy", "create_and_poll(): queued, in_progress, completed.", RUNS, "runs.create_and_poll",
      "slow-done", params={"polls": 2}, healthy=True, expected_status="completed", app={"poll_interval_ms": 20}),
    S("runs-poll-stuck-queued", "create_and_poll() on a run that stays queued: the SDK loop never ends; the "
      "driver abandons it at its deadline.", RUNS, "runs.create_and_poll", "stuck", params={"status": "queued"},
      expected_kb_id=POLL_FOREVER, expected_category=HANG, expected_outcome="cancelled",
      expected_terminal_seen=False, expected_status="queued", gives_up=True,
      app={"poll_interval_ms": 20, "deadline": 0.4}),
    S("runs-poll-stuck-in-progress", "The app's own retrieve() loop on a run stuck in_progress, bounded by its "
      "deadline.", RUNS, "runs.manual_poll", "stuck", params={"status": "in_progress"},
      expected_kb_id=POLL_FOREVER, expected_category=HANG, expected_terminal_seen=False,
      expected_status="in_progress", gives_up=True, app={"poll_interval": 0.02, "max_polls": 8}),
    # ---------------------------------------------------------------- Vector stores
    S("vs-file-healthy", "vector_stores.files.create_and_poll(): in_progress, then completed.", "vector_stores.files",
      "vector_stores.files.create_and_poll", "slow-done", params={"polls": 2}, healthy=True,
      expected_status="completed", app={"poll_interval_ms": 20}),
    S("vs-file-stuck", "A vector store file that stays in_progress: create_and_poll() never returns.",
      "vector_stores.files", "vector_stores.files.create_and_poll", "stuck",
      expected_kb_id="llm/vector-store-indexing-stuck-or-not-ready", expected_category=HANG,
      expected_outcome="cancelled", expected_terminal_seen=False, expected_status="in_progress", gives_up=True,
      app={"poll_interval_ms": 20, "deadline": 0.4}),
    S("vs-batch-stuck", "A file batch that stays in_progress: file_batches.create_and_poll() never returns.",
      "vector_stores.file_batches", "vector_stores.file_batches.create_and_poll", "stuck",
      expected_kb_id="llm/vector-store-indexing-stuck-or-not-ready", expected_category=HANG,
      expected_outcome="cancelled", expected_terminal_seen=False, expected_status="in_progress", gives_up=True,
      app={"poll_interval_ms": 20, "deadline": 0.4}),
)

# OpenAI-compatible providers' own stream shapes (Azure, vLLM, Ollama, DeepSeek, OpenRouter, ...) and stops.
SCENARIOS += provider_scenarios()

# Scenarios the simulator and drivers support but the catalogue-wide hook / classifier tests do not yet:
# - vs-store-*: the hook does not record ``vector_stores.create`` / ``.retrieve`` (span contract §4.1
#   ``vector_stores``) yet;
# - responses-background-resume: a recovered cut; the hook's view of the resume GET stream is not settled;
# - runs-tool-outputs-and-poll: the classifier labels the first call's requires_action poll as
#   llm/assistants-requires-action-expired although the tool outputs follow at once on the same run.
# The simulator tests run them; move them into SCENARIOS once those parts handle them.
EXTRA_SCENARIOS: tuple[Scenario, ...] = (
    S("responses-background-resume", "Background stream cut after 6 events; the app resumes with "
      "responses.stream(response_id=..., starting_after=5) and gets the rest, then response.completed.", RESP,
      "responses.background_resume", "cut", params={"after": 6}, expected_kb_id=PEER, expected_category=INC,
      expected_status="completed", views=_same(events=17)),
    S("runs-tool-outputs-and-poll", "create_and_poll() stops at requires_action; submit_tool_outputs_and_poll() "
      "then polls the run to completed.", RUNS, "runs.submit_tool_outputs_and_poll", "requires-action",
      params={"polls": 1}, healthy=True, expected_status="completed", app={"poll_interval_ms": 20}),
    S("vs-store-not-ready", "A vector store created with one file never gets ready: the app's retrieve() loop "
      "watches status / file_counts.in_progress and gives up after 8 polls.", "vector_stores",
      "vector_stores.manual_poll", "stuck", expected_kb_id="llm/vector-store-indexing-stuck-or-not-ready",
      expected_category=HANG, expected_terminal_seen=False, expected_status="in_progress", gives_up=True,
      app={"poll_interval": 0.02, "max_polls": 8}),
    S("vs-store-ready", "A vector store created with one file becomes ready after 2 polls.", "vector_stores",
      "vector_stores.manual_poll", "slow-done", params={"polls": 2}, healthy=True, expected_status="completed",
      app={"poll_interval": 0.02, "max_polls": 8}),
)

# Issue 13's scenarios live in a module of their own (it imports the helpers above).
from .scenarios_evidence import evidence_scenarios  # noqa: E402

SCENARIOS = SCENARIOS + evidence_scenarios()
SCENARIOS = SCENARIOS + ANTHROPIC_SCENARIOS  # simulator/anthropic_scenarios.py
BY_NAME: dict[str, Scenario] = {s.name: s for s in SCENARIOS + EXTRA_SCENARIOS}
_CATEGORY.update({s.expected_kb_id: s.expected_category for s in SCENARIOS + EXTRA_SCENARIOS
                  if s.expected_kb_id and s.expected_category})
_CATEGORY[STALL] = INC


def get(name: str) -> Scenario:
    """The scenario called ``name`` (KeyError lists the known names)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(BY_NAME)}") from None


def with_params(scenario: Scenario, **params: Any) -> Scenario:
    """A copy with some fault parameters changed (benchmarks scale ``n`` and ``gap``)."""
    return replace(scenario, params={**dict(scenario.params), **params})
