"""The match language and the KB loader: every key compiles as documented, unknown keys are errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streamtriage.classifier.kb import KbError, load_kb
from streamtriage.classifier.matchers import Compiler, MatchError
from streamtriage.classifier.thresholds import DEFAULTS, ThresholdError, Thresholds

C = Compiler(set(DEFAULTS))
TH = Thresholds({"stall_ms": 1000}).for_api("chat.completions")
REC = {
    "api": "chat.completions", "outcome": "transport_error", "delta_count": 3, "event_count": 4, "idle_ms": 1500.0,
    "exception_type": "openai.APIConnectionError", "exception_message": "Connection error.",
    "exception_chain": ["openai.APIConnectionError", "httpx2.RemoteProtocolError", "h11._util.RemoteProtocolError"],
    "events": ["chat.completion.chunk", "error"], "finish_reasons": ["", "stop"], "finish_reason": "",
    "poll_statuses": [], "app_exception_type": None, "http_status": 200, "terminal_seen": False,
    "duration_ms": 300.0,
}


def m(spec, rec=REC) -> bool:
    return C.compile(spec)(rec, TH)


@pytest.mark.parametrize("spec,want", [
    ({"outcome": "transport_error"}, True),
    ({"outcome": ["timeout", "transport_error"]}, True),
    ({"outcome": {"ne": "transport_error"}}, False),
    ({"delta_count": {"gt": 2, "lte": 3}}, True),
    ({"idle_ms": {"gt": "$stall_ms"}}, True),
    ({"idle_ms": {"gt": "$poll_hang_ms"}}, False),
    ({"duration_ms": {"near": [310, 20]}}, True),
    ({"duration_ms": {"near": [400, 20]}}, False),
    ({"duration_ms": {"near": [290, 20]}}, True),  # near: either side
    ({"duration_ms": {"reached": [290, 20]}}, True),  # reached: at the value or after it
    ({"duration_ms": {"reached": [300, 0]}}, True),
    ({"duration_ms": {"reached": [310, 20]}}, False),  # seen before the limit: not this limit
    ({"duration_ms": {"reached": [250, 20]}}, False),
    ({"finish_reasons": "stop"}, True),
    ({"finish_reason": ""}, True),
    ({"app_exception_type": {"exists": False}}, True),
    ({"exception_message": {"matches": "^Conn"}}, True),
    ({"api": {"glob": "chat.*"}}, True),
    ({"exception": {"class": "RemoteProtocolError"}}, True),            # anywhere in the chain, any module
    ({"exception": {"raised": "RemoteProtocolError"}}, False),          # only the outermost
    ({"exception": {"raised": "openai.APIConnectionError"}}, True),
    ({"exception": {"module": "httpx*"}}, True),                        # httpx or httpx2
    ({"exception": {"module": "requests"}}, False),
    ({"exception": True}, True),
    ({"app_exception": False}, True),
    ({"events": {"contains": ["error"], "missing": ["[DONE]"], "last": "err*", "first": "chat.*"}}, True),
    ({"events": {"count": {"gte": 4}}}, True),
    ({"any": [{"outcome": "timeout"}, {"http_status": 200}]}, True),
    ({"all": [{"outcome": "timeout"}, {"http_status": 200}]}, False),
    ({"not": {"outcome": "timeout"}}, True),
])
def test_matchers(spec, want) -> None:
    assert m(spec) is want


def test_same_rule_matches_httpx_and_httpx2_chains() -> None:
    legacy = dict(REC, exception_type="httpx.RemoteProtocolError", exception_chain=["httpx.RemoteProtocolError",
                                                                                     "httpcore.RemoteProtocolError"])
    spec = {"exception": {"class": "RemoteProtocolError", "module": ["httpx", "httpx2"]}}
    assert m(spec) and m(spec, legacy)


def test_missing_facts_never_match_comparisons() -> None:
    assert not m({"output_tokens": {"gt": 0}}, {})
    assert m({"output_tokens": {"exists": False}}, {})


@pytest.mark.parametrize("spec,needle", [
    ({"outcom": "x"}, "unknown match key 'outcom'"),
    ({"delta_count": {"bigger": 1}}, "unknown operator 'bigger'"),
    ({"idle_ms": {"gt": "$stal_ms"}}, "unknown threshold $stal_ms"),
    ({"outcome": {"gt": 1}}, "needs a numeric field"),
    ({"delta_count": "three"}, "does not fit a int field"),
    ({"exception": {"klass": "X"}}, "unknown key 'klass'"),
    ({"events": {"includes": ["x"]}}, "unknown key 'includes'"),
    ({"exception_message": {"matches": "("}}, "bad regex"),
    ({}, "non-empty mapping"),
    ({"any": []}, "empty list"),
])
def test_bad_matchers_are_load_errors(spec, needle) -> None:
    with pytest.raises(MatchError, match=None) as err:
        C.compile(spec)
    assert needle in str(err.value)


def _write(tmp_path: Path, entry: dict) -> Path:
    base = {"id": "llm/test-entry", "category": "incomplete_stream", "title": "t", "title_zh": "标题", "status": "draft",
            "root_cause": {"en": "e", "zh": "中"}, "fix_rate": 0.5, "confidence": 0.5,
            "rule": {"when": {"outcome": "timeout"}}}
    base.update(entry)
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump({"rule_language": 1, "entries": [{k: v for k, v in base.items() if v is not None}]},
                                allow_unicode=True))
    return p


@pytest.mark.parametrize("change,needle", [
    ({"colour": "red"}, "unknown key(s) colour"),
    ({"category": "network"}, "category 'network' not in"),
    ({"id": "peer-closed"}, "must look like llm/"),
    ({"fix_rate": 1.5}, "expected a number in [0, 1]"),
    ({"root_cause": {"en": "only english"}}, "needs non-empty `en` and `zh`"),
    ({"rule": {"when": {"outcome": "timeout"}, "evidence": [{"weight": 0.5, "match": {"outcome": "x"}}]}}, "`says`"),
    ({"rule": {"when": {"outcome": "timeout"}, "evidence": [{"weight": 2, "says": "s", "match": {"outcome": "x"}}]}},
     "weight must be in [-1, 1]"),
    ({"rule": {"when": {"outcome": "timeout"}, "priorty": 1}}, "unknown key(s) priorty"),
    ({"rule": {"when": {"outcme": "timeout"}}}, "unknown match key 'outcme'"),
    ({"rule": None}, "must say why in `rule_note`"),
    ({"distinguish_from": ["llm/nowhere"]}, "unknown entry llm/nowhere"),
])
def test_kb_schema_errors(tmp_path: Path, change: dict, needle: str) -> None:
    with pytest.raises(KbError) as err:
        load_kb(_write(tmp_path, change))
    assert needle in str(err.value) and "x.yaml" in str(err.value)


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "dup.yaml"
    p.write_text("rule_language: 1\nentries:\n- id: llm/a\n  id: llm/b\n")
    with pytest.raises(KbError, match="duplicate key"):
        load_kb(p)


CATALOG = Path(__file__).resolve().parents[1] / "data" / "failure-catalog.yaml"


def test_shipped_kb_covers_the_catalogue() -> None:
    kb = load_kb()
    catalog = yaml.safe_load(CATALOG.read_text())  # vendored: a missing file is a failure, not a skip
    assert len(kb) >= 36
    assert {e["id"] for e in catalog["entries"]} <= set(kb.entries)
    no_rule = [e for e in kb if e.rule is None]
    assert all("python" not in e.data.get("observable", []) for e in no_rule)
    for e in kb:
        assert e.root_cause["zh"].strip() and e.data.get("fixes") and e.data.get("evidence")


@pytest.mark.parametrize("env,flags,api,want", [
    ({"STREAMTRIAGE_STALL_MS": "5000"}, [], "responses", 5000.0),
    ({"STREAMTRIAGE_STALL_MS": "5000", "STREAMTRIAGE_STALL_MS__ASSISTANTS_RUNS": "7000"}, [], "assistants.runs", 7000.0),
    ({"STREAMTRIAGE_STALL_MS": "5000"}, ["chat.completions:stall_ms=900"], "chat.completions", 900.0),
    ({}, ["stall_ms=42"], "responses", 42.0),
    ({}, [], "responses", 120000.0),
])
def test_thresholds_per_api_from_env_and_flags(env, flags, api, want) -> None:
    assert Thresholds.from_env(env, flags).get("stall_ms", api) == want


def test_threshold_defaults_match_real_limits() -> None:
    assert DEFAULTS["requires_action_ms"] == DEFAULTS["poll_hang_ms"] == 600_000  # a run expires after ~10 min
    with pytest.raises(ThresholdError):
        Thresholds.from_env({}, ["stall=5"])
    with pytest.raises(ThresholdError):
        Thresholds.from_env({"STREAMTRIAGE_STALL_MS": "soon"})


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamtriage.cli", *args], capture_output=True, text=True,
                          timeout=60)


def test_cli_kb_show_zh_prints_a_complete_entry() -> None:
    out = _cli("kb", "show", "llm/peer-closed-incomplete-chunked-read", "--lang", "zh")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for heading in ("### 根本原因", "### 典型报错信息", "### 修复方法", "### 无效的尝试", "### 官方文档", "### 证据",
                    "### 不要混淆", "### 规则"):
        assert heading in text
    assert "对端" in text and "```" in text and "github.com/openai/openai-python/issues/2356" in text


def test_cli_kb_show_json_export_and_list() -> None:
    one = json.loads(_cli("kb", "show", "llm/content-filter-stop", "--format", "json").stdout)
    assert one["id"] == "llm/content-filter-stop" and one["rule"]["when"]
    exported = json.loads(_cli("kb", "export", "--format", "json").stdout)
    assert len(exported["entries"]) == len(load_kb())
    md = _cli("kb", "export", "--format", "md").stdout
    assert md.count("\n## llm/") == len(load_kb())
    assert "llm/proxy-buffering-sse" in _cli("kb", "list").stdout
    bad = _cli("kb", "show", "llm/nope")
    assert bad.returncode == 1 and "no entry" in bad.stderr
