"""Reading and writing ``streamtriage_labels`` (ReplacingMergeTree(Version, IsDeleted)).

Re-labelling a call writes a row with a higher ``Version``; withdrawing a label (a hang that later
completed fine) writes ``IsDeleted = 1``. Readers use ``FINAL``.

Observed fix rate = **retry success within a window**: of an entry's labelled calls that carry a request
fingerprint (the *sample*, ``FixRateSample``), the share for which the same service sent the same request
again (same fingerprint: model and messages, see ``instrumentation/routes.py``) within ``fix_window_s``
(default 10 min) and that call completed cleanly (terminal marker, no error, not truncated or filtered,
no live label of its own). It measures whether retrying helped, not whether anyone changed a setting;
a retry after the window is a new attempt, not a fix. Every rate is shown with its sample.
"""
from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine import Label
from .kb import KB_DIR, KnowledgeBase
from .record import Record

LABELS = "streamtriage_labels"
TRACES = "otel_traces"
LABEL_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ServiceName", "Model", "ApiKind", "KbId", "Category", "Title",
    "RootCause", "Confidence", "FixRatePrior", "FixRateObserved", "FixRateSample", "EvidenceCount", "Evidence",
    "Alternatives", "Fingerprint", "Outcome", "IsOpen", "RuleVersion", "Version", "IsDeleted",
    "LabelSource", "RuleKbId", "Muted",  # feedback (migration 0007, classifier/feedback.py)
)
# Facts copied into the Evidence column next to the matched clauses, so an incident explains itself.
FACT_FIELDS = ("outcome", "exception_type", "exception_chain", "error_code", "http_status", "finish_reason",
               "terminal_seen", "terminal_event", "status", "incomplete_reason", "event_count", "delta_count",
               "idle_ms", "max_gap_ms", "poll_last_status", "poll_status_unchanged_ms", "requires_action_ms",
               "output_tokens", "max_tokens", "retry_count", "cancel_reason", "app_exception_type", "duration_ms",
               "ttfe_ms", "cut_cluster_size", "cut_cluster_limit_ms")
FIX_WINDOW_S = 600.0  # a retry that succeeds within this long after the failed call counts as its fix


def rule_version(paths: Iterable[Path] | None = None) -> int:
    """CRC32 of the KB files: labels say which rule set produced them."""
    crc = 0
    for p in sorted(paths or KB_DIR.glob("*.yaml")):
        crc = zlib.crc32(p.read_bytes(), crc)
    return crc


_version_lock = threading.Lock()
_last_version = 0


def next_version() -> int:
    """Strictly increasing ns timestamps (two passes in the same ns still order)."""
    global _last_version
    with _version_lock:
        _last_version = max(_last_version + 1, time.time_ns())
        return _last_version


@dataclass
class KbStats:
    evidence_count: int = 0
    with_fingerprint: int = 0
    fixed: int = 0

    @property
    def observed_fix_rate(self) -> float | None:
        """Retry success within the window, over ``sample`` calls (None without any)."""
        return round(self.fixed / self.with_fingerprint, 4) if self.with_fingerprint else None

    @property
    def sample(self) -> int:
        """How many labelled calls the observed fix rate is computed over."""
        return self.with_fingerprint


def evidence_json(rec: Record, label: Label) -> str:
    facts = {k: rec.get(k) for k in FACT_FIELDS if rec.get(k) not in (None, "", [])}
    return json.dumps({"matched": label.evidence, "facts": facts}, default=str, ensure_ascii=False)


def label_row(rec: Record, label: Label | None, kb: KnowledgeBase, stats: dict[str, KbStats],
              rule_ver: int, version: int, deleted: bool = False, previous: dict[str, Any] | None = None) -> list[Any]:
    """One labels-table row for a record (or a withdrawal row repeating the previous label)."""
    if label is None:
        assert previous is not None
        prev = previous
        return [rec["start_ns"], rec["trace_id"], rec["span_id"], rec.get("service") or "", rec.get("model") or "",
                rec.get("api") or "", prev["KbId"], prev["Category"], prev["Title"], prev["RootCause"],
                float(prev["Confidence"]), float(prev["FixRatePrior"]), prev["FixRateObserved"],
                int(prev.get("FixRateSample") or 0), int(prev["EvidenceCount"]), prev["Evidence"],
                prev["Alternatives"], rec.get("fingerprint") or "",
                rec.get("outcome") or "", 1 if rec.get("open") else 0, rule_ver, version, 1,
                prev.get("LabelSource") or "rule", prev.get("RuleKbId") or "", int(prev.get("Muted") or 0)]
    entry = kb.get(label.kb_id)
    prior = float(entry.fix_rate) if entry is not None else 0.0
    st = stats.get(label.kb_id, KbStats())
    return [rec["start_ns"], rec["trace_id"], rec["span_id"], rec.get("service") or "", rec.get("model") or "",
            rec.get("api") or "", label.kb_id, label.category, label.title, label.root_cause,
            float(label.confidence), prior, st.observed_fix_rate, st.sample, int(st.evidence_count),
            evidence_json(rec, label), json.dumps(label.alternatives), rec.get("fingerprint") or "",
            rec.get("outcome") or "", 1 if rec.get("open") else 0, rule_ver, version, 1 if deleted else 0,
            label.source, label.kb_id if label.rule_kb_id is None else label.rule_kb_id, 1 if label.muted else 0]


