"""The shapes of every ``/api/*`` response: one ``snake_case`` vocabulary, as pydantic models so the
OpenAPI document (``/openapi.json``) describes them.

A label has the same field names wherever it appears: in ``POST /api/classify`` (``ClassifiedLabel``),
in ``GET /api/incidents`` and as ``GET /api/streams/{trace_id}``'s ``label`` (``Incident``, which adds
what the store keeps beside the label). Spans keep the ``otel_traces`` columns, renamed to snake_case
(``SpanAttributes`` -> ``span_attributes``); attribute keys inside them are the span contract's names.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class ApiModel(BaseModel):
    """Built from what the classifier and the store return: a field the producer adds without adding it
    here is an error in the tests, not a value the API silently drops."""

    model_config = ConfigDict(extra="forbid")


def snake(name: str) -> str:
    """``TraceId`` -> ``trace_id``, ``LlmTtfeMs`` -> ``llm_ttfe_ms``, ``Events.Name`` -> ``events_name``."""
    return _CAMEL.sub("_", name.replace(".", "")).lower()


class Alternative(ApiModel):
    kb_id: str
    confidence: float


class LabelFields(ApiModel):
    """What the classifier decided about one call."""

    trace_id: str
    span_id: str = Field(description="The call span (or `obj:<id>` for a poll loop seen only through its polls).")
    kb_id: str = Field(description="Knowledge-base entry (`GET /api/kb/{kb_id}`); empty for an unclassified failure.")
    category: str
    title: str
    root_cause: str
    confidence: float
    evidence: list[str] = Field(description="The rule clauses that matched.")
    alternatives: list[Alternative] = Field(description="Other entries that matched, best first.")
    open: bool = Field(description="Labelled while still open (no call span yet).")
    label_source: str = Field(description="`rule` (the knowledge base), `confirmed` or `feedback` (a person's verdict).")
    rule_kb_id: str = Field(description="The entry the rules chose (differs from kb_id when a verdict overrides it).")
    muted: bool = Field(description="Hidden by a mute (listed by /api/incidents only with `muted=true`).")


class ClassifiedLabel(LabelFields):
    """A label written by a classification pass."""


class PassSummary(ApiModel):
    kind: str
    records: int
    covered: int
    labelled: int
    written: int
    withdrawn: int
    open: int
    seconds: float
    phases: dict[str, float]


class ClassifyResult(ApiModel):
    """``POST /api/classify``: an incremental pass, then a sweep of the calls still open."""

    incremental: PassSummary
    sweep: PassSummary
    labels: list[ClassifiedLabel]


class Incident(LabelFields):
    """A current label (``streamtriage_labels FINAL``, not withdrawn) with what the store keeps beside it."""

    timestamp: str = Field(description="Start of the labelled call, ISO-8601 UTC.")
    service: str
    model: str
    api: str
    fix_rate_prior: float
    fix_rate_observed: float | None
    fix_rate_sample: int = Field(description="Calls the observed fix rate is computed from.")
    evidence_count: int
    facts: dict[str, Any] = Field(description="The record's facts the rule read (outcome, terminal_seen, ...).")
    fingerprint: str
    outcome: str
    rule_version: int
    version: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Incident:
        """From a ``streamtriage_labels`` row (store column names)."""
        evidence = _json(row.get("Evidence"), {})
        matched = evidence.get("matched", []) if isinstance(evidence, dict) else []
        facts = evidence.get("facts", {}) if isinstance(evidence, dict) else {}
        observed = row.get("FixRateObserved")
        return cls(
            trace_id=row["TraceId"], span_id=row["SpanId"], kb_id=row.get("KbId") or "",
            category=row.get("Category") or "", title=row.get("Title") or "", root_cause=row.get("RootCause") or "",
            confidence=_f(row.get("Confidence")), evidence=[str(m) for m in matched],
            alternatives=[Alternative(**a) for a in _json(row.get("Alternatives"), []) if isinstance(a, dict)],
            open=bool(row.get("IsOpen")), timestamp=_iso(row.get("Timestamp")), service=row.get("ServiceName") or "",
            model=row.get("Model") or "", api=row.get("ApiKind") or "", fix_rate_prior=_f(row.get("FixRatePrior")),
            fix_rate_observed=None if observed is None else _f(observed),
            fix_rate_sample=int(row.get("FixRateSample") or 0),
            evidence_count=int(row.get("EvidenceCount") or 0), facts=facts if isinstance(facts, dict) else {},
            fingerprint=row.get("Fingerprint") or "", outcome=row.get("Outcome") or "",
            rule_version=int(row.get("RuleVersion") or 0), version=int(row.get("Version") or 0),
            label_source=row.get("LabelSource") or "rule", rule_kb_id=row.get("RuleKbId") or "",
            muted=bool(row.get("Muted")),
        )


class SpanEvent(ApiModel):
    time_unix_nano: int
    name: str
    attributes: dict[str, str]


class SpanLink(ApiModel):
    trace_id: str
    span_id: str
    trace_state: str
    attributes: dict[str, str]


class Span(ApiModel):
    """One stored span: the ``otel_traces`` columns in snake_case, with nanosecond integers."""

    timestamp: str | None
    timestamp_ns: int
    trace_id: str
    span_id: str
    parent_span_id: str
    trace_state: str
    span_name: str
    span_kind: str
    service_name: str
    resource_attributes: dict[str, str]
    scope_name: str
    scope_version: str
    span_attributes: dict[str, str]
    duration: int
    status_code: str
    status_message: str
    events: list[SpanEvent]
    links: list[SpanLink]
    llm_span: str
    llm_api: str
    llm_model: str
    llm_outcome: str
    llm_status: str
    llm_finish_reason: str
    llm_terminal_seen: int
    llm_input_tokens: int
    llm_output_tokens: int
    llm_ttfe_ms: float
    llm_max_gap_ms: float


class Stream(ApiModel):
    """``GET /api/streams/{trace_id}``: a trace's call, event and poll spans and the call's label."""

    trace_id: str
    call: Span | None = Field(description="The outermost call span (span contract §1), if it has arrived.")
    label: Incident | None = Field(description="The call's current label, if any.")
    events: list[Span]
    polls: list[Span]
    spans: list[Span] = Field(description="Every span of the trace, in time order.")
    labels: list[Incident] = Field(description="Every current label in the trace.")


class KbSummary(ApiModel):
    """One knowledge-base entry in ``GET /api/kb``."""

    id: str
    category: str
    title: str
    status: str
    fix_rate: float
    confidence: float
    has_rule: bool
    evidence_count: int
    fix_rate_observed: float | None
    fix_rate_sample: int


class FeedbackEntry(ApiModel):
    """A verdict on a call's label, or a mute of an entry for a service (``classifier/feedback.py``)."""

    kind: str = Field(description="confirm | wrong | clear | mute | unmute")
    trace_id: str = ""
    span_id: str = ""
    service: str = ""
    kb_id: str = Field("", description="The entry the rules chose (verdict) or the muted entry.")
    right_kb_id: str = Field("", description="With `wrong`: the entry that applies ('' = not an incident).")
    author: str = ""
    note: str = ""
    at: datetime | str | None = None


