"""Rule evaluation and computed confidence.

A rule's ``when`` decides *whether* it applies; its weighted ``evidence`` clauses decide *how sure*
we are. Confidence starts at the rule's ``base`` (what the ``when`` facts alone are worth) and
combines matched evidence as a noisy-OR, so independent clues add up without ever reaching 1:

    c = 1 - (1 - base) * prod(1 - w)   for matched clauses with w > 0
    c = c * prod(1 - |w|)              for matched counter-evidence (w < 0)

When several rules match, the most confident is the label (ties: higher ``priority``, then KB
order) and the rest become ``alternatives``.

A call that *failed* (an exception, an HTTP error, an in-band error) but matches no rule is still an
incident: it gets an *unclassified* label (``kb_id`` empty) with a coarse category from the HTTP status
or else the outcome (``fallback_category``), so nothing broken goes unseen and no incident is without
a category.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .kb import KbEntry, KnowledgeBase, default_kb
from .matchers import to_sql
from .record import Record
from .thresholds import Thresholds

MAX_CONFIDENCE = 0.99
FAILED_OUTCOMES = frozenset({"transport_error", "timeout", "error_event", "http_error", "error", "app_error"})
UNCLASSIFIED_TITLE = "Failed call with no knowledge-base entry"


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
    # Set by feedback (classifier/feedback.py): 'rule', 'confirmed' or 'feedback'; the entry the rules
    # chose (None: kb_id); hidden by a mute.
    source: str = "rule"
    rule_kb_id: str | None = None
    muted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kb_id": self.kb_id, "category": self.category, "title": self.title,
            "root_cause": self.root_cause, "confidence": self.confidence,
            "evidence": self.evidence, "alternatives": self.alternatives,
            # the names of the labels table's columns as the API gives them (collector/api_models.py)
            "label_source": self.source, "rule_kb_id": self.kb_id if self.rule_kb_id is None else self.rule_kb_id,
            "muted": self.muted,
        }


class Engine:
    """Evaluates every KB rule against a record."""

    def __init__(self, kb: KnowledgeBase | None = None, thresholds: Thresholds | None = None,
                 min_confidence: float = 0.2) -> None:
        self.kb = kb or default_kb()
        self.thresholds = thresholds or Thresholds()
        self.min_confidence = min_confidence
        self._rules = [(i, e) for i, e in enumerate(self.kb.rules)]
        self._prefilter: str | None = None
        self._mask_cache: dict[int, list[tuple[int, KbEntry]]] = {}
        if len(self._rules) > 64:
            raise ValueError("rule masks hold 64 rules; split the mask before adding more")
        # Rules indexed by the (outcome, api) pairs their `when` allows (static analysis), so a record
        # is only tried against rules that could apply to it.
        allowed: dict[int, tuple[set[str] | None, set[str] | None]] = {}
        for i, e in self._rules:
            assert e.rule is not None  # kb.rules lists entries that have one
            when = e.rule.spec["when"]
            allowed[i] = (allowed_values(when, "outcome"), allowed_values(when, "api"))
        outcomes = set(FAILED_OUTCOMES) | {"completed", "no_terminal", "cancelled", "open"}
        apis = {"chat.completions", "responses", "assistants.runs", "vector_stores.files",
                "vector_stores.file_batches", "vector_stores"}
        for rule_outcomes, rule_apis in allowed.values():
            outcomes |= rule_outcomes or set()
            apis |= rule_apis or set()
        # Keyed by the record's raw (outcome, api): a record missing either falls back to every rule.
        self._index: dict[tuple[str | None, str | None], list[tuple[int, KbEntry]]] = {}
        for outcome in outcomes:
            for api in apis:
                self._index[(outcome, api)] = [
                    (i, e) for i, e in self._rules
                    if ((ao := allowed[i][0]) is None or outcome in ao) and ((aa := allowed[i][1]) is None or api in aa)]

    def prefilter_sql(self) -> str:
        """SQL over a call span row: false only for calls that no rule (nor the unclassified fallback) can match."""
        if self._prefilter is None:
            self._prefilter = self._build_prefilter()
        return self._prefilter

    def _th_bounds(self) -> tuple[dict[str, float], dict[str, float]]:
        vals = [self.thresholds.values] + list(self.thresholds.per_api.values())
        names = self.thresholds.values.keys()
        th_min = {n: min(v.get(n, self.thresholds.values[n]) for v in vals) for n in names}
        th_max = {n: max(v.get(n, self.thresholds.values[n]) for v in vals) for n in names}
        return th_min, th_max

    def rule_mask_sql(self) -> str:
        """SQL over a call span row: bit i set when rule i *could* match (its pushdown predicate holds).

        Records carrying this mask are only tried against the rules whose bit is set."""
        th_min, th_max = self._th_bounds()
        terms = []
        for bit, (_, e) in enumerate(self._rules):
            pred = to_sql(e.rule.spec["when"], th_min, th_max)[0]  # type: ignore[union-attr]
            terms.append(f"toUInt64({1 << bit})" if pred == "1" else f"if({pred}, toUInt64({1 << bit}), toUInt64(0))")
        return "(" + " + ".join(terms) + ")" if terms else "toUInt64(0)"

    def _rules_for_mask(self, mask: int) -> list[tuple[int, KbEntry]]:
        got = self._mask_cache.get(mask)
        if got is None:
            got = [r for bit, r in enumerate(self._rules) if mask >> bit & 1]
            self._mask_cache[mask] = got
        return got

    def _build_prefilter(self) -> str:
        th_min, th_max = self._th_bounds()
        parts = [to_sql(e.rule.spec["when"], th_min, th_max)[0] for _, e in self._rules]  # type: ignore[union-attr]
        parts.append("LlmOutcome IN (" + ", ".join(f"'{o}'" for o in sorted(FAILED_OUTCOMES)) + ")")
        if any(p == "1" for p in parts):
            return "1"
        return "(" + "\n OR ".join(parts) + ")"

    def matches(self, rec: Record) -> list[Match]:
        """All rules that apply, most confident first."""
        th = self.thresholds.for_api(rec.get("api"))
        out: list[tuple[float, int, int, Match]] = []
        mask = rec.get("_rule_mask")
        rules = self._rules_for_mask(mask) if mask is not None else \
            self._index.get((rec.get("outcome"), rec.get("api")), self._rules)
        for order, entry in rules:
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
                        said.append(clause.text(rec))
                    else:
                        neg *= 1.0 + clause.weight
                        said.append("against: " + clause.text(rec))
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
            return self.unclassified(rec)
        best = found[0]
        e = best.entry
        return Label(
            kb_id=e.id, category=e.category, title=e.title,
            root_cause=e.root_cause.get(lang) or e.root_cause["en"],
            confidence=best.confidence, evidence=best.evidence,
            alternatives=[{"kb_id": m.entry.id, "confidence": m.confidence} for m in found[1:]],
        )

    @staticmethod
    def unclassified(rec: Record) -> Label | None:
        """The label of a failed call no rule explains (None for calls that did not fail)."""
        if rec.get("outcome") not in FAILED_OUTCOMES:
            return None
        status = rec.get("http_status") or 0
        classes = [rec.get("exception_type") or ""] + list(rec.get("exception_chain") or [])
        names = {c.rsplit(".", 1)[-1] for c in classes if c}
        category = fallback_category(rec.get("outcome"), status, names)
        facts = [f"outcome {rec.get('outcome')}"]
        if rec.get("exception_type"):
            facts.append(f"exception {rec['exception_type']}")
        if status:
            facts.append(f"HTTP {status}")
        return Label(kb_id="", category=category, title=UNCLASSIFIED_TITLE,
                     root_cause="No rule in the knowledge base matches this failure: " + ", ".join(facts) + ".",
                     confidence=0.0, evidence=facts)


# outcome -> category of a failed call no rule explains and whose HTTP status says nothing
_OUTCOME_CATEGORY = {"transport_error": "incomplete_stream", "timeout": "incomplete_stream",
                     "error_event": "server_error", "http_error": "client_misuse", "error": "client_parser",
                     "app_error": "client_misuse"}


def fallback_category(outcome: str | None, status: int, exc_names: set[str]) -> str:
    """A coarse category for a failed call no rule explains: never empty."""
    if status == 429 or "RateLimitError" in exc_names:
        return "rate_limit"
    if status >= 500 or "InternalServerError" in exc_names:
        return "server_error"
    if 400 <= status < 500:
        return "client_misuse"
    return _OUTCOME_CATEGORY.get(outcome or "", "server_error")


def allowed_values(spec: Any, field: str) -> set[str] | None:
    """The values of ``field`` a matcher can accept (None: any). Conservative: unknown -> None."""
    if not isinstance(spec, dict):
        return None
    found: set[str] | None = None
    for key, val in spec.items():
        sub: set[str] | None = None
        if key == field:
            if isinstance(val, str):
                sub = {val}
            elif isinstance(val, list) and all(isinstance(v, str) for v in val):
                sub = set(val)
            elif isinstance(val, dict) and set(val) <= {"eq", "in"}:
                vs = [v for x in val.values() for v in (x if isinstance(x, list) else [x])]
                sub = set(vs) if all(isinstance(v, str) for v in vs) else None
        elif key == "all":
            for s in val:
                a = allowed_values(s, field)
                if a is not None:
                    sub = a if sub is None else sub & a
        elif key == "any":
            alts = [allowed_values(s, field) for s in val]
            sub = None if any(a is None for a in alts) else set().union(*(a for a in alts if a is not None))
        if sub is not None:
            found = sub if found is None else found & sub
    return found
