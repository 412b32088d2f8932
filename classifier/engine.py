"""Rule evaluation and computed confidence.

A rule's ``when`` decides *whether* it applies; its weighted ``evidence`` clauses decide *how sure*
we are. Confidence starts at the rule's ``base`` (what the ``when`` facts alone are worth) and
combines matched evidence as a noisy-OR, so independent clues add up without ever reaching 1:

    c = 1 - (1 - base) * prod(1 - w)   for matched clauses with w > 0
    c = c * prod(1 - |w|)              for matched counter-evidence (w < 0)

When several rules match, the most confident is the label (ties: higher ``priority``, then KB
order) and the rest become ``alternatives``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .kb import KbEntry, KnowledgeBase, default_kb
from .record import Record
from .thresholds import Thresholds

MAX_CONFIDENCE = 0.99


@dataclass
class Match:
    entry: KbEntry
    confidence: float
    evidence: list[str]


@dataclass
class Label:
    kb_id: str
    category: str
    title: str
    root_cause: str
    confidence: float
    evidence: list[str]
    alternatives: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kb_id": self.kb_id, "category": self.category, "title": self.title,
            "root_cause": self.root_cause, "confidence": self.confidence,
            "evidence": self.evidence, "alternatives": self.alternatives,
        }


class Engine:
    """Evaluates every KB rule against a record."""

    def __init__(self, kb: KnowledgeBase | None = None, thresholds: Thresholds | None = None,
                 min_confidence: float = 0.2) -> None:
        self.kb = kb or default_kb()
        self.thresholds = thresholds or Thresholds()
        self.min_confidence = min_confidence
        self._rules = [(i, e) for i, e in enumerate(self.kb.rules)]

    def matches(self, rec: Record) -> list[Match]:
        """All rules that apply, most confident first."""
        th = self.thresholds.for_api(rec.get("api"))
        out: list[tuple[float, int, int, Match]] = []
        for order, entry in self._rules:
            rule = entry.rule
            assert rule is not None
            if not rule.when(rec, th):
                continue
            c = rule.base
            keep = 1.0 - c
            neg = 1.0
            said: list[str] = []
            for clause in rule.evidence:
                if clause.pred(rec, th):
                    if clause.weight > 0:
                        keep *= 1.0 - clause.weight
                        said.append(clause.says)
                    else:
                        neg *= 1.0 + clause.weight
                        said.append("against: " + clause.says)
            conf = min(MAX_CONFIDENCE, (1.0 - keep) * neg)
            conf = round(conf, 3)
            if conf < self.min_confidence:
                continue
            out.append((-conf, -rule.priority, order, Match(entry, conf, said)))
        out.sort(key=lambda t: t[:3])
        return [t[3] for t in out]

    def classify(self, rec: Record, lang: str = "en") -> Label | None:
        """The best match as a label (with the others as alternatives), or None for a healthy call."""
        found = self.matches(rec)
        if not found:
            return None
        best = found[0]
        e = best.entry
        return Label(
            kb_id=e.id, category=e.category, title=e.title,
            root_cause=e.root_cause.get(lang) or e.root_cause["en"],
            confidence=best.confidence, evidence=best.evidence,
            alternatives=[{"kb_id": m.entry.id, "confidence": m.confidence} for m in found[1:]],
        )
