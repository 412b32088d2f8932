"""Confidence ordering between failure modes that look alike from the outside."""
from __future__ import annotations

import pytest
from classifier_records import NOW, call, chat_stream, cut, open_call

from streamtriage.classifier.engine import Engine
from streamtriage.classifier.record import ChildEvent, ChildPoll
from streamtriage.classifier.thresholds import Thresholds


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(thresholds=Thresholds({"stall_ms": 1000, "poll_hang_ms": 2000, "requires_action_ms": 2000}))


def conf(engine: Engine, rec: dict, kb_id: str) -> float:
    for m in engine.matches(rec):
        if m.entry.id == kb_id:
            return m.confidence
    return 0.0


def test_healthy_stream_gets_no_label(engine: Engine) -> None:
    assert engine.classify(call(chat_stream())) is None


@pytest.mark.parametrize("module", ["httpx", "httpx2"])
def test_server_cut_is_peer_closed_on_both_transports(engine: Engine, module: str) -> None:
    label = engine.classify(call(cut(module)))
    assert label is not None and label.kb_id == "llm/peer-closed-incomplete-chunked-read"
    assert label.confidence >= 0.85
    assert any("mid-body" in e for e in label.evidence)


def test_early_client_break_vs_server_cut(engine: Engine) -> None:
    brk = call(chat_stream(**{
        "streamtriage.outcome": "cancelled", "streamtriage.cancel.reason": "close",
        "streamtriage.terminal.seen": False, "gen_ai.response.finish_reasons": [""],
        "streamtriage.event.count": 5, "streamtriage.delta.count": 5}))
    srv = call(cut("httpx2"))
    assert engine.classify(brk).kb_id == "llm/client-abort-or-early-break"
    assert engine.classify(srv).kb_id == "llm/peer-closed-incomplete-chunked-read"
    # each look-alike scores its own cause above the other one
    assert conf(engine, brk, "llm/client-abort-or-early-break") > conf(engine, brk, "llm/peer-closed-incomplete-chunked-read")
    assert conf(engine, srv, "llm/peer-closed-incomplete-chunked-read") > conf(engine, srv, "llm/client-abort-or-early-break")


def test_length_vs_network_cut(engine: Engine) -> None:
    length = call(chat_stream(**{"gen_ai.response.finish_reasons": ["length"], "gen_ai.usage.output_tokens": 256}))
    # a cut that happened to land after many tokens: no finish reason, no [DONE]
    net = call(cut("httpx2", **{"gen_ai.usage.output_tokens": 250}))
    ll, nl = engine.classify(length), engine.classify(net)
    assert ll.kb_id == "llm/finish-reason-length-output-cap" and ll.category == "truncation"
    assert nl.kb_id == "llm/peer-closed-incomplete-chunked-read" and nl.category == "incomplete_stream"
    assert conf(engine, length, "llm/peer-closed-incomplete-chunked-read") == 0.0
    assert conf(engine, net, "llm/finish-reason-length-output-cap") == 0.0
    assert ll.confidence >= 0.9


def test_length_evidence_strength_orders_confidence(engine: Engine) -> None:
    at_cap = call(chat_stream(**{"gen_ai.response.finish_reasons": ["length"], "gen_ai.usage.output_tokens": 256}))
    no_usage = call(chat_stream(**{"gen_ai.response.finish_reasons": ["length"]}, **{}))
    no_usage.update(output_ratio=None)
    assert engine.classify(at_cap).confidence > engine.classify(no_usage).confidence


def test_mid_body_cut_is_surer_than_clean_end_without_terminal(engine: Engine) -> None:
    # a close-delimited body that just ends: no exception, no finish_reason, no [DONE]
    clean = call(chat_stream(**{"streamtriage.outcome": "no_terminal", "streamtriage.terminal.seen": False,
                                "gen_ai.response.finish_reasons": [""]}))
    lab_clean = engine.classify(clean)
    lab_cut = engine.classify(call(cut("httpx")))
    assert lab_clean is not None and lab_clean.kb_id == "llm/peer-closed-incomplete-chunked-read"
    assert lab_cut.kb_id == lab_clean.kb_id
    assert lab_cut.confidence > lab_clean.confidence + 0.1


def test_clean_end_after_finish_reason_without_done_is_healthy(engine: Engine) -> None:
    rec = call(chat_stream(**{"streamtriage.outcome": "no_terminal", "streamtriage.terminal.seen": False}))
    assert engine.classify(rec) is None


