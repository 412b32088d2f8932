"""Feedback on labels: confirm one, mark it wrong (naming the right entry), or mute an entry for a service.

Stored beside the labels in ``streamtriage_feedback`` (migration 0007), append-only: the latest row
per call (``Scope = 'call'``) or per service and entry (``Scope = 'mute'``) is in force, the rest is
the audit trail. The classifier applies it on every pass (``FeedbackSet.apply``), so a verdict
survives re-classification and reaches every collector on the store:

- **wrong**: the call is labelled with the right entry (``LabelSource = 'feedback'``, confidence 1,
  the rules' choice kept in ``RuleKbId`` and the alternatives), or has no incident when there is none;
- **confirm**: the label stays, ``LabelSource = 'confirmed'``;
- **mute**: labels of that entry for that service are kept but ``Muted = 1``, left out of
  ``/api/incidents`` (``?muted=true`` shows them), the dashboards and the alerts.

Precision per entry = confirmed / (confirmed + wrong) over the calls people gave a verdict on,
attributed to the entry the *rules* chose.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .engine import Label
from .feedback_sql import FEEDBACK, precision_sql
from .kb import KnowledgeBase
from .labels import LABELS, LabelStore, next_version

log = logging.getLogger("streamtriage.classifier")

VERDICTS = ("confirm", "wrong", "clear")
MUTES = ("mute", "unmute")
COLUMNS = ("Scope", "Key", "Kind", "TraceId", "SpanId", "ServiceName", "KbId", "RightKbId", "Author", "Note", "Version")
NO_INCIDENT = ("", "none")


class FeedbackError(ValueError):
    """Feedback that cannot be applied (unknown entry, ambiguous call...); the message says which."""


@dataclass(frozen=True)
class Verdict:
    kind: str
    kb_id: str
    right_kb_id: str
    author: str = ""
    note: str = ""


@dataclass
class FeedbackSet:
    """The feedback in force: a verdict per call, and the muted (service, entry) pairs."""

    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    mutes: set[tuple[str, str]] = field(default_factory=set)

    def apply(self, rec: dict[str, Any], label: Label | None, kb: KnowledgeBase) -> Label | None:
        """The label to store for ``rec``, given what the rules said (``label``) and the feedback in force."""
        v = self.verdicts.get((rec["trace_id"], rec["span_id"]))
        if v is not None and v.kind == "wrong":
            rule_id = label.kb_id if label is not None else ""
            if v.right_kb_id in NO_INCIDENT:
                return None
            entry = kb.get(v.right_kb_id)
            if entry is None:
                log.warning("feedback names %s, which the knowledge base no longer has; keeping the rules' label",
                            v.right_kb_id)
            else:
                who = f" by {v.author}" if v.author else ""
                said = [f"marked wrong{who}: the rules said {rule_id or 'nothing'}, the right entry is {entry.id}"]
                label = Label(
                    kb_id=entry.id, category=entry.category, title=entry.title, root_cause=entry.root_cause["en"],
                    confidence=1.0, evidence=said + ([v.note] if v.note else []),
                    alternatives=[{"kb_id": rule_id, "confidence": label.confidence}] if label and rule_id else [],
                    source="feedback", rule_kb_id=rule_id)
        elif v is not None and v.kind == "confirm" and label is not None and label.kb_id == v.kb_id:
            label.source = "confirmed"
        if label is not None and (rec.get("service") or "", label.kb_id) in self.mutes:
            label.muted = True
        return label


class FeedbackStore:
    """Feedback rows in the store, over the classifier's ``LabelStore`` (same client and lock)."""

    def __init__(self, labels: LabelStore) -> None:
        self.labels = labels
        self.table = f"`{labels.db}`.{FEEDBACK}"

    def latest(self) -> list[dict[str, Any]]:
        cols = ", ".join(f"argMax({c}, Version) AS {c}" for c in COLUMNS if c not in ("Scope", "Key", "Version"))
        return self.labels.query(f"SELECT Scope, Key, {cols}, max(Timestamp) AS At FROM {self.table} "
                                 "GROUP BY Scope, Key ORDER BY At")

    def load(self) -> FeedbackSet:
        fb = FeedbackSet()
        for r in self.latest():
            if r["Scope"] == "call" and r["Kind"] in ("confirm", "wrong"):
                fb.verdicts[(r["TraceId"], r["SpanId"])] = Verdict(r["Kind"], r["KbId"], r["RightKbId"],
                                                                    r["Author"], r["Note"])
            elif r["Scope"] == "mute" and r["Kind"] == "mute":
                fb.mutes.add((r["ServiceName"], r["KbId"]))
        return fb

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {**{c: "" for c in COLUMNS}, **row, "Version": next_version()}
        with self.labels.lock:
            self.labels.client.insert(FEEDBACK, [[row[c] for c in COLUMNS]], column_names=list(COLUMNS),
                                      database=self.labels.db)
        return row

    def precision(self) -> list[dict[str, Any]]:
        return self.labels.query(precision_sql(self.table))


