"""Knowledge-base fixtures: stream records that must (or must not) match an entry's rule.

As in rule engines such as Semgrep, each rule sits beside annotated positive and negative cases. A
fixture file is a YAML list; each item names an entry and what is expected of it::

    - id: llm/peer-closed-incomplete-chunked-read
      expect: match            # match | no_match
      name: cut after three deltas
      record:                  # stream-record fields (docs/match-language.md); unset fields are empty
        api: chat.completions
        outcome: transport_error
        exception_type: openai.APIConnectionError
    - id: llm/peer-closed-incomplete-chunked-read
      expect: no_match
      stream: exports/4bf92f3577b34da6a3ce929d0e0e4736.json   # a /api/streams export, relative to this file

Instead of ``record`` (literal stream-record fields, derived facts included), a case may give ``call``:
the call span's facts in record vocabulary, built through ``record.build_record`` exactly like a
stored call, so derived facts (``after_first_ms``, ratios, idle and poll waits) are computed, never
written by hand. Besides call-span fields it takes ``open`` (no call span yet), ``duration_ms`` (open:
how long ago it started), ``events`` (types, or mappings of ``type count gap_ms status finish_reason
error_code terminal``), ``polls`` (``status ago_ms error_code since_ms``) and the facts the
classifier's passes add across calls (``cut_cluster_size``, ``cut_cluster_limit_ms``, ``followed_up``).

``match`` means the entry's rule applies to the record (its ``when`` holds and its confidence is at
least the engine's floor), whatever other rules say; the label the record would get is reported too.
Shipped fixtures live in ``classifier/kb/fixtures/``, one file per entry (``<slug>.yaml``); every
shipped entry with a rule has at least one ``match`` and one ``no_match`` case (``shipped_problems``).
A user directory's live in ``<kb_dir>/fixtures/``.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .engine import Engine
from .explain import RuleVerdict, explain
from .kb import KB_DIR, KbError, KnowledgeBase
from .record import CALL_ATTRS, FIELDS, ChildEvent, ChildPoll, Record, RecordSource, build_record
from .span_records import records_from_export

CASE_KEYS = {"id", "expect", "name", "record", "call", "stream", "now_ns"}
EXPECTS = ("match", "no_match")
_LIST_DEFAULTS = ("events", "event_statuses", "poll_statuses", "finish_reasons", "exception_chain")


@dataclass
class Case:
    kb_id: str
    expect: str
    name: str
    record: Record
    where: str


@dataclass
class CaseResult:
    case: Case
    ok: bool
    verdict: RuleVerdict
    label: str  # the kb id the record would be labelled with ('' none, '(unclassified)')
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.case.kb_id, "expect": self.case.expect, "name": self.case.name, "where": self.case.where,
                "ok": self.ok, "label": self.label, "rule": self.verdict.to_dict(), "problems": self.problems}


def record_from_fields(fields: Any, where: str) -> Record:
    """A record from literal field values; unknown fields are errors (a typo must not pass silently)."""
    if not isinstance(fields, dict):
        raise KbError(f"{where}: `record` must be a mapping of stream-record fields")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise KbError(f"{where}: unknown record field(s) {', '.join(unknown)} (see docs/match-language.md)")
    rec: Record = dict.fromkeys(FIELDS)
    rec.update({k: [] for k in _LIST_DEFAULTS})
    rec.update({"open": False, "finish_reason": "", "trace_id": "fixture", "span_id": "fixture", "start_ns": 0})
    rec.update(fields)
    if rec["finish_reasons"] and "finish_reason" not in fields:
        rec["finish_reason"] = rec["finish_reasons"][0]
    return rec


NOW_NS = 1_800_000_000_000_000_000  # a fixed "now" for `call` cases: idle and poll waits are exact
CROSS_CALL = ("cut_cluster_size", "cut_cluster_limit_ms", "followed_up")  # set by the classifier's passes
_ATTR_OF = {name: attr for attr, name, _ in CALL_ATTRS}
_EVENT_KEYS = {"type", "count", "gap_ms", "status", "finish_reason", "error_code", "terminal"}
_POLL_KEYS = {"status", "ago_ms", "error_code", "since_ms"}


def stored(v: Any) -> str:
    """A value as the store keeps attributes (lists as JSON arrays, booleans lower-case)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v))
    return str(v)


