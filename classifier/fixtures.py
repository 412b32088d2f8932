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

``match`` means the entry's rule applies to the record (its ``when`` holds and its confidence is at
least the engine's floor), whatever other rules say; the label the record would get is reported too.
Shipped fixtures live in ``classifier/kb/fixtures/``, a user directory's in ``<kb_dir>/fixtures/``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .engine import Engine
from .explain import RuleVerdict, explain
from .kb import KbError
from .record import FIELDS, Record
from .span_records import records_from_export

CASE_KEYS = {"id", "expect", "name", "record", "stream", "now_ns"}
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
        if ("record" in item) == ("stream" in item):
            raise KbError(f"{where}: give exactly one of `record` (fields) or `stream` (a /api/streams export)")
        if "record" in item:
            recs = [record_from_fields(item["record"], where)]
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
