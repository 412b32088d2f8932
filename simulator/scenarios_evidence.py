"""Scenarios for issue 13: proxy limits counted from the request, and request-level failures.

``scenarios.py`` appends ``evidence_scenarios()`` to ``SCENARIOS``: a list of its own keeps the shared
catalogue file small and merges simple. The scenarios are built in a function, which imports the
catalogue's helpers when called, so importing either module first works. The accuracy test runs
``evidence_run()`` as its ``evidence`` group.

Proxy scenarios use the ``wallclock-cut`` fault with ``first``: the simulated proxy counts ``cut`` seconds
from the request's arrival while the first event comes ``first`` seconds late (a model thinking), as
a real gateway does. ``chat-proxy-limit-*`` are cut at the limit the accuracy run configures (1.5 s);
``chat-unknown-limit-*`` at 2.5 s, a limit nobody configured: only the three together, equal durations
with different first events, reveal it (``classifier/cut_clusters.py``).
"""
from __future__ import annotations

from typing import Any

MODEL_NOT_FOUND = "llm/model-not-found-or-no-access"
INVALID_KEY = "llm/invalid-api-key"
QUOTA = "llm/insufficient-quota"
RATE_LIMIT = "llm/rate-limit-exceeded"
SERVER_5XX = "llm/server-error-before-stream"
CONTEXT = "llm/context-length-exceeded"
DISCONNECTED = "llm/server-disconnected-before-response"
NO_RESPONSE = "llm/no-response-before-read-timeout"
MISCONFIG = "infra_misconfig"


# First-event delays of the unknown-limit trio: spread 1 s, more than twice the accuracy run's slack.
UNKNOWN_LIMIT_FIRSTS = (0.0, 0.5, 1.0)