def _event(i: int, spec: Any, end_ns: int, where: str) -> ChildEvent:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping) or "type" not in spec or set(spec) - _EVENT_KEYS:
        raise KbError(f"{where}: an event is a type or a mapping of {sorted(_EVENT_KEYS)}")
    return ChildEvent(type=str(spec["type"]), index=i, count=int(spec.get("count", 1)),
                      gap_ms=float(spec.get("gap_ms", 50.0)), status=str(spec.get("status", "")),
                      finish_reason=str(spec.get("finish_reason", "")), error_code=str(spec.get("error_code", "")),
                      terminal=bool(spec.get("terminal", False)), end_ns=end_ns)


def record_from_call(spec: Any, where: str, now_ns: int = NOW_NS) -> Record:
    """A record built like a stored call from its call-span facts, events and polls (derived facts computed)."""
    if not isinstance(spec, Mapping):
        raise KbError(f"{where}: `call` must be a mapping of call-span facts")
    spec = dict(spec)
    is_open = bool(spec.pop("open", False))
    duration_ms = float(spec.pop("duration_ms", 1000.0))
    start_ns = now_ns - int(duration_ms * 1e6)
    raw_events = spec.pop("events", []) or []
    raw_polls = spec.pop("polls", []) or []
    cross = {k: spec.pop(k) for k in CROSS_CALL if k in spec}
    idle_ms = float(spec.pop("idle_ms")) if is_open and "idle_ms" in spec else None
    unknown = set(spec) - set(_ATTR_OF)
    if unknown:
        raise KbError(f"{where}: not a call-span fact: {', '.join(sorted(unknown))} "
                           "(derived facts are computed, not written)")
    last_end = now_ns - int((idle_ms or 0.0) * 1e6) if is_open else now_ns
    n = max(1, len(raw_events))
    events = [_event(i, e, start_ns + (last_end - start_ns) * (i + 1) // n, where) for i, e in enumerate(raw_events)]
    polls = []
    for i, p in enumerate(raw_polls):
        if not isinstance(p, Mapping) or "status" not in p or set(p) - _POLL_KEYS:
            raise KbError(f"{where}: a poll is a mapping of {sorted(_POLL_KEYS)}")
        t = now_ns - int(float(p.get("ago_ms", 0.0)) * 1e6)
        since = p.get("since_ms")
        polls.append(ChildPoll(status=str(p["status"]), attempt=i + 1, start_ns=t, end_ns=t + 5_000_000,
                               error_code=str(p.get("error_code", "")), api=str(spec.get("api", "")),
                               status_since_ms=float(since) if since is not None else None))
    attrs = None
    if not is_open:
        attrs = {"streamtriage.span": "call", "streamtriage.contract": "1",
                 **{_ATTR_OF[k]: stored(v) for k, v in spec.items()}}
    elif events:
        events[0].api, events[0].model = str(spec.get("api", "")), str(spec.get("model", ""))
    src = RecordSource(trace_id="f" * 32, span_id="e" * 16, service="fixture", start_ns=start_ns,
                       duration_ns=int(duration_ms * 1e6), call_attrs=attrs, events=events, polls=polls)
    rec = build_record(src, now_ns)
    rec.update(cross)
    return rec


def load_export(path: Path, now_ns: int | None = None) -> list[Record]:
    """Records of a saved ``/api/streams/<id>`` export (JSON)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KbError(f"{path}: cannot read a /api/streams export: {exc}") from None
    if not isinstance(doc, dict):
        raise KbError(f"{path}: a /api/streams export is a JSON object")
    try:
        return records_from_export(doc, now_ns or time.time_ns())
    except ValueError as exc:
        raise KbError(f"{path}: {exc}") from None


def load_cases(path: Path) -> list[Case]:
    """The cases of one fixture file, checked as strictly as the knowledge base itself."""
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KbError(f"{path}: not a readable YAML fixture file: {exc}") from None
    if not isinstance(items, list):
        raise KbError(f"{path}: a fixture file is a YAML list of cases")
    cases = []
    for i, item in enumerate(items):
        where = f"{path.name}[{i}]"
        if not isinstance(item, dict):
            raise KbError(f"{where}: a case is a mapping")
        unknown = sorted(set(item) - CASE_KEYS)
        if unknown:
            raise KbError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(CASE_KEYS))}")
        if not isinstance(item.get("id"), str) or item.get("expect") not in EXPECTS:
            raise KbError(f"{where}: needs `id` (an entry id) and `expect` ({' or '.join(EXPECTS)})")
        if sum(k in item for k in ("record", "call", "stream")) != 1:
            raise KbError(f"{where}: give exactly one of `record` (fields), `call` (call-span facts) or `stream` "
                          "(a /api/streams export)")
        if "record" in item:
            recs = [record_from_fields(item["record"], where)]
        elif "call" in item:
            recs = [record_from_call(item["call"], where, int(item.get("now_ns") or NOW_NS))]
        else:
            recs = load_export(path.parent / str(item["stream"]), item.get("now_ns"))
            if len(recs) != 1:
                raise KbError(f"{where}: {item['stream']} holds {len(recs)} calls; a case needs exactly one")
        name = str(item.get("name") or f"case {i}")
        cases.append(Case(item["id"], item["expect"], name, recs[0], where))
    return cases


def fixture_files(paths: list[Path]) -> list[Path]:
    """Fixture files under the given files or directories (``*.yaml``, ``*.yml``)."""
    out: list[Path] = []
    for p in paths:
        out += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml")) if p.is_dir() else [p]
    return out


def run_case(engine: Engine, case: Case) -> CaseResult:
    """One case: does the entry's rule match the record, as expected?"""
    entry = engine.kb.get(case.kb_id)
    label = engine.classify(dict(case.record))
    shown = "" if label is None else (label.kb_id or "(unclassified)")
    if entry is None or entry.rule is None:
        why = "no such entry" if entry is None else "the entry has no rule"
        return CaseResult(case, False, RuleVerdict(case.kb_id, False, failed=[why]), shown, [why])
    verdict = next(v for v in explain(engine, case.record) if v.kb_id == case.kb_id)
    ok = verdict.matched == (case.expect == "match")
    return CaseResult(case, ok, verdict, shown)


def run_files(engine: Engine, files: list[Path]) -> list[CaseResult]:
    return [run_case(engine, case) for f in files for case in load_cases(f)]


def shipped_problems(kb: KnowledgeBase, directory: Path = KB_DIR / "fixtures", engine: Engine | None = None) -> list[str]:
    """What is wrong with the fixtures of ``kb``: an entry with a rule lacking a ``match`` or a ``no_match``
    case, and every case the engine gets wrong (the unit tests fail on any)."""
    engine = engine or Engine(kb)
    results = run_files(engine, fixture_files([directory]) if directory.is_dir() else [])
    problems = [f"{r.case.where} {r.case.kb_id} expect {r.case.expect} '{r.case.name}': "
                + ("; ".join(r.problems) or f"label {r.label or 'none'}") for r in results if not r.ok]
    seen = {(r.case.kb_id, r.case.expect) for r in results}
    for e in kb.rules:
        missing = [x for x in EXPECTS if (e.id, x) not in seen]
        if missing:
            problems.append(f"{e.id}: no {' and no '.join(missing)} fixture ({directory.name}/{e.id.split('/', 1)[1]}.yaml)")
    return problems