def test_done_without_finish_reason_is_the_compat_server_entry(engine: Engine) -> None:
    rec = call(chat_stream(**{"gen_ai.response.finish_reasons": [""]}))
    assert engine.classify(rec).kb_id == "llm/chat-stream-ended-without-finish-reason"


def test_failed_call_without_entry_is_unclassified_with_coarse_category(engine: Engine) -> None:
    r429 = call(chat_stream(**{"streamtriage.outcome": "http_error", "http.response.status_code": 429,
                               "streamtriage.exception.type": "openai.RateLimitError", "streamtriage.event.count": 0,
                               "streamtriage.delta.count": 0, "streamtriage.terminal.seen": False}))
    lab = engine.classify(r429)
    assert lab is not None and lab.kb_id == "llm/rate-limit-exceeded" and lab.category == "rate_limit"
    # what no entry explains still gets a category: from the status, else from the outcome
    for status, outcome, category in [(418, "http_error", "client_misuse"), (599, "http_error", "server_error"),
                                      (None, "error", "client_parser"), (None, "error_event", "server_error")]:
        attrs = {"streamtriage.outcome": outcome, "streamtriage.exception.type": "openai.APIStatusError",
                 "streamtriage.event.count": 0, "streamtriage.delta.count": 0, "streamtriage.terminal.seen": False}
        if status:
            attrs["http.response.status_code"] = status
        rec = call(chat_stream(**attrs))
        rec["http_status"] = status  # the healthy base carries 200
        lab = Engine.unclassified(rec)
        assert lab is not None and lab.kb_id == "" and lab.category == category, (status, outcome)


def _run_polls(statuses_ms: list[tuple[str, float]]) -> list[ChildPoll]:
    """Polls at the given times (ms before NOW), each 10 ms long."""
    out = []
    for i, (status, ago) in enumerate(statuses_ms):
        start = NOW - int(ago * 1e6)
        out.append(ChildPoll(status=status, attempt=i + 1, start_ns=start, end_ns=start + 10_000_000,
                             api="assistants.runs", object_id="run_1"))
    return out


def test_requires_action_unanswered_vs_run_still_working(engine: Engine) -> None:
    waiting = open_call(polls=_run_polls([("in_progress", 5000), ("requires_action", 4000),
                                          ("requires_action", 3000), ("requires_action", 2500)]), started_ms_ago=5000)
    working = open_call(polls=_run_polls([("queued", 1500), ("in_progress", 1000), ("in_progress", 500)]),
                        started_ms_ago=1500)
    lw = engine.classify(waiting)
    assert lw is not None and lw.kb_id == "llm/assistants-requires-action-expired"
    assert engine.classify(working) is None
    assert conf(engine, waiting, "llm/assistants-requires-action-expired") > conf(
        engine, waiting, "llm/assistants-poll-loop-no-deadline")


def test_run_stuck_in_progress_is_a_poll_hang_not_requires_action(engine: Engine) -> None:
    stuck = open_call(polls=_run_polls([("queued", 6000), ("in_progress", 5000), ("in_progress", 1000),
                                        ("in_progress", 100)]), started_ms_ago=6000)
    lab = engine.classify(stuck)
    assert lab is not None and lab.kb_id == "llm/assistants-poll-loop-no-deadline"
    assert all(a["kb_id"] != "llm/assistants-requires-action-expired" for a in lab.alternatives)


def test_open_stream_stall_then_threshold(engine: Engine) -> None:
    evs = [ChildEvent(type="chat.completion.chunk", index=0, gap_ms=100, end_ns=NOW - 3_000_000_000,
                      api="chat.completions"),
           ChildEvent(type="chat.completion.chunk", index=1, count=3, gap_ms=50, end_ns=NOW - 2_000_000_000)]
    stalled = open_call(events=evs, started_ms_ago=3500)
    lab = engine.classify(stalled)
    assert lab is not None and lab.kb_id == "llm/stream-stall-no-idle-timeout" and stalled["outcome"] == "open"
    fresh = open_call(events=[ChildEvent(type="chat.completion.chunk", index=0, end_ns=NOW - 100_000_000,
                                         api="chat.completions")], started_ms_ago=500)
    assert engine.classify(fresh) is None


def test_alternatives_carry_the_runner_up(engine: Engine) -> None:
    lab = engine.classify(call(cut("httpx")))
    ids = [a["kb_id"] for a in lab.alternatives]
    assert "llm/server-worker-killed-mid-stream" in ids
    assert all(a["confidence"] <= lab.confidence for a in lab.alternatives)