def evidence_scenarios() -> tuple[Any, ...]:
    """The scenarios (built on call: the catalogue's helpers are defined by then, whichever module came first)."""
    from .scenarios import CHAT, INC, PROXY, RESP, S, _same, _transport

    def http(exception: str) -> dict[str, Any]:
        return _same(exception=exception, events=0)

    def http_kw(kb_id: str, category: str) -> dict[str, Any]:
        return {"expected_kb_id": kb_id, "expected_category": category, "expected_outcome": "http_error",
                "expected_terminal_seen": False}

    return (
        # ---------------------------------------------------------------- proxy limits counted from the request
        S("chat-proxy-limit-slow-first", "A reasoning-style first event 0.6 s late, then chunks every 50 ms; the proxy "
          "cuts 1.5 s after the request arrived (only 0.9 s after the first event).", CHAT, "chat.create_stream",
          "wallclock-cut", params={"n": 60, "gap": 0.05, "cut": 1.5, "first": 0.6}, expected_kb_id=PROXY,
          expected_category=INC, expected_outcome="transport_error", expected_terminal_seen=False,
          views=_transport("RemoteProtocolError", 18)),
        S("responses-proxy-limit-slow-first", "Responses stream whose first event comes 0.6 s late; the proxy cuts it "
          "1.5 s after the request arrived.", RESP, "responses.create_stream", "wallclock-cut",
          params={"n": 60, "gap": 0.05, "cut": 1.5, "first": 0.6}, expected_kb_id=PROXY, expected_category=INC,
          expected_outcome="transport_error", expected_terminal_seen=False, views=_transport("RemoteProtocolError", 18)),
        *(S(f"chat-unknown-limit-first-{int(first * 1000)}ms", f"An unconfigured 2.5 s proxy limit counted from the "
            f"request; first event after {first} s. Labelled only through the cluster of equal cut durations.", CHAT,
            "chat.create_stream", "wallclock-cut", params={"n": 80, "gap": 0.05, "cut": 2.5, "first": first},
            expected_kb_id=PROXY, expected_category=INC, expected_outcome="transport_error", expected_terminal_seen=False,
            views=_transport("RemoteProtocolError", round((2.5 - first) / 0.05)))
          for first in UNKNOWN_LIMIT_FIRSTS),
        # ---------------------------------------------------------------- request-level failures
        S("chat-404-model-not-found", "HTTP 404 model_not_found: the model does not exist or the key has no access "
          "(not retried).", CHAT, "chat.create_stream", "status",
          params={"status": 404, "code": "model_not_found", "type": "invalid_request_error",
                  "message": "The model `gpt-9-turbo` does not exist or you do not have access to it."},
          max_retries=2, views=http("openai.NotFoundError"), **http_kw(MODEL_NOT_FOUND, MISCONFIG)),
        S("chat-401-invalid-key", "HTTP 401 invalid_api_key: a wrong or revoked key (not retried).", CHAT,
          "chat.create_stream", "status",
          params={"status": 401, "code": "invalid_api_key", "type": "invalid_request_error",
                  "message": "Incorrect API key provided: sk-test***abcd. You can find your API key at "
                             "https://platform.openai.com/account/api-keys."},
          max_retries=2, views=http("openai.AuthenticationError"), **http_kw(INVALID_KEY, MISCONFIG)),
        S("chat-429-insufficient-quota", "HTTP 429 insufficient_quota on every attempt: billing, not a rate limit; the "
          "SDK still retries it once.", CHAT, "chat.create_stream", "status",
          params={"status": 429, "code": "insufficient_quota", "type": "insufficient_quota", "retry_after_ms": 20,
                  "message": "You exceeded your current quota: please check your plan and billing details."},
          max_retries=1, expected_attempts=2, views=http("openai.RateLimitError"), **http_kw(QUOTA, MISCONFIG)),
        S("chat-400-context-length", "HTTP 400 context_length_exceeded before any token.", CHAT, "chat.create_stream",
          "status", params={"status": 400, "code": "context_length_exceeded", "type": "invalid_request_error",
                            "message": "This model's maximum context length is 128000 tokens. However your messages "
                                       "resulted in 204308 tokens. Please reduce the length of the messages."},
          max_retries=2, views=http("openai.BadRequestError"), **http_kw(CONTEXT, "client_misuse")),
        # ---------------------------------------------------------------- entries that had no scenario
        S("chat-serverless-504", "The app's own serverless route times out: 504 FUNCTION_INVOCATION_TIMEOUT (JSON "
          "body, not retried).", CHAT, "chat.create_stream", "status",
          params={"status": 504, "body": "json", "code": "FUNCTION_INVOCATION_TIMEOUT", "type": "server_error",
                  "message": "An error occurred with your deployment FUNCTION_INVOCATION_TIMEOUT"},
          views=http("openai.InternalServerError"),
          **http_kw("llm/serverless-function-timeout-cuts-stream", INC)),
        S("chat-engine-crash", "A self-hosted engine dies mid-stream: in-band error 'EngineCore encountered an issue' "
          "after 3 chunks.", CHAT, "chat.create_stream", "error-event",
          params={"after": 3, "code": "internal_error",
                  "message": "EngineCore encountered an issue. See stack trace for the root cause."},
          expected_kb_id="llm/self-hosted-engine-crash-mid-stream", expected_category=INC,
          expected_outcome="error_event", expected_terminal_seen=False,
          views=_same(exception="openai.APIError", events=3)),
        S("chat-json-whitespace-runaway", "JSON mode: 600 tokens that carry two bytes of text, finish_reason length.",
          CHAT, "chat.create_stream", "length", params={"n": 2, "text": "{}"},
          request={"max_tokens": 600, "response_format": {"type": "json_object"},
                   "stream_options": {"include_usage": True}},
          expected_kb_id="llm/json-mode-whitespace-runaway", expected_category="truncation",
          expected_finish_reason="length", views=_same(events=5)),
        S("chat-reasoning-exhausts-budget", "A reasoning model spends all 16 output tokens thinking: no visible "
          "text, finish_reason length.", CHAT, "chat.create_stream", "length", params={"n": 0, "reasoning": 16},
          request={"max_tokens": 16, "stream_options": {"include_usage": True}},
          expected_kb_id="llm/reasoning-tokens-exhaust-output-budget", expected_category="truncation",
          expected_finish_reason="length", views=_same(events=3)),
        S("chat-proxy-buffered", "A buffering proxy: nothing for 2.3 s, then the whole answer in one burst.", CHAT,
          "chat.create_stream", "stall-headers", params={"stall": 2.3, "n": 8}, timeout=5.0,
          expected_kb_id="llm/proxy-buffering-sse", expected_category="infra_misconfig",
          expected_finish_reason="stop", views=_same(events=10)),
        S("responses-500-before-stream", "Responses: HTTP 500 server_error on every attempt (1 retry), before any "
          "event.", RESP, "responses.create_stream", "status", params={"status": 500, "retry_after_ms": 20},
          max_retries=1, expected_attempts=2, views=http("openai.InternalServerError"),
          **http_kw(SERVER_5XX, "server_error")),

    )

# Catalogue scenarios issue 13 changed (a proxy cut now counted from the request; failures that had no
# entry before; a cut the new request-error rules must leave alone).
CHANGED_IN_CATALOGUE: tuple[str, ...] = (
    "chat-wallclock-cut", "chat-cut-fin", "chat-429", "chat-429-retry-after-long", "chat-500", "chat-503-no-retry",
    "chat-drop", "chat-stall-headers", "chat-request-cut")


def evidence_run() -> tuple[str, ...]:
    """The accuracy run's ``evidence`` group: these scenarios and the catalogue's that issue 13 changed."""
    return tuple(s.name for s in evidence_scenarios()) + CHANGED_IN_CATALOGUE
