"""Observed fix rate = retry success within a window: the same request (fingerprint) from the same service
completed cleanly soon after the failed call. Shown with its sample size."""
from __future__ import annotations

import pytest
from classifier_spans import SpanMaker, now_ns, open_db

from streamtriage.classifier.kb import default_kb
from streamtriage.classifier.render import entry_json, entry_markdown, fix_rate_text
from streamtriage.classifier.service import Classifier
from streamtriage.classifier.thresholds import Thresholds

MS = 1_000_000
PEER = "llm/peer-closed-incomplete-chunked-read"


@pytest.fixture
def db(chdb_path, fresh_database):
    client = open_db(chdb_path, fresh_database)
    yield client, fresh_database
    client.command(f"DROP DATABASE IF EXISTS `{fresh_database}`")


def _attrs(fp: str, **kw) -> dict:
    return {"streamtriage.api": "chat.completions", "streamtriage.call.mode": "stream",
            "gen_ai.request.model": "gpt-4o-mini", "streamtriage.request.fingerprint": fp, **kw}


def cut(sm: SpanMaker, t0: int, fp: str) -> None:
    span = sm.call_span("chat gpt-4o-mini", t0)
    sm.end_call(span, _attrs(fp, **{"streamtriage.outcome": "transport_error", "streamtriage.terminal.seen": False,
                                    "streamtriage.exception.type": "httpx.RemoteProtocolError",
                                    "http.response.status_code": 200, "streamtriage.event.count": 3,
                                    "streamtriage.delta.count": 3}), t0 + 200 * MS)


def ok(sm: SpanMaker, t0: int, fp: str, finish: str = "stop") -> None:
    span = sm.call_span("chat gpt-4o-mini", t0)
    sm.end_call(span, _attrs(fp, **{"streamtriage.outcome": "completed", "streamtriage.terminal.seen": True,
                                    "streamtriage.terminal.event": "[DONE]",
                                    "gen_ai.response.finish_reasons": [finish]}), t0 + 300 * MS)


def test_only_a_clean_retry_within_the_window_from_the_same_service_is_a_fix(db) -> None:
    client, name = db
    sm, other = SpanMaker(), SpanMaker(service="another-app")
    t0 = now_ns() - 3600_000 * MS
    window_ms = 600_000
    cut(sm, t0, "a" * 16)                             # retried 30 s later, cleanly: fixed
    ok(sm, t0 + 30_000 * MS, "a" * 16)
    cut(sm, t0 + 1000 * MS, "b" * 16)                 # retried only after the window: not a fix
    ok(sm, t0 + 1000 * MS + (window_ms + 60_000) * MS, "b" * 16)
    cut(sm, t0 + 2000 * MS, "c" * 16)                 # the "retry" came from another service
    ok(other, t0 + 5000 * MS, "c" * 16)
    cut(sm, t0 + 3000 * MS, "d" * 16)                 # the retry was truncated: not a success
    ok(sm, t0 + 6000 * MS, "d" * 16, finish="length")
    cut(sm, t0 + 4000 * MS, "e" * 16)                 # never retried
    sm.flush(client)
    other.flush(client)
    clf = Classifier(client, name, thresholds=Thresholds(), slack_s=5, fix_window_s=window_ms / 1000)
    clf.full()
    stats = clf.labels.kb_stats()[PEER]
    assert (stats.evidence_count, stats.sample, stats.fixed) == (5, 5, 1)
    assert stats.observed_fix_rate == pytest.approx(0.2)
    # the next labels carry the rate with its sample
    cut(sm, now_ns() - 1000 * MS, "f" * 16)
    sm.flush(client)
    clf.full()
    row = client.query("SELECT FixRateObserved, FixRateSample FROM streamtriage_labels FINAL "
                       "WHERE IsDeleted = 0 AND Fingerprint = {fp:String}", parameters={"fp": "f" * 16}).result_rows
    assert row == [(pytest.approx(0.2), 5)]
    entry = default_kb().get(PEER)
    assert entry_json(entry, stats=stats)["observed"]["fix_rate_sample"] == 5
    assert fix_rate_text(stats.observed_fix_rate, stats.sample) == "0.20 (n=5)" in entry_markdown(entry, stats=stats)