def _calls(labels: LabelStore, trace_id: str) -> list[dict[str, Any]]:
    """The calls of a trace: call spans and labelled keys, with their live label (if any) and start time."""
    db = labels.db
    spans = labels.query(
        f"SELECT SpanId, ServiceName, toUnixTimestamp64Nano(Timestamp) AS ts FROM `{db}`.otel_traces "
        "WHERE TraceId = {tid:String} AND LlmSpan = 'call'", {"tid": trace_id})
    rows = labels.query(
        f"SELECT *, toUnixTimestamp64Nano(Timestamp) AS ts FROM `{db}`.{LABELS} FINAL WHERE TraceId = {{tid:String}}",
        {"tid": trace_id})
    calls: dict[str, dict[str, Any]] = {s["SpanId"]: {**s, "label": None} for s in spans}
    for r in rows:
        c = calls.setdefault(r["SpanId"], {"SpanId": r["SpanId"], "ServiceName": r["ServiceName"], "ts": r["ts"],
                                           "label": None})
        if not r["IsDeleted"]:
            c["label"] = r
    return list(calls.values())


def _pick(calls: list[dict[str, Any]], trace_id: str, span_id: str | None) -> dict[str, Any]:
    if span_id:
        found = [c for c in calls if c["SpanId"] == span_id]
        if not found:
            raise FeedbackError(f"trace {trace_id} has no call {span_id!r}; calls: "
                                f"{', '.join(c['SpanId'] for c in calls) or 'none'}")
        return found[0]
    if not calls:
        raise LookupError(f"no call and no label for trace {trace_id}")
    labelled = [c for c in calls if c["label"] is not None]
    if len(calls) == 1 or len(labelled) == 1:
        return calls[0] if len(calls) == 1 else labelled[0]
    raise FeedbackError(f"trace {trace_id} has {len(calls)} calls; say which with span_id: "
                        f"{', '.join(c['SpanId'] for c in calls)}")


def give_verdict(clf: Any, trace_id: str, kind: str, right_kb_id: str | None = None, span_id: str | None = None,
                 author: str = "", note: str = "") -> dict[str, Any]:
    """Record a verdict on one call's label and re-label the call now; returns the row and the new label."""
    if kind not in VERDICTS:
        raise FeedbackError(f"verdict must be one of {', '.join(VERDICTS)}, got {kind!r}")
    call = _pick(_calls(clf.labels, trace_id), trace_id, span_id)
    live = call["label"]
    rule_id = (live.get("RuleKbId") or live["KbId"]) if live else ""
    right = (right_kb_id or "").strip()
    if kind == "wrong":
        if right_kb_id is None:
            raise FeedbackError("a label marked wrong needs right_kb_id: the entry that applies, or 'none' for no incident")
        right = "" if right.lower() in NO_INCIDENT else right
        if right and clf.kb.get(right) is None:
            raise FeedbackError(f"no knowledge-base entry {right!r}; see GET /api/kb or `streamtriage kb list`")
        if right and right == rule_id:
            raise FeedbackError(f"the rules already say {right}; confirm the label instead")
        if not right and not rule_id:
            raise FeedbackError("the call has no label to mark wrong")
    elif right_kb_id:
        raise FeedbackError("right_kb_id goes with the verdict 'wrong' only")
    if kind == "confirm" and not live:
        raise FeedbackError("the call has no label to confirm")
    key = f"{trace_id}/{call['SpanId']}"
    row = FeedbackStore(clf.labels).add({
        "Scope": "call", "Key": key, "Kind": kind, "TraceId": trace_id, "SpanId": call["SpanId"],
        "ServiceName": call["ServiceName"], "KbId": rule_id, "RightKbId": right, "Author": author, "Note": note})
    clf.relabel([(trace_id, call["SpanId"])], int(call["ts"]))
    after = [c for c in _calls(clf.labels, trace_id) if c["SpanId"] == call["SpanId"]]
    return {"feedback": _public(row), "label": after[0]["label"] if after else None}


def set_mute(clf: Any, service: str, kb_id: str, mute: bool = True, author: str = "", note: str = "") -> dict[str, Any]:
    """Mute (or unmute) an entry for a service and re-mark its live labels now."""
    if not service or not kb_id:
        raise FeedbackError("a mute needs both service and kb_id")
    if mute and clf.kb.get(kb_id) is None:
        raise FeedbackError(f"no knowledge-base entry {kb_id!r}; see GET /api/kb or `streamtriage kb list`")
    row = FeedbackStore(clf.labels).add({
        "Scope": "mute", "Key": f"{service}/{kb_id}", "Kind": "mute" if mute else "unmute", "ServiceName": service,
        "KbId": kb_id, "Author": author, "Note": note})
    keys = clf.labels.query(
        f"SELECT TraceId, SpanId, toUnixTimestamp64Nano(Timestamp) AS ts FROM `{clf.labels.db}`.{LABELS} FINAL "
        "WHERE IsDeleted = 0 AND ServiceName = {svc:String} AND KbId = {kb:String}", {"svc": service, "kb": kb_id})
    if keys:
        clf.relabel([(k["TraceId"], k["SpanId"]) for k in keys], min(int(k["ts"]) for k in keys))
    return {"feedback": _public(row), "relabelled": len(keys)}


def summary(clf: Any) -> dict[str, Any]:
    """Feedback in force (verdicts, mutes) and the precision per entry."""
    store = FeedbackStore(clf.labels)
    rows = store.latest()
    return {
        "verdicts": [_public(r) for r in rows if r["Scope"] == "call" and r["Kind"] != "clear"],
        "mutes": [_public(r) for r in rows if r["Scope"] == "mute" and r["Kind"] == "mute"],
        "precision": store.precision(),
    }


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A feedback row for API readers (snake_case, no internal keys)."""
    names = {"Kind": "kind", "TraceId": "trace_id", "SpanId": "span_id", "ServiceName": "service",
             "KbId": "kb_id", "RightKbId": "right_kb_id", "Author": "author", "Note": "note", "At": "at"}
    return {new: row[old] for old, new in names.items() if old in row}

