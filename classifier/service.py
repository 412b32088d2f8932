"""Classification passes over the store, and the loop that runs them.

- ``incremental()``: records touched since the watermark (any span of the call that *ended* after
  the last pass, minus a slack for export delay), classified and written when their label changed.
  Records without a call span are remembered as *open*.
- ``sweep()``: re-evaluates only the open records against the clock, so a stall or a polling hang
  is labelled while it is still happening. When the call span arrives the next incremental pass
  re-labels it, and withdraws the label (``IsDeleted = 1``) when the call turned out fine.
- ``full()``: every record in a window (backfill, benchmarks).

All three share ``_run``: classify while streaming records, then one query for the current labels
of the touched calls and one insert of the rows that changed.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .assemble import (
    candidate_keys_clause,
    dirty_keys_clause,
    iter_records,
    key_list_clause,
    object_key_clause,
    open_keys_sql,
    ruled_out_clause,
)
from .cut_clusters import CutClusters, annotate, find_cut_clusters
from .engine import Engine
from .feedback import FeedbackSet, FeedbackStore
from .kb import KnowledgeBase, default_kb
from .labels import FIX_WINDOW_S, KbStats, LabelStore, label_row, next_version, rule_version
from .record import Record
from .replicas import shard_clause
from .thresholds import Thresholds

log = logging.getLogger("streamtriage.classifier")
FEEDBACK_TTL_S = 2.0  # several collectors on one store see each other's feedback within a pass or two


@dataclass
class PassResult:
    kind: str
    records: int = 0
    labelled: int = 0
    written: int = 0
    withdrawn: int = 0
    open: int = 0
    covered: int = 0  # calls in the window (full pass: the rest were ruled out in SQL)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # where the time went
    labels: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "records": self.records, "covered": self.covered, "labelled": self.labelled, "written": self.written,
                "withdrawn": self.withdrawn, "open": self.open, "seconds": round(self.seconds, 4),
                "phases": {k: round(v, 3) for k, v in self.phases.items()}}


class Classifier:
    """Owns the engine, the watermark and the open set for one database."""

    def __init__(self, client: Any, database: str, *, kb: KnowledgeBase | None = None,
                 thresholds: Thresholds | None = None, lock: Any = None, slack_s: float = 30.0,
                 lookback_s: float = 6 * 3600.0, batch: int = 20_000, fix_window_s: float | None = None) -> None:
        self.kb = kb or default_kb()
        self.engine = Engine(self.kb, thresholds or Thresholds.from_env())
        if fix_window_s is None:  # retry-success window of the observed fix rate (labels.py)
            fix_window_s = float(os.environ.get("STREAMTRIAGE_FIX_WINDOW_S") or FIX_WINDOW_S)
        self.labels = LabelStore(client, database, lock, fix_window_s)
        self.client = client
        self.db = database
        self.slack_ns = int(slack_s * 1e9)
        self.lookback_ns = int(lookback_s * 1e9)
        self.batch = batch
        self.rule_version = rule_version(self.kb.files or None)
        self.watermark_ns: int | None = None
        self.open_keys: set[str] = set()
        self._pass_lock = threading.Lock()
        self._stats: dict[str, KbStats] = {}
        self.shard: tuple[int, int] = (0, 1)  # (index, count) among live replicas (classifier/replicas.py)
        self._feedback: FeedbackSet | None = None
        self._feedback_at = 0.0

    def set_shard(self, index: int, count: int) -> None:
        """Classify only shard ``index`` of ``count`` from now on; a change re-reads the lookback window."""
        with self._pass_lock:
            if (index, count) != self.shard:
                log.info("classification shard %d of %d (was %d of %d)", index, count, *self.shard)
                self.shard = (index, count)
                self.watermark_ns = None
                self.open_keys = set()  # rebuilt for the new shard by the next incremental pass

    def _sharded(self, where: str) -> str:
        clause = shard_clause(*self.shard)
        return f"{where} AND {clause}" if clause and where else (clause or where)

    # -- passes -------------------------------------------------------------------------------------
    def incremental(self, now_ns: int | None = None) -> PassResult:
        """Classify what changed since the last pass (the first pass covers the lookback window)."""
        with self._pass_lock:
            now = now_ns or time.time_ns()
            t0 = time.perf_counter()
            since = (self.watermark_ns - self.slack_ns) if self.watermark_ns else now - self.lookback_ns
            lo = since - self.lookback_ns
            if self.watermark_ns is None:
                self._reload_open(now)
            res = PassResult("incremental")
            self._refresh_stats()
            clusters = self._cut_clusters(now - self.lookback_ns)
            where = dirty_keys_clause(self.db) + " AND " + ruled_out_clause(self.db, self.engine.prefilter_sql())
            params: dict[str, Any] = {"since": since}
            if clusters:  # members of a cluster are re-judged as it grows, however old their spans
                where = f"(({where}) OR {key_list_clause('ckeys', 'ctids')})"
                params.update(ckeys=[f"{t}/{s}" for t, s in clusters], ctids=sorted({t for t, _ in clusters}))
            recs = iter_records(self.client_locked(), self.db, lo, now, self._sharded(where), params,
                                mask_sql=self.engine.rule_mask_sql())
            self._run(recs, now, res, clusters=clusters)
            self.watermark_ns = now
            res.seconds = time.perf_counter() - t0
            return res

    def sweep(self, now_ns: int | None = None) -> PassResult:
        """Re-evaluate the calls still open (no call span yet) against the clock."""
        with self._pass_lock:
            now = now_ns or time.time_ns()
            t0 = time.perf_counter()
            res = PassResult("sweep")
            if self.open_keys:
                self._run_keys(sorted(self.open_keys), now - 2 * self.lookback_ns, now, res, sharded=True)
            res.seconds = time.perf_counter() - t0
            return res

    def relabel(self, keys: Sequence[tuple[str, str]], since_ns: int, now_ns: int | None = None) -> PassResult:
        """Classify these calls (TraceId, SpanId) again now: feedback changed what applies to them.
        ``since_ns``: no later than the earliest call's start."""
        with self._pass_lock:
            now = now_ns or time.time_ns()
            t0 = time.perf_counter()
            res = PassResult("relabel")
            self._feedback = None  # read what was just said
            group_keys = [f"/{s}" if s.startswith("obj:") else f"{t}/{s}" for t, s in keys]
            self._run_keys(sorted(set(group_keys)), since_ns - self.lookback_ns, now, res)
            res.seconds = time.perf_counter() - t0
            return res

    def full(self, since_ns: int | None = None, now_ns: int | None = None, write: bool = True) -> PassResult:
        """Every record since ``since_ns`` (default: the lookback window)."""
        with self._pass_lock:
            now = now_ns or time.time_ns()
            t0 = time.perf_counter()
            res = PassResult("full")
            self._refresh_stats()
            res.phases["fix_rate_stats"] = time.perf_counter() - t0
            lo = since_ns if since_ns is not None else now - self.lookback_ns
            where = self._sharded(candidate_keys_clause(self.db, self.engine.prefilter_sql()))
            t1 = time.perf_counter()
            res.covered = int(self.labels.query(
                f"SELECT count() AS n FROM `{self.db}`.otel_traces WHERE LlmSpan = 'call' "
                "AND Timestamp >= fromUnixTimestamp64Nano({lo:Int64})", {"lo": lo})[0]["n"])
            res.phases["count"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            clusters = self._cut_clusters(lo)
            res.phases["cut_clusters"] = time.perf_counter() - t2
            self._run(iter_records(self.client_locked(), self.db, lo, now, where, mask_sql=self.engine.rule_mask_sql()),
                      now, res, write=write, window_lo=lo, clusters=clusters)
            res.seconds = time.perf_counter() - t0
            return res

    def run_once(self) -> dict[str, Any]:
        """What ``POST /api/classify`` does: an incremental pass, then a sweep of open calls."""
        inc = self.incremental()
        sw = self.sweep()
        return {"incremental": inc.to_dict(), "sweep": sw.to_dict(), "labels": inc.labels + sw.labels}

    # -- internals ------------------------------------------------------------------------------------
    def client_locked(self) -> Any:
        return _LockedClient(self.client, self.labels.lock)

    def _run_keys(self, keys: list[str], lo: int, now: int, res: PassResult, sharded: bool = False) -> None:
        """Classify the groups named ``trace/span`` (or ``/obj:<id>`` for object-keyed polls); ``sharded``:
        only those of this replica's shard (the sweep; feedback re-labels the calls it names, wherever)."""
        def where(clause: str) -> str:
            return self._sharded(clause) if sharded else clause

        by_trace = [k for k in keys if not k.startswith("/")]
        by_object = [k for k in keys if k.startswith("/")]
        for i in range(0, len(by_trace), 10_000):
            chunk = by_trace[i:i + 10_000]
            tids = sorted({k.split("/", 1)[0] for k in chunk})
            self._run(iter_records(self.client_locked(), self.db, lo, now, where(key_list_clause()),
                                   {"keys": chunk, "tids": tids}), now, res)
        if by_object:
            self._run(iter_records(self.client_locked(), self.db, lo, now, where(object_key_clause()),
                                   {"keys": by_object}), now, res)

    def feedback(self) -> FeedbackSet:
        """The feedback in force, re-read at most every ``FEEDBACK_TTL_S`` (and right after new feedback)."""
        if self._feedback is None or time.monotonic() - self._feedback_at > FEEDBACK_TTL_S:
            try:
                self._feedback = FeedbackStore(self.labels).load()
            except Exception as exc:  # noqa: BLE001 - a pass must not fail on feedback; labels stay rule-made
                log.warning("label feedback unavailable: %s", exc)
                self._feedback = self._feedback or FeedbackSet()
            self._feedback_at = time.monotonic()
        return self._feedback

    def _reload_open(self, now: int) -> None:
        rows = self.labels.query(open_keys_sql(self.db, shard_clause(*self.shard)), {"lo": now - self.lookback_ns})
        self.open_keys = {f"{r['g']}/{r['k']}" for r in rows}

    def _mark_followed_up(self, recs: list[Record]) -> None:
        """``followed_up`` = a later call span of the same service acted on the same object (run id)."""
        if not recs:
            return
        objs = sorted({r["object_id"] for r in recs})
        rows = self.labels.query(
            f"SELECT SpanAttributes['streamtriage.object.id'] AS obj, toUnixTimestamp64Nano(Timestamp) AS t, SpanId AS sid, "
            f"ServiceName AS svc FROM `{self.db}`.otel_traces WHERE LlmSpan = 'call' AND LlmApi = 'assistants.runs' "
            "AND obj IN {objs:Array(String)}", {"objs": objs})
        for rec in recs:  # same service too: ids from different deployments (or simulators) may collide
            rec["followed_up"] = any(r["obj"] == rec["object_id"] and r["svc"] == rec["service"]
                                     and r["sid"] != rec["span_id"] and r["t"] > rec["start_ns"] for r in rows)

    def _cut_clusters(self, lo: int) -> CutClusters:
        """Calls cut at the same duration from the request as others to their server (an inferred limit)."""
        return find_cut_clusters(self.labels.query, self.db, lo, self.engine.thresholds.values)

    def _refresh_stats(self) -> None:
        try:
            self._stats = self.labels.kb_stats()
        except Exception as exc:  # noqa: BLE001 - stats are decoration; a pass must not fail on them
            log.warning("fix-rate statistics unavailable: %s", exc)

    def _run(self, recs: Iterable[Record], now: int, res: PassResult, write: bool = True,
             window_lo: int | None = None, clusters: CutClusters | None = None) -> None:
        """Classify while streaming; touch the store only after the stream is closed."""
        t_start = time.perf_counter()
        classify = self.engine.classify
        apply_feedback = self.feedback().apply
        labelled: list[tuple[Record, Any]] = []
        unlabelled: list[Record] = []
        waiting: list[Record] = []  # runs parked in requires_action: did a later call follow up?

        def settle(recs: Iterable[Record]) -> Iterable[Record]:
            for rec in recs:
                res.records += 1
                if rec["open"]:
                    res.open += 1
                    self.open_keys.add(_group_key(rec))
                else:
                    self.open_keys.discard(_group_key(rec))
                if rec["api"] == "assistants.runs" and rec["object_id"] and not rec["open"] and (
                        rec["status"] == "requires_action" or rec["terminal_event"] == "thread.run.requires_action"):
                    waiting.append(rec)
                    continue
                yield rec

        def deferred() -> Iterable[Record]:
            self._mark_followed_up(waiting)
            yield from waiting

        for rec in itertools.chain(settle(recs), _lazy(deferred)):
            if clusters:
                annotate(rec, clusters)
            lb = apply_feedback(rec, classify(rec), self.kb)
            if lb is not None:
                labelled.append((rec, lb))
            else:
                unlabelled.append({"trace_id": rec["trace_id"], "span_id": rec["span_id"], "start_ns": rec["start_ns"],
                                   "service": rec["service"], "model": rec["model"], "api": rec["api"],
                                   "fingerprint": rec["fingerprint"], "outcome": rec["outcome"], "open": rec["open"]})
        res.labelled += len(labelled)
        t_run = time.perf_counter()
        res.phases["assemble_classify"] = res.phases.get("assemble_classify", 0.0) + (t_run - t_start)
        if not write:
            return
        keys = [(r["trace_id"], r["span_id"]) for r, _ in labelled] + [(r["trace_id"], r["span_id"]) for r in unlabelled]
        current = self.labels.current(keys, window_lo if len(keys) > 50_000 else None)
        t_cur = time.perf_counter()
        res.phases["current_labels"] = res.phases.get("current_labels", 0.0) + (t_cur - t_run)
        stats = {k: KbStats(v.evidence_count, v.with_fingerprint, v.fixed) for k, v in self._stats.items()}
        for rec, lb in labelled:  # calls newly matched by a KB id add to its evidence count
            prev = current.get((rec["trace_id"], rec["span_id"]))
            if prev is None or prev["KbId"] != lb.kb_id:
                stats.setdefault(lb.kb_id, KbStats()).evidence_count += 1
        rows = []
        for rec in unlabelled:
            prev = current.get((rec["trace_id"], rec["span_id"]))
            if prev is not None:
                rows.append(label_row(rec, None, self.kb, stats, self.rule_version, next_version(),
                                      deleted=True, previous=prev))
                res.withdrawn += 1
        for rec, lb in labelled:
            prev = current.get((rec["trace_id"], rec["span_id"]))
            if prev is not None and prev["KbId"] == lb.kb_id and abs(float(prev["Confidence"]) - lb.confidence) < 1e-3 \
                    and int(prev["IsOpen"]) == (1 if rec["open"] else 0) and prev["Outcome"] == (rec.get("outcome") or "") \
                    and prev["Title"] == lb.title and prev.get("LabelSource", "rule") == lb.source \
                    and int(prev.get("Muted") or 0) == int(lb.muted):
                continue  # unchanged: keep the existing row
            rows.append(label_row(rec, lb, self.kb, stats, self.rule_version, next_version()))
            res.written += 1
            res.labels.append({"trace_id": rec["trace_id"], "span_id": rec["span_id"], **lb.to_dict(),
                               "open": bool(rec["open"])})
        t_rows = time.perf_counter()
        res.phases["label_rows"] = res.phases.get("label_rows", 0.0) + (t_rows - t_cur)
        for i in range(0, len(rows), 50_000):
            self.labels.write(rows[i:i + 50_000])
        res.phases["write"] = res.phases.get("write", 0.0) + (time.perf_counter() - t_rows)


def _lazy(make: Any) -> Iterable[Record]:
    """Defer building an iterable until the previous one in a chain is exhausted."""
    yield from make()


def _group_key(rec: Record) -> str:
    sid = rec["span_id"]
    if sid.startswith("obj:"):
        return f"/{sid}"
    return f"{rec['trace_id']}/{sid}"


class _LockedClient:
    """Streams a query while holding the client lock (clickhouse-connect clients are not re-entrant)."""

    def __init__(self, client: Any, lock: Any) -> None:
        self._client, self._lock = client, lock

    def query_row_block_stream(self, *a: Any, **kw: Any) -> Any:
        return _Held(self._lock, lambda: self._client.query_row_block_stream(*a, **kw))


class _Held:
    def __init__(self, lock: Any, open_stream: Any) -> None:
        self._lock, self._open = lock, open_stream
        self._cm: Any = None

    def __enter__(self) -> Any:
        self._lock.acquire()
        try:
            self._cm = self._open()
            return self._cm.__enter__()
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            self._cm.__exit__(*exc)
        finally:
            self._lock.release()