class VerdictResult(ApiModel):
    """``POST /api/labels/{trace_id}/feedback``: the verdict recorded and the call's label after it."""

    feedback: FeedbackEntry
    label: Incident | None

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> VerdictResult:
        """From ``feedback.give_verdict``'s answer (its label is a labels-table row)."""
        label = raw.get("label")
        return cls(feedback=FeedbackEntry(**raw["feedback"]), label=Incident.from_row(label) if label else None)


class MuteResult(ApiModel):
    """``POST``/``DELETE /api/mutes``: the mute recorded and how many live labels it re-marked."""

    feedback: FeedbackEntry
    relabelled: int


class Precision(ApiModel):
    kb_id: str
    confirmed: int
    wrong: int
    precision: float


class FeedbackSummary(ApiModel):
    """``GET /api/feedback``: verdicts and mutes in force, and the precision per entry."""

    verdicts: list[FeedbackEntry]
    mutes: list[FeedbackEntry]
    precision: list[Precision]


class KbObserved(ApiModel):
    """What the store has seen of an entry: labelled calls and how many a later clean call fixed."""

    evidence_count: int
    fix_rate_observed: float | None
    fix_rate_sample: int
    calls_with_fingerprint: int
    fixed: int
    fix_rate_definition: str


class KbEntry(BaseModel):
    """``GET /api/kb/{kb_id}``: the entry as written in ``classifier/kb/*.yaml`` (its other keys are
    passed through: messages, fixes, ineffective, docs, distinguish_from, ...), plus ``observed``."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: str
    category: str
    title: str
    root_cause: dict[str, str]
    fix_rate: float
    confidence: float
    rule: dict[str, Any] | None = None
    observed: KbObserved | None = None


def _json(raw: Any, default: Any) -> Any:
    if not raw:
        return default
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return default


def _f(value: Any) -> float:
    """Store floats are Float32: round to what the classifier wrote (4 decimals)."""
    return round(float(value or 0.0), 4)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    return str(value or "")