class LabelStore:
    """Label I/O over a clickhouse-connect client (chDB or server); ``lock`` serialises client use."""

    def __init__(self, client: Any, database: str, lock: Any = None, fix_window_s: float = FIX_WINDOW_S) -> None:
        self.client = client
        self.db = database
        self.lock = lock or threading.RLock()
        self.fix_window_s = fix_window_s

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.lock:
            res = self.client.query(sql, parameters=params or {})
        return [dict(zip(res.column_names, r, strict=False)) for r in res.result_rows]

    def current(self, keys: Sequence[tuple[str, str]], window_lo: int | None = None
                ) -> dict[tuple[str, str], dict[str, Any]]:
        """The live (not withdrawn) label of each ``(TraceId, SpanId)`` that has one.

        Small key sets are looked up by TraceId; a big pass (``window_lo`` given) reads the window.
        """
        if not keys:
            return {}
        out: dict[tuple[str, str], dict[str, Any]] = {}
        wanted = set(keys)
        base = f"SELECT * FROM `{self.db}`.{LABELS} FINAL WHERE IsDeleted = 0 AND "
        if window_lo is not None:
            batches = [self.query(base + "Timestamp >= fromUnixTimestamp64Nano({lo:Int64})", {"lo": int(window_lo)})]
        else:
            tids = sorted({t for t, _ in keys})
            batches = [self.query(base + "TraceId IN {tids:Array(String)}", {"tids": tids[i:i + 5000]})
                       for i in range(0, len(tids), 5000)]
        for rows in batches:
            for r in rows:
                key = (r["TraceId"], r["SpanId"])
                if key in wanted:
                    out[key] = r
        return out

    def write(self, rows: list[list[Any]]) -> None:
        if rows:
            with self.lock:
                self.client.insert(LABELS, rows, column_names=list(LABEL_COLUMNS), database=self.db)

    def kb_stats(self) -> dict[str, KbStats]:
        """Per KB id: calls labelled (evidence count), the fix-rate sample and how many of it a retry fixed."""
        rows = self.query(
            f"""
            SELECT kb, count() AS n, countIf(fp != '') AS with_fp, countIf(fp != '' AND fixed) AS fixed
            FROM (
                SELECT l.TraceId, l.SpanId, any(l.KbId) AS kb, any(l.Fingerprint) AS fp,
                       max(r.t > l.Timestamp AND r.t <= l.Timestamp + toIntervalMillisecond({{window_ms:UInt64}})) AS fixed
                FROM (SELECT TraceId, SpanId, KbId, Fingerprint, ServiceName, Timestamp
                      FROM `{self.db}`.{LABELS} FINAL WHERE IsDeleted = 0) AS l
                LEFT JOIN (
                    SELECT SpanAttributes['streamtriage.request.fingerprint'] AS fp, ServiceName AS svc, Timestamp AS t
                    FROM `{self.db}`.{TRACES}
                    WHERE LlmSpan = 'call' AND LlmOutcome = 'completed' AND StatusCode != 'Error'
                      AND LlmFinishReason NOT IN ('length', 'content_filter')
                      AND fp IN (SELECT Fingerprint FROM `{self.db}`.{LABELS} WHERE Fingerprint != '')
                      AND (TraceId, SpanId) NOT IN
                          (SELECT TraceId, SpanId FROM `{self.db}`.{LABELS} FINAL WHERE IsDeleted = 0)
                ) AS r ON l.Fingerprint = r.fp AND l.ServiceName = r.svc
                GROUP BY l.TraceId, l.SpanId
            )
            GROUP BY kb
            """, {"window_ms": int(self.fix_window_s * 1000)})
        return {r["kb"]: KbStats(int(r["n"]), int(r["with_fp"]), int(r["fixed"])) for r in rows}
