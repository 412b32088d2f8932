"""Records assembled from stored spans (chDB), labels written, re-labelled and withdrawn."""
from __future__ import annotations

import json

import pytest
from classifier_spans import SpanMaker, now_ns, open_db

from streamtriage.classifier.service import Classifier
from streamtriage.classifier.thresholds import Thresholds

MS = 1_000_000
CHAT = {"streamtriage.api": "chat.completions", "streamtriage.call.mode": "stream",
        "gen_ai.request.model": "gpt-4o-mini", "streamtriage.request.fingerprint": "0123456789abcdef"}


@pytest.fixture
def db(chdb_path, fresh_database):
    client = open_db(chdb_path, fresh_database)
    yield client, fresh_database
    client.command(f"DROP DATABASE IF EXISTS `{fresh_database}`")


def labels(client):
    rows = client.query("SELECT * FROM streamtriage_labels FINAL WHERE IsDeleted = 0 ORDER BY Timestamp").result_rows
    names = client.query("SELECT * FROM streamtriage_labels LIMIT 0").column_names
    return [dict(zip(names, r, strict=False)) for r in rows]


def make(client, db_name, **th):
    return Classifier(client, db_name, thresholds=Thresholds(th or {"stall_ms": 1000}), slack_s=5)


def test_open_stall_is_labelled_then_withdrawn_when_the_call_completes(db) -> None:
    client, name = db
    sm = SpanMaker()
    t0 = now_ns() - 5000 * MS
    call = sm.call_span("chat gpt-4o-mini", t0)
    sm.event(call, "chat.completion.chunk", 0, t0 + 100 * MS, t0 + 100 * MS, **{
        "streamtriage.api": "chat.completions", "gen_ai.request.model": "gpt-4o-mini",
        "streamtriage.request.fingerprint": "0123456789abcdef"})
    sm.event(call, "chat.completion.chunk", 1, t0 + 150 * MS, t0 + 300 * MS, **{"streamtriage.event.count": 4})
    sm.flush(client)
    clf = make(client, name)
    first = clf.run_once()
    assert first["incremental"]["open"] == 1
    rows = labels(client)
    assert len(rows) == 1 and rows[0]["KbId"] == "llm/stream-stall-no-idle-timeout" and rows[0]["IsOpen"] == 1
    assert rows[0]["SpanId"] == call.get_span_context().span_id.to_bytes(8, "big").hex()
    # the stream resumes and finishes cleanly: the call span arrives and the label is withdrawn
    sm.event(call, "chat.completion.chunk", 5, now_ns() - 100 * MS, now_ns() - 90 * MS)
    sm.event(call, "[DONE]", 6, now_ns() - 80 * MS, now_ns() - 80 * MS, **{"streamtriage.terminal": True})
    sm.end_call(call, {**CHAT, "streamtriage.outcome": "completed", "streamtriage.terminal.seen": True,
                       "streamtriage.terminal.event": "[DONE]", "gen_ai.response.finish_reasons": ["stop"],
                       "streamtriage.event.count": 7, "streamtriage.delta.count": 5}, now_ns() - 70 * MS)
    sm.flush(client)
    second = clf.run_once()
    assert second["incremental"]["withdrawn"] == 1
    assert labels(client) == []
    history = client.query("SELECT KbId, IsDeleted FROM streamtriage_labels ORDER BY Version").result_rows
    assert history == [("llm/stream-stall-no-idle-timeout", 0), ("llm/stream-stall-no-idle-timeout", 1)]
    assert clf.open_keys == set()


def test_cut_is_labelled_with_evidence_and_observed_fix_rate(db) -> None:
    client, name = db
    sm = SpanMaker()
    t0 = now_ns() - 3000 * MS
    cut = sm.call_span("chat gpt-4o-mini", t0)
    for i in range(3):
        sm.event(cut, "chat.completion.chunk", i, t0 + (i + 1) * 50 * MS, t0 + (i + 1) * 50 * MS)
    sm.end_call(cut, {**CHAT, "streamtriage.outcome": "transport_error", "streamtriage.terminal.seen": False,
                      "streamtriage.exception.type": "openai.APIConnectionError",
                      "streamtriage.exception.chain": ["openai.APIConnectionError", "httpx2.RemoteProtocolError"],
                      "streamtriage.exception.message": "Connection error.", "http.response.status_code": 200,
                      "streamtriage.event.count": 3, "streamtriage.delta.count": 3}, t0 + 200 * MS)
    sm.flush(client)
    clf = make(client, name)
    clf.run_once()
    (row,) = labels(client)
    assert row["KbId"] == "llm/peer-closed-incomplete-chunked-read" and row["Category"] == "incomplete_stream"
    ev = json.loads(row["Evidence"])
    assert ev["facts"]["outcome"] == "transport_error" and ev["matched"]
    assert row["FixRatePrior"] == pytest.approx(0.75) and row["FixRateObserved"] is None
    assert row["Confidence"] >= 0.85
    # the retry with the same fingerprint completes: the next labels report the observed fix rate
    ok = sm.call_span("chat gpt-4o-mini", t0 + 1000 * MS)
    sm.end_call(ok, {**CHAT, "streamtriage.outcome": "completed", "streamtriage.terminal.seen": True,
                     "gen_ai.response.finish_reasons": ["stop"]}, t0 + 1500 * MS)
    cut2 = sm.call_span("chat gpt-4o-mini", t0 + 2000 * MS)
    sm.end_call(cut2, {**CHAT, "streamtriage.request.fingerprint": "fedcba9876543210",
                       "streamtriage.outcome": "transport_error", "streamtriage.terminal.seen": False,
                       "streamtriage.exception.type": "httpx.RemoteProtocolError",
                       "streamtriage.event.count": 2, "streamtriage.delta.count": 2}, t0 + 2200 * MS)
    sm.flush(client)
    clf.run_once()
    rows = labels(client)
    assert len(rows) == 2
    newest = rows[-1]
    assert newest["EvidenceCount"] == 2 and newest["FixRateObserved"] == pytest.approx(1.0)
    assert clf.labels.kb_stats()["llm/peer-closed-incomplete-chunked-read"].observed_fix_rate == pytest.approx(0.5)


def test_background_poll_hang_labelled_while_polling_then_relabelled(db) -> None:
    client, name = db
    sm = SpanMaker()
    t0 = now_ns() - 4000 * MS
    create = sm.call_span("responses gpt-4o", t0)
    sm.end_call(create, {"streamtriage.api": "responses", "streamtriage.call.mode": "background",
                         "streamtriage.outcome": "completed", "streamtriage.terminal.seen": False,
                         "streamtriage.object.id": "resp_1", "streamtriage.status": "queued",
                         "streamtriage.request.fingerprint": "00000000000000aa"}, t0 + 50 * MS)
    for i in range(4):
        sm.poll(create, "responses", "resp_1", "queued", i + 1, t0 + (i + 1) * 900 * MS)
    sm.flush(client)
    clf = make(client, name, background_ms=2000)
    clf.run_once()
    (row,) = labels(client)
    assert row["KbId"] == "llm/responses-background-poll-or-resume-failure" and row["Category"] == "polling_hang"
    # the job finally completes: the next poll says so and the label is withdrawn
    sm.poll(create, "responses", "resp_1", "completed", 5, now_ns() - 10 * MS)
    sm.flush(client)
    res = clf.run_once()
    assert res["incremental"]["withdrawn"] == 1 and labels(client) == []
