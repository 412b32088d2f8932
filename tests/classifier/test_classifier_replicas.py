"""Two classifiers on one store split the work: each call is classified by exactly one replica, and
together they label exactly what one classifier alone labels."""
from __future__ import annotations

import pytest
from classifier_spans import SpanMaker, now_ns, open_db

from streamtriage.classifier.replicas import Replicas, shard_clause
from streamtriage.classifier.service import Classifier
from streamtriage.classifier.thresholds import Thresholds

MS = 1_000_000
CHAT = {"streamtriage.api": "chat.completions", "streamtriage.call.mode": "stream",
        "gen_ai.request.model": "gpt-4o-mini"}


def _spans(sm: SpanMaker, calls: int) -> None:
    t0 = now_ns() - 20_000 * MS
    for i in range(calls):
        start = t0 + i * 10 * MS
        call = sm.call_span("chat gpt-4o-mini", start)
        for j in range(3):
            sm.event(call, "chat.completion.chunk", j, start + (j + 1) * MS, start + (j + 1) * MS)
        if i % 3 == 0:  # healthy
            attrs = {"streamtriage.outcome": "completed", "streamtriage.terminal.seen": True,
                     "streamtriage.terminal.event": "[DONE]", "gen_ai.response.finish_reasons": ["stop"]}
        else:  # cut mid-stream
            attrs = {"streamtriage.outcome": "transport_error", "streamtriage.terminal.seen": False,
                     "streamtriage.exception.type": "openai.APIConnectionError",
                     "streamtriage.exception.chain": ["openai.APIConnectionError", "httpx2.RemoteProtocolError"],
                     "http.response.status_code": 200}
        sm.end_call(call, {**CHAT, **attrs, "streamtriage.request.fingerprint": f"{i:016x}",
                           "streamtriage.event.count": 3, "streamtriage.delta.count": 3}, start + 5 * MS)


def _labels(client) -> dict[tuple[str, str], str]:
    rows = client.query("SELECT TraceId, SpanId, KbId FROM streamtriage_labels FINAL WHERE IsDeleted = 0").result_rows
    return {(t, s): k for t, s, k in rows}


@pytest.fixture
def two_dbs(chdb_path, fresh_database):
    shared, alone = open_db(chdb_path, fresh_database), open_db(chdb_path, fresh_database + "_alone")
    yield (shared, fresh_database), (alone, fresh_database + "_alone")
    for client, name in ((shared, fresh_database), (alone, fresh_database + "_alone")):
        client.command(f"DROP DATABASE IF EXISTS `{name}`")


def test_two_replicas_split_the_calls_and_agree_with_one(two_dbs) -> None:
    (shared, db), (alone, db_alone) = two_dbs
    sm = SpanMaker()
    _spans(sm, 60)
    spans = sm.exporter.get_finished_spans()
    assert sm.flush(shared) > 0
    for span in spans:  # the same spans into the second database
        sm.exporter.export([span])
    sm.flush(alone)

    single = Classifier(alone, db_alone, thresholds=Thresholds({}), slack_s=5)
    single.run_once()
    expected = _labels(alone)
    assert len(expected) == 40  # the 40 cut calls; the 20 healthy ones get none

    a = Classifier(shared, db, thresholds=Thresholds({}), slack_s=5)
    b = Classifier(shared, db, thresholds=Thresholds({}), slack_s=5)
    ra, rb = Replicas(shared, db, "replica-a"), Replicas(shared, db, "replica-b")
    ra.heartbeat()
    rb.heartbeat()
    a.set_shard(*ra.heartbeat())
    b.set_shard(*rb.heartbeat())
    assert {a.shard, b.shard} == {(0, 2), (1, 2)}
    got_a = {(x["trace_id"], x["span_id"]) for x in a.run_once()["labels"]}
    got_b = {(x["trace_id"], x["span_id"]) for x in b.run_once()["labels"]}
    assert got_a and got_b, "both replicas did part of the work"
    assert not got_a & got_b, "no call was classified by both"
    assert got_a | got_b == set(expected)
    assert _labels(shared) == expected
    rows = shared.query("SELECT count() FROM streamtriage_labels").result_rows[0][0]
    assert rows == len(expected), "each call labelled once (one row each, no duplicate writes)"


def test_a_departed_replica_hands_its_share_over(two_dbs) -> None:
    (shared, db), _ = two_dbs
    sm = SpanMaker()
    _spans(sm, 30)
    sm.flush(shared)
    a = Classifier(shared, db, thresholds=Thresholds({}), slack_s=5)
    ra, rb = Replicas(shared, db, "replica-a", ttl_s=30), Replicas(shared, db, "replica-b", ttl_s=30)
    rb.heartbeat(now_s=1.0)  # b was live long ago and stopped
    a.set_shard(*ra.heartbeat())
    assert a.shard == (0, 1), "a replica whose heartbeat expired no longer owns a share"
    a.run_once()
    assert len(_labels(shared)) == 20


def test_one_replica_needs_no_clause() -> None:
    assert shard_clause(0, 1) == ""
    assert "% 3 = 2" in shard_clause(2, 3)
