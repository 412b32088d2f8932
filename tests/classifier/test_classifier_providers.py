"""Finish-reason policy and OpenAI-compatible providers' own stops (classifier/kb/providers.yaml).

A finish reason the product does not know is an incident that names the value, unless the knowledge
base's allowlist says it is benign; a provider stop with an entry of its own gets that entry.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from classifier_records import call, chat_stream

from streamtriage.classifier.engine import Engine
from streamtriage.classifier.kb import KbError, default_kb, load_kb

UNKNOWN = "llm/unknown-finish-reason"
DEEPSEEK = "llm/deepseek-insufficient-system-resource"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _finished(reason: str, **extra) -> dict:
    return call(chat_stream(**{"gen_ai.response.finish_reasons": [reason], **extra}))


@pytest.mark.parametrize("reason", ["stop", "tool_calls", "eos", "eos_token"])
def test_known_and_allowlisted_finish_reasons_get_no_incident(engine: Engine, reason: str) -> None:
    assert engine.classify(_finished(reason)) is None


@pytest.mark.parametrize("reason", ["abort", "error", "overloaded_maybe"])
def test_unknown_finish_reason_is_an_incident_naming_the_value(engine: Engine, reason: str) -> None:
    label = engine.classify(_finished(reason))
    assert label is not None and label.kb_id == UNKNOWN and label.category == "truncation"
    assert any(f'finish_reason "{reason}"' in said for said in label.evidence), label.evidence


def test_unknown_finish_reason_on_a_plain_request_too(engine: Engine) -> None:
    rec = call({"streamtriage.api": "chat.completions", "streamtriage.call.mode": "request",
                "streamtriage.outcome": "completed", "streamtriage.terminal.seen": True,
                "gen_ai.response.finish_reasons": ["abort"]})
    label = engine.classify(rec)
    assert label is not None and label.kb_id == UNKNOWN


def test_deepseek_capacity_stop_gets_its_own_entry_over_the_generic_one(engine: Engine) -> None:
    label = engine.classify(_finished("insufficient_system_resource"))
    assert label is not None and label.kb_id == DEEPSEEK and label.category == "server_error"
    assert any('finish_reason "insufficient_system_resource"' in said for said in label.evidence)
    assert [a["kb_id"] for a in label.alternatives] == [UNKNOWN]
    assert label.confidence > label.alternatives[0]["confidence"]


def test_openrouter_error_chunk_beats_the_generic_in_band_error(engine: Engine) -> None:
    rec = call(chat_stream(**{
        "streamtriage.outcome": "error_event", "streamtriage.terminal.seen": False,
        "gen_ai.response.finish_reasons": [""], "streamtriage.delta.count": 3, "streamtriage.event.count": 4,
        "error.type": "openai.APIError", "streamtriage.exception.type": "openai.APIError",
        "streamtriage.exception.message": "Provider disconnected unexpectedly",
        "streamtriage.exception.chain": ["openai.APIError"], "streamtriage.error.code": "server_error"}))
    label = engine.classify(rec)
    assert label is not None and label.kb_id == "llm/openrouter-mid-stream-error"
    assert "llm/sse-error-event-mid-stream" in [a["kb_id"] for a in label.alternatives]
    assert any('"Provider disconnected unexpectedly"' in said for said in label.evidence)


def test_litellm_look_alike_is_documented_without_a_rule() -> None:
    entry = default_kb().get("llm/litellm-filled-finish-reason-stop")
    assert entry is not None and entry.rule is None and entry.data["observable"] == ["server"]
    assert "otel" in " ".join(f.get("code") or "" for f in entry.data["fixes"])
    assert entry.root_cause["zh"].strip()


def test_provider_entries_have_both_languages_and_fixes() -> None:
    providers = [e for e in default_kb() if e.source == "providers.yaml"]
    assert len(providers) >= 4
    for e in providers:
        assert e.root_cause["en"].strip() and e.root_cause["zh"].strip(), e.id
        assert e.data["fixes"] and e.data["evidence"], e.id


def test_says_placeholder_must_name_a_record_field(tmp_path: Path) -> None:
    entry = {"id": "llm/x", "category": "truncation", "title": "t", "title_zh": "标题", "status": "draft",
             "root_cause": {"en": "e", "zh": "中"}, "fix_rate": 0.5, "confidence": 0.5,
             "rule": {"when": {"outcome": "completed"},
                      "evidence": [{"weight": 0.5, "says": "saw {finish_reson}", "match": {"outcome": "completed"}}]}}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump({"rule_language": 1, "entries": [entry]}, allow_unicode=True))
    with pytest.raises(KbError, match="finish_reson"):
        load_kb(path)
