"""User knowledge-base directories, fixtures, ``kb test`` and feedback application, without a collector."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from streamtriage.classifier.engine import Engine
from streamtriage.classifier.explain import explain
from streamtriage.classifier.feedback import FeedbackSet, Verdict
from streamtriage.classifier.fixtures import load_cases, record_from_fields
from streamtriage.classifier.kb import KbError, default_kb
from streamtriage.classifier.user_kb import describe_kb, load_with_user, overridden
from streamtriage.cli import app as cli_app
from tests.classifier.classifier_records import call, chat_stream, cut

PEER = "llm/peer-closed-incomplete-chunked-read"


def _entry(kb_id: str, **changes: Any) -> dict[str, Any]:
    base = {"id": kb_id, "category": "infra_misconfig", "title": "Ours", "title_zh": "我们的", "status": "stable",
            "fix_rate": 0.5,
            "confidence": 0.5, "root_cause": {"en": "Our proxy.", "zh": "我们的代理。"},
            "rule": {"when": {"outcome": "transport_error", "terminal_seen": False}, "base": 0.95, "priority": 5}}
    base.update(changes)
    return base


def _kb_dir(tmp_path: Path, *entries: dict[str, Any], name: str = "ours.yaml") -> Path:
    d = tmp_path / "kb"
    d.mkdir(exist_ok=True)
    (d / name).write_text(yaml.safe_dump({"rule_language": 1, "entries": list(entries)}, allow_unicode=True))
    return d


def test_user_entries_extend_and_override_by_id(tmp_path: Path) -> None:
    d = _kb_dir(tmp_path, _entry(PEER, title="Our LB"), _entry("llm/our-gateway-cut", title="Gateway"))
    kb = load_with_user(d)
    shipped = default_kb()
    assert len(kb) == len(shipped) + 1
    assert kb.get(PEER).title == "Our LB" and shipped.get(PEER).title != "Our LB"  # type: ignore[union-attr]
    assert list(kb.entries)[:len(shipped)] == list(shipped.entries)  # an override keeps the rule's place
    assert overridden(kb) == [PEER]
    assert "1 added, 1 overriding" in describe_kb(d)[0]
    assert Engine(kb).classify(call(cut())).kb_id in (PEER, "llm/our-gateway-cut")  # type: ignore[union-attr]


@pytest.mark.parametrize("bad, says", [
    (_entry("llm/x", colour="red"), "unknown key(s) colour"),
    (_entry("llm/x", rule={"when": {"outcom": "x"}}), "unknown match key 'outcom'"),
    (_entry("Not An Id"), "must look like llm/some-slug"),
    (_entry("llm/x", distinguish_from=["llm/nowhere"]), "unknown entry llm/nowhere"),
])
def test_user_entries_go_through_the_strict_loader(tmp_path: Path, bad: dict[str, Any], says: str) -> None:
    with pytest.raises(KbError, match=says.replace("(", r"\(").replace(")", r"\)")):
        load_with_user(_kb_dir(tmp_path, bad))


def test_missing_empty_or_duplicate_user_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KbError, match="is not a directory"):
        load_with_user(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KbError, match="no \\*.yaml"):
        load_with_user(tmp_path / "empty")
    d = _kb_dir(tmp_path, _entry("llm/x"))
    (d / "more.yaml").write_text(yaml.safe_dump({"rule_language": 1, "entries": [_entry("llm/x")]}))
    with pytest.raises(KbError, match="duplicate id llm/x"):
        load_with_user(d)


def test_serve_refuses_a_broken_user_directory_in_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli_app, ["serve", "--store", f"chdb://{tmp_path / 'data'}", "--port", "1",
                                       "--kb-dir", str(_kb_dir(tmp_path, _entry("llm/x", colour="red")))])
    assert res.exit_code == 2 and "unknown key(s) colour" in res.output
    assert not (tmp_path / "data").exists()


def test_fixture_files_are_strict(tmp_path: Path) -> None:
    f = tmp_path / "f.yaml"
    for items, says in [({"id": PEER}, "YAML list"), ([{"id": PEER, "expect": "maybe", "record": {}}], "expect"),
                        ([{"id": PEER, "expect": "match", "record": {"outcom": "x"}}], "unknown record field"),
                        ([{"id": PEER, "expect": "match"}], "exactly one of"),
                        ([{"id": PEER, "expect": "match", "record": {}, "extra": 1}], "unknown key")]:
        f.write_text(yaml.safe_dump(items))
        with pytest.raises(KbError, match=says):
            load_cases(f)


def test_explain_names_the_failed_condition() -> None:
    engine = Engine(default_kb())
    rec = call(chat_stream())  # healthy
    verdicts = {v.kb_id: v for v in explain(engine, rec)}
    assert not any(v.matched for v in verdicts.values())
    peer = verdicts[PEER].failed
    assert any(f.startswith("when.") and "record has" in f for f in peer), peer
    assert {v.kb_id for v in explain(engine, call(cut())) if v.matched} >= {PEER}


def test_kb_test_cli_passes_fails_and_explains(tmp_path: Path) -> None:
    d = _kb_dir(tmp_path, _entry("llm/our-gateway-cut"))
    (d / "fixtures").mkdir()
    cases = [{"id": "llm/our-gateway-cut", "expect": "match", "name": "cut",
              "record": {"outcome": "transport_error", "terminal_seen": False}},
             {"id": "llm/our-gateway-cut", "expect": "no_match", "name": "fine",
              "record": {"outcome": "completed", "terminal_seen": True}}]
    (d / "fixtures" / "ours.yaml").write_text(yaml.safe_dump(cases))
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["kb", "test", str(d)])
    assert ok.exit_code == 0 and "2 passed, 0 failed" in ok.output, ok.output
    cases[1]["expect"] = "match"
    (d / "fixtures" / "ours.yaml").write_text(yaml.safe_dump(cases))
    bad = runner.invoke(cli_app, ["kb", "test", str(d)])
    assert bad.exit_code == 1 and "FAIL" in bad.output and "when.outcome: wants 'transport_error'" in bad.output
    assert runner.invoke(cli_app, ["kb", "test", str(tmp_path / "nothing.yaml")]).exit_code == 2
    export = tmp_path / "not-an-export.json"
    export.write_text(json.dumps({"trace_id": "x"}))
    res = runner.invoke(cli_app, ["kb", "test", str(export)])
    assert res.exit_code == 2 and "no `spans` list" in res.output


def test_feedback_overrides_confirms_withdraws_and_mutes() -> None:
    kb = default_kb()
    rec = call(cut())
    rule_label = Engine(kb).classify(rec)
    assert rule_label is not None and rule_label.kb_id == PEER
    key = (rec["trace_id"], rec["span_id"])
    right = "llm/proxy-timeout-cuts-stream"
    fb = FeedbackSet({key: Verdict("wrong", PEER, right, "qa")})
    lb = fb.apply(rec, Engine(kb).classify(rec), kb)
    assert lb is not None and (lb.kb_id, lb.source, lb.rule_kb_id, lb.confidence) == (right, "feedback", PEER, 1.0)
    assert lb.alternatives[0]["kb_id"] == PEER and "marked wrong by qa" in lb.evidence[0]
    assert FeedbackSet({key: Verdict("wrong", PEER, "")}).apply(rec, Engine(kb).classify(rec), kb) is None
    confirmed = FeedbackSet({key: Verdict("confirm", PEER, "")}).apply(rec, Engine(kb).classify(rec), kb)
    assert confirmed is not None and confirmed.source == "confirmed"
    muted = FeedbackSet(mutes={("svc", PEER)}).apply(rec, Engine(kb).classify(rec), kb)
    assert muted is not None and muted.muted and muted.kb_id == PEER
    other = FeedbackSet(mutes={("another-svc", PEER)}).apply(rec, Engine(kb).classify(rec), kb)
    assert other is not None and not other.muted


def test_record_fields_fill_the_rest_empty() -> None:
    rec = record_from_fields({"outcome": "completed", "finish_reasons": ["length"]}, "here")
    assert rec["finish_reason"] == "length" and rec["events"] == [] and rec["open"] is False


def test_the_documented_example_directory_passes_its_fixtures() -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "user-kb"
    res = CliRunner().invoke(cli_app, ["kb", "test", str(example), "--json"])
    assert res.exit_code == 0, res.output
    results = json.loads(res.output)
    assert len(results) == 2 and all(r["ok"] for r in results)
    assert {r["expect"] for r in results} == {"match", "no_match"}
