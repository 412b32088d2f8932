"""Per-entry rule fixtures: stream records a rule must label, and look-alikes it must not.

Following the convention of rule engines such as Semgrep (every rule beside annotated positive and
negative cases), each knowledge-base entry with a rule has ``kb/fixtures/<slug>.yaml``::

    kb_id: llm/peer-closed-incomplete-chunked-read
    thresholds: {stall_ms: 1000}          # optional; default: production thresholds
    role: label                           # optional; `alternative`: see below
    match:                                # the entry must be the label of each of these
    - name: chat stream cut by FIN after 3 chunks
      record: {api: chat.completions, mode: stream, outcome: transport_error, event_count: 3, ...}
    not_match:                            # look-alikes: the entry must not be their label
    - name: the app broke out of the loop
      record: {...}

A record is written in the record's own vocabulary (``record.FIELDS``) and built through
``record.build_record`` exactly like a stored call, so derived facts (``after_first_ms``, ratios,
idle and poll waits) are computed, never written by hand. Besides the call span's fields a record may
give ``open`` (no call span yet), ``duration_ms`` (open: how long ago it started), ``events`` (event
types, or mappings with ``type count gap_ms status finish_reason error_code terminal``), ``polls``
(``status ago_ms error_code since_ms``) and the cross-call facts the classifier's passes add
(``cut_cluster_size``, ``cut_cluster_limit_ms``, ``followed_up``).

An entry whose rule only ever offers a second explanation (a server-side cause the client cannot tell
from a more common one, e.g. a killed worker behind a peer cut) says ``role: alternative``: its
``match`` records must carry it among the label's alternatives, its ``not_match`` records not at all.

``check_fixtures`` reports every entry with a rule that lacks fixtures (or a side of them) and every
case the fast engine gets wrong; the unit tests fail on any report.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .engine import Engine
from .kb import KB_DIR, KnowledgeBase
from .record import CALL_ATTRS, ChildEvent, ChildPoll, Record, RecordSource, build_record
from .thresholds import Thresholds

FIXTURES_DIR = KB_DIR / "fixtures"
NOW_NS = 1_800_000_000_000_000_000  # a fixed "now": idle and poll waits are exact
FILE_KEYS = {"kb_id", "thresholds", "role", "match", "not_match"}
ROLES = ("label", "alternative")
CASE_KEYS = {"name", "record"}
CROSS_CALL = ("cut_cluster_size", "cut_cluster_limit_ms", "followed_up")
_ATTR_OF = {name: attr for attr, name, _ in CALL_ATTRS}
_EVENT_KEYS = {"type", "count", "gap_ms", "status", "finish_reason", "error_code", "terminal"}
_POLL_KEYS = {"status", "ago_ms", "error_code", "since_ms"}


class FixtureError(ValueError):
    """A fixture file that cannot be read; the message names the file and case."""


@dataclass
class Case:
    name: str
    record: dict[str, Any]


@dataclass
class Fixtures:
    kb_id: str
    path: Path
    thresholds: dict[str, float] = field(default_factory=dict)
    role: str = "label"
    match: list[Case] = field(default_factory=list)
    not_match: list[Case] = field(default_factory=list)


def slug(kb_id: str) -> str:
    """``llm/some-entry`` -> ``some-entry`` (the fixture file's stem)."""
    return kb_id.split("/", 1)[1]


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
        raise FixtureError(f"{where}: an event is a type or a mapping of {sorted(_EVENT_KEYS)}")
    return ChildEvent(type=str(spec["type"]), index=i, count=int(spec.get("count", 1)),
                      gap_ms=float(spec.get("gap_ms", 50.0)), status=str(spec.get("status", "")),
                      finish_reason=str(spec.get("finish_reason", "")), error_code=str(spec.get("error_code", "")),
                      terminal=bool(spec.get("terminal", False)), end_ns=end_ns)


def fixture_record(spec: Mapping[str, Any], now_ns: int = NOW_NS, where: str = "record") -> Record:
    """Build the stream record a fixture describes (see the module docstring)."""
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
        raise FixtureError(f"{where}: not a call-span fact: {', '.join(sorted(unknown))} "
                           "(derived facts are computed, not written)")
    last_end = now_ns - int((idle_ms or 0.0) * 1e6) if is_open else now_ns
    n = max(1, len(raw_events))
    events = [_event(i, e, start_ns + (last_end - start_ns) * (i + 1) // n, where) for i, e in enumerate(raw_events)]
    polls = []
    for i, p in enumerate(raw_polls):
        if not isinstance(p, Mapping) or "status" not in p or set(p) - _POLL_KEYS:
            raise FixtureError(f"{where}: a poll is a mapping of {sorted(_POLL_KEYS)}")
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


def load_fixtures(directory: Path = FIXTURES_DIR) -> dict[str, Fixtures]:
    """Every fixture file under ``directory``, by KB id."""
    out: dict[str, Fixtures] = {}
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, Mapping) or set(doc) - FILE_KEYS or "kb_id" not in doc:
            raise FixtureError(f"{path.name}: expected a mapping with kb_id and {sorted(FILE_KEYS - {'kb_id'})}")
        if path.stem != slug(str(doc["kb_id"])):
            raise FixtureError(f"{path.name}: holds {doc['kb_id']}; name it {slug(str(doc['kb_id']))}.yaml")
        role = str(doc.get("role", "label"))
        if role not in ROLES:
            raise FixtureError(f"{path.name}: role must be one of {ROLES}")
        fx = Fixtures(str(doc["kb_id"]), path, {k: float(v) for k, v in (doc.get("thresholds") or {}).items()}, role)
        for side in ("match", "not_match"):
            for i, case in enumerate(doc.get(side) or []):
                if not isinstance(case, Mapping) or set(case) != CASE_KEYS:
                    raise FixtureError(f"{path.name}: {side}[{i}] needs exactly name and record")
                getattr(fx, side).append(Case(str(case["name"]), dict(case["record"])))
        out[fx.kb_id] = fx
    return out


def check_fixtures(kb: KnowledgeBase, directory: Path = FIXTURES_DIR) -> list[str]:
    """Everything wrong with the fixtures of ``kb``: missing files or sides, and cases the engine gets wrong."""
    problems: list[str] = []
    fixtures = load_fixtures(directory)
    for entry in kb:
        fx = fixtures.get(entry.id)
        if entry.rule is None:
            continue
        if fx is None:
            problems.append(f"{entry.id}: no fixtures ({directory.name}/{slug(entry.id)}.yaml)")
            continue
        if not fx.match or not fx.not_match:
            problems.append(f"{entry.id}: needs at least one `match` and one `not_match` record")
        engine = Engine(kb, Thresholds(fx.thresholds))
        for side, cases in (("match", fx.match), ("not_match", fx.not_match)):
            for case in cases:
                where = f"{fx.path.name} {side} '{case.name}'"
                try:
                    label = engine.classify(fixture_record(case.record, where=where))
                except FixtureError as e:
                    problems.append(str(e))
                    continue
                got = label.kb_id if label is not None else None
                found = got == entry.id
                if fx.role == "alternative":
                    alts = {a["kb_id"] for a in label.alternatives} if label is not None else set()
                    found = entry.id in alts if side == "match" else (found or entry.id in alts)
                if found != (side == "match"):
                    problems.append(f"{where}: labelled {got!r}")
    for kb_id in sorted(set(fixtures) - {e.id for e in kb.rules}):
        problems.append(f"{fixtures[kb_id].path.name}: fixtures for {kb_id}, which has no rule in the knowledge base")
    return problems
