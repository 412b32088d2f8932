"""Every knowledge-base entry with a rule ships records it must label and look-alikes it must not
(classifier/kb/fixtures/<slug>.yaml), run through the fast engine; the check fails when one is missing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from streamtriage.classifier.kb import default_kb
from streamtriage.classifier.kb_fixtures import (
    FIXTURES_DIR,
    FixtureError,
    check_fixtures,
    fixture_record,
    load_fixtures,
)

PEER = "llm/peer-closed-incomplete-chunked-read"


@pytest.fixture
def fixtures_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "fixtures"
    shutil.copytree(FIXTURES_DIR, dest)
    return dest


def test_every_entry_with_a_rule_has_fixtures_and_they_hold() -> None:
    kb = default_kb()
    fixtures = load_fixtures()
    assert {e.id for e in kb.rules} <= set(fixtures)
    assert all(fx.match and fx.not_match for fx in fixtures.values())
    assert check_fixtures(kb) == []


def test_an_entry_without_fixtures_fails_the_check(fixtures_copy: Path) -> None:
    (fixtures_copy / "context-length-exceeded.yaml").unlink()
    problems = check_fixtures(default_kb(), fixtures_copy)
    assert problems == ["llm/context-length-exceeded: no fixtures (fixtures/context-length-exceeded.yaml)"]


def test_an_entry_without_look_alikes_fails_the_check(fixtures_copy: Path) -> None:
    path = fixtures_copy / "invalid-api-key.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["not_match"] = []
    path.write_text(yaml.safe_dump(doc))
    problems = check_fixtures(default_kb(), fixtures_copy)
    assert problems == ["llm/invalid-api-key: needs at least one `match` and one `not_match` record"]


def test_a_case_the_engine_gets_wrong_is_reported(fixtures_copy: Path) -> None:
    path = fixtures_copy / "peer-closed-incomplete-chunked-read.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["match"].append(doc["not_match"][0])  # the proxy-limit look-alike, now claimed as a peer cut
    path.write_text(yaml.safe_dump(doc))
    (problem,) = check_fixtures(default_kb(), fixtures_copy)
    assert problem.startswith("peer-closed-incomplete-chunked-read.yaml match") and "proxy-timeout" in problem


def test_fixtures_are_built_like_stored_calls() -> None:
    rec = fixture_record({"api": "chat.completions", "mode": "stream", "outcome": "transport_error",
                          "ttfe_ms": 20_000.0, "duration_ms": 100_300.0, "event_count": 40})
    assert rec["after_first_ms"] == pytest.approx(80_300.0)  # derived, as for a stored call
    with pytest.raises(FixtureError, match="derived facts"):
        fixture_record({"api": "chat.completions", "after_first_ms": 5.0})
    opened = fixture_record({"open": True, "api": "chat.completions", "duration_ms": 140_000.0, "idle_ms": 130_000.0,
                             "events": ["chat.completion.chunk", "chat.completion.chunk"]})
    assert opened["outcome"] == "open" and opened["idle_ms"] == pytest.approx(130_000.0)
