"""Every knowledge-base entry with a rule ships calls its rule must match and look-alikes it must not
(classifier/kb/fixtures/<slug>.yaml), run through the fast engine; the check fails when one is missing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from streamtriage.classifier.fixtures import load_cases, record_from_call, shipped_problems
from streamtriage.classifier.kb import KB_DIR, KbError, default_kb

FIXTURES = KB_DIR / "fixtures"


@pytest.fixture
def fixtures_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, dest)
    return dest


def test_every_entry_with_a_rule_has_fixtures_and_they_hold() -> None:
    kb = default_kb()
    assert {p.stem for p in FIXTURES.glob("*.yaml")} >= {e.id.split("/", 1)[1] for e in kb.rules}
    assert shipped_problems(kb) == []


def test_an_entry_without_fixtures_fails_the_check(fixtures_copy: Path) -> None:
    (fixtures_copy / "context-length-exceeded.yaml").unlink()
    assert shipped_problems(default_kb(), fixtures_copy) == [
        "llm/context-length-exceeded: no match and no no_match fixture (fixtures/context-length-exceeded.yaml)"]


def test_an_entry_without_look_alikes_fails_the_check(fixtures_copy: Path) -> None:
    path = fixtures_copy / "invalid-api-key.yaml"
    path.write_text(yaml.safe_dump([c for c in yaml.safe_load(path.read_text()) if c["expect"] == "match"]))
    assert shipped_problems(default_kb(), fixtures_copy) == [
        "llm/invalid-api-key: no no_match fixture (fixtures/invalid-api-key.yaml)"]


def test_a_case_the_engine_gets_wrong_is_reported(fixtures_copy: Path) -> None:
    path = fixtures_copy / "proxy-timeout-cuts-stream.yaml"
    cases = yaml.safe_load(path.read_text())
    early = next(c for c in cases if c["expect"] == "no_match" and "before the configured limit" in c["name"])
    cases.append({**early, "expect": "match"})  # a cut before the limit claimed as the proxy's
    path.write_text(yaml.safe_dump(cases))
    (problem,) = shipped_problems(default_kb(), fixtures_copy)
    assert "proxy-timeout-cuts-stream.yaml" in problem and "expect match" in problem


def test_call_cases_are_built_like_stored_calls(tmp_path: Path) -> None:
    rec = record_from_call({"api": "chat.completions", "mode": "stream", "outcome": "transport_error",
                            "ttfe_ms": 20_000.0, "duration_ms": 100_300.0, "event_count": 40}, "here")
    assert rec["after_first_ms"] == pytest.approx(80_300.0)  # derived, as for a stored call
    with pytest.raises(KbError, match="derived facts"):
        record_from_call({"api": "chat.completions", "after_first_ms": 5.0}, "here")
    opened = record_from_call({"open": True, "api": "chat.completions", "duration_ms": 140_000.0,
                               "idle_ms": 130_000.0, "events": ["chat.completion.chunk", "chat.completion.chunk"]},
                              "here")
    assert opened["outcome"] == "open" and opened["idle_ms"] == pytest.approx(130_000.0)
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump([{"id": "llm/x", "expect": "match", "call": {"api": "chat.completions"},
                                  "record": {"api": "chat.completions"}}]))
    with pytest.raises(KbError, match="exactly one of"):
        load_cases(f)
