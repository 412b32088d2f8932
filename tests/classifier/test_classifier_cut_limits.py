"""Intermediary limits at production scale: a configured limit judged from the request, and limits
nobody configured inferred from clusters of equal cut durations (SQL over chDB)."""
from __future__ import annotations

import json

import pytest
from classifier_records import call, cut
from classifier_spans import SpanMaker, now_ns, open_db

from streamtriage.classifier.engine import Engine
from streamtriage.classifier.service import Classifier
from streamtriage.classifier.thresholds import Thresholds

MS = 1_000_000
PROXY, PEER = "llm/proxy-timeout-cuts-stream", "llm/peer-closed-incomplete-chunked-read"


def cut_after(duration_ms: float, ttfe_ms: float, **th: float) -> str:
    """Label of a mid-stream cut at ``duration_ms`` from the request, first event at ``ttfe_ms``."""
    rec = call(cut("httpx2", **{"streamtriage.ttfe_ms": ttfe_ms, "streamtriage.event.count": 40}),
               duration_ms=duration_ms)
    label = Engine(thresholds=Thresholds(th)).classify(rec)
    assert label is not None
    return label.kb_id


@pytest.mark.parametrize("ttfe_ms", [0.0, 5_000.0, 20_000.0])
def test_configured_limit_is_judged_from_the_request_whatever_the_first_event(ttfe_ms: float) -> None:
    # production default: 100 s limit, 1 s slack
    assert cut_after(100_300.0, ttfe_ms) == PROXY
    assert cut_after(100_000.0, ttfe_ms) == PROXY          # at the limit
    assert cut_after(99_400.0, ttfe_ms) == PEER            # never before it
    assert cut_after(101_500.0, ttfe_ms) == PEER           # beyond the slack
    # an operator's own 30 s gateway (the case: an 8 s first event, cut at 30.2 s)
    assert cut_after(30_200.0, ttfe_ms + 8_000.0, proxy_limit_ms=30_000) == PROXY
    assert cut_after(29_000.0, ttfe_ms + 8_000.0, proxy_limit_ms=30_000) == PEER


# -- inferred limits (chDB) ----------------------------------------------------------------------------

@pytest.fixture
def db(chdb_path, fresh_database):
    client = open_db(chdb_path, fresh_database)
    yield client, fresh_database
    client.command(f"DROP DATABASE IF EXISTS `{fresh_database}`")


def store_cut(sm: SpanMaker, client, end_ns: int, duration_ms: float, ttfe_ms: float, host: str = "api.example.com",
              api: str = "chat.completions") -> None:
    t0 = end_ns - int(duration_ms * MS)
    span = sm.call_span("chat gpt-4o", t0)
    sm.event(span, "chat.completion.chunk", 0, t0 + int(ttfe_ms * MS), t0 + int(ttfe_ms * MS),
             **{"streamtriage.event.gap_ms": ttfe_ms})
    sm.end_call(span, {"streamtriage.api": api, "streamtriage.call.mode": "stream",
                       "gen_ai.request.model": "gpt-4o", "streamtriage.request.fingerprint": "0123456789abcdef",
                       "server.address": host, "server.port": 443,
                       "streamtriage.outcome": "transport_error", "streamtriage.terminal.seen": False,
                       "streamtriage.exception.type": "openai.APIConnectionError",
                       "streamtriage.exception.chain": ["openai.APIConnectionError", "httpx2.RemoteProtocolError"],
                       "streamtriage.exception.message": "Connection error.", "http.response.status_code": 200,
                       "streamtriage.event.count": 40, "streamtriage.delta.count": 38,
                       "streamtriage.ttfe_ms": ttfe_ms}, end_ns)
    sm.flush(client)


def labels(client) -> list[dict]:
    res = client.query("SELECT * FROM streamtriage_labels FINAL WHERE IsDeleted = 0 ORDER BY Timestamp")
    return [dict(zip(res.column_names, r, strict=False)) for r in res.result_rows]


def classifier(client, name) -> Classifier:
    # production thresholds: nothing configured near the 71 s limit of this unknown gateway
    return Classifier(client, name, thresholds=Thresholds(), slack_s=5)


def test_equal_cuts_with_different_first_events_are_an_inferred_limit(db) -> None:
    client, name = db
    sm, end = SpanMaker(), now_ns() - 1000 * MS
    for i, (dur, ttfe) in enumerate([(71_050.0, 400.0), (71_400.0, 6_000.0), (71_200.0, 14_000.0),
                                     (71_700.0, 22_000.0)]):
        store_cut(sm, client, end - i * 2000 * MS, dur, ttfe)
    store_cut(sm, client, end, 71_100.0, 9_000.0, host="other.example.com")  # another server: not in the cluster
    classifier(client, name).full()
    rows = labels(client)
    assert len(rows) == 5
    proxy = [r for r in rows if r["KbId"] == PROXY]
    assert len(proxy) == 4, [(r["KbId"], r["Evidence"]) for r in rows]
    for r in proxy:
        facts = json.loads(r["Evidence"])["facts"]
        assert facts["cut_cluster_size"] == 4 and facts["cut_cluster_limit_ms"] == pytest.approx(71_050.0, abs=1)
        assert any("inferred limit" in m for m in json.loads(r["Evidence"])["matched"])
    assert [r["KbId"] for r in rows if r["KbId"] != PROXY] == [PEER]


def test_scattered_cuts_and_equal_first_events_stay_peer_cuts(db) -> None:
    client, name = db
    sm, end = SpanMaker(), now_ns() - 1000 * MS
    for i, (dur, ttfe) in enumerate([(12_000.0, 300.0), (33_500.0, 5_000.0), (47_200.0, 200.0), (71_000.0, 9_000.0),
                                     (88_000.0, 20_000.0)]):
        store_cut(sm, client, end - i * 2000 * MS, dur, ttfe)
    # same duration *and* same first event: a fixed amount of output, not a clock counted from the request
    for i in range(4):
        store_cut(sm, client, end - i * 3000 * MS, 55_000.0 + 100 * i, 2_000.0 + 50 * i, host="steady.example.com")
    classifier(client, name).full()
    rows = labels(client)
    assert len(rows) == 9 and {r["KbId"] for r in rows} == {PEER}


def test_confidence_grows_with_the_cluster_and_old_members_are_relabelled(db) -> None:
    client, name = db
    sm, end = SpanMaker(), now_ns() - 60_000 * MS
    clf = classifier(client, name)
    store_cut(sm, client, end, 64_000.0, 500.0)
    store_cut(sm, client, end + 1000 * MS, 64_300.0, 8_000.0)
    clf.run_once()
    assert {r["KbId"] for r in labels(client)} == {PEER}  # two equal cuts are not yet a cluster
    store_cut(sm, client, end + 2000 * MS, 64_200.0, 15_000.0)
    clf.run_once()
    rows = labels(client)
    assert {r["KbId"] for r in rows} == {PROXY} and len(rows) == 3  # the earlier two are re-judged too
    small = max(r["Confidence"] for r in rows)
    for i in range(3):
        store_cut(sm, client, end + (3 + i) * 1000 * MS, 64_100.0 + 50 * i, 3_000.0 * (i + 2))
    clf.run_once()
    rows = labels(client)
    assert {r["KbId"] for r in rows} == {PROXY} and len(rows) == 6
    assert min(r["Confidence"] for r in rows) > small
