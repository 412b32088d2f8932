"""Why a rule did or did not match a record, condition by condition.

The engine compiles a rule to one closure and only learns *whether* it holds. To say *why not*, the
rule's ``when`` is walked here and every part compiled on its own with the same ``Compiler``, so an
explanation can never disagree with the engine: a failed leaf is printed with what it asks for and
what the record holds.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .engine import Engine
from .kb import KbEntry
from .matchers import Compiler
from .record import Record
from .thresholds import DEFAULTS

_EXC_FIELDS = {"exception": ("exception_type", "exception_chain", "exception_message"),
               "app_exception": ("app_exception_type", "app_exception_message")}


@dataclass
class RuleVerdict:
    """One rule against one record: matched with a confidence, or the conditions that failed."""

    kb_id: str
    matched: bool
    confidence: float | None = None
    evidence: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kb_id": self.kb_id, "matched": self.matched, "confidence": self.confidence,
                "evidence": self.evidence, "failed": self.failed}


def _has(key: str, rec: Record) -> str:
    if key in _EXC_FIELDS:
        vals = {f: rec.get(f) for f in _EXC_FIELDS[key] if rec.get(f)}
        return ", ".join(f"{k}={v!r}" for k, v in vals.items()) or "no exception"
    if key == "events":
        return f"events={rec.get('events')!r}, event_count={rec.get('event_count')!r}"
    return f"{key}={rec.get(key)!r}"


def failed_conditions(spec: Any, rec: Record, th: Mapping[str, float], compiler: Compiler,
                      path: str = "when") -> list[str]:
    """The parts of matcher ``spec`` that do not hold for ``rec`` (empty when it holds)."""
    out: list[str] = []
    for key, val in spec.items():
        where = f"{path}.{key}"
        if key == "all":
            for i, sub in enumerate(val):
                out += failed_conditions(sub, rec, th, compiler, f"{where}[{i}]")
        elif key == "any":
            alts = [failed_conditions(sub, rec, th, compiler, f"{where}[{i}]") for i, sub in enumerate(val)]
            if all(alts):
                out.append(f"{where}: none of {len(alts)} alternatives holds (" +
                           "; ".join(a[0] for a in alts) + ")")
        elif key == "not":
            if compiler.compile(val, where)(rec, th):
                out.append(f"{where}: {val!r} holds, the rule needs it not to")
        elif not compiler.compile({key: val}, path)(rec, th):
            out.append(f"{where}: wants {val!r}, record has {_has(key, rec)}")
    return out


def explain(engine: Engine, rec: Record) -> list[RuleVerdict]:
    """Every rule of the engine's knowledge base against ``rec``: matches first (engine order), then the rest."""
    compiler = Compiler(set(DEFAULTS))
    th = engine.thresholds.for_api(rec.get("api"))
    matched = {m.entry.id: m for m in engine.matches({k: v for k, v in rec.items() if k != "_rule_mask"})}
    out = [RuleVerdict(m.entry.id, True, m.confidence, m.evidence) for m in matched.values()]
    for entry in engine.kb.rules:
        if entry.id in matched:
            continue
        out.append(RuleVerdict(entry.id, False, failed=_why_not(entry, rec, th, compiler, engine.min_confidence)))
    return out


def _why_not(entry: KbEntry, rec: Record, th: Mapping[str, float], compiler: Compiler, floor: float) -> list[str]:
    assert entry.rule is not None
    failed = failed_conditions(entry.rule.spec["when"], rec, th, compiler)
    if failed:
        return failed
    return [f"`when` holds, but the confidence from its evidence stays below the floor {floor}"]

