"""The background writer: batches spans by size/age, makes them durable, replays the spool.

Contract with the ingest route: ``await writer.submit(rows)`` returns only when the rows are
durable, i.e. inserted into the store or appended+fsynced to the spool. Concurrent requests are
group-committed into one batch (one insert or one fsync for many senders).

Durability modes (``Settings.durability``):
- ``insert`` (default): insert the batch within ``insert_deadline_s``; on error or timeout append it
  to the spool and answer. While an insert is running, or the spool holds anything, new batches go
  to the spool (answered after the fsync) and the replayer inserts them together: under light load
  a 200 means "in the store", under heavy load the collector turns into a WAL with big inserts,
  and the store always sees batches in arrival order. A batch spooled on timeout whose insert
  later succeeds gets a DONE marker, so replay skips it.
- ``wal``: always append to the spool first, answer, then the replayer inserts from the spool.

Memory is bounded: ``submit`` refuses (``Overloaded`` -> 429) beyond ``queue_max_spans`` queued spans
and (``SpoolFull`` -> 503) when the store is unavailable and the spool exceeds ``spool_max_bytes``.
One thread does all store inserts and one does all spool file work, so neither needs locking.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .decode_worker import SEPARATOR
from .metrics import Metrics
from .settings import Settings
from .spool import BATCH, DONE, Record, Spool, SpoolCorrupt
from .store import Store

log = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    """Too many spans queued in memory: the sender should retry after a pause (429)."""


class Unavailable(RuntimeError):
    """Cannot make spans durable right now (store down and spool full, or shutting down): 503."""


@dataclass
class _Pending:
    payload: bytes  # JSONCompactEachRow rows (decode_worker.Decoded.payload)
    spans: int
    future: asyncio.Future[None]


class Writer:
    def __init__(self, settings: Settings, store: Store, spool: Spool, metrics: Metrics) -> None:
        self.settings = settings
        self.store = store
        self.spool = spool
        self.metrics = metrics
        self._queue: deque[_Pending] = deque()
        self.queued_spans = 0
        self._wake = asyncio.Event()
        self._drain_wake = asyncio.Event()
        self._insert_exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="st-insert")
        self._spool_exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="st-spool")
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._done_ids: set[int] = set()
        self._next_batch_id = 1
        self.backlog = False  # spool holds batches not yet in the store
        self.store_ok = True
        self.spool_bytes = 0
        # Inserts that missed their deadline (their batch was spooled): (insert future, batch id).
        self._late: list[tuple[concurrent.futures.Future[None], int, int]] = []
        self._inserting: asyncio.Task[None] | None = None  # the direct insert in flight, if any
        self._last_replay = 0.0  # monotonic end of the last replay insert

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._done_ids = await loop.run_in_executor(self._spool_exec, self.spool.done_batches)
        self._next_batch_id = max(await loop.run_in_executor(self._spool_exec, self.spool.max_batch_id),
                                  time.time_ns() // 1000) + 1
        self.spool_bytes = await loop.run_in_executor(self._spool_exec, self.spool.size_bytes)
        self.backlog = self.spool_bytes > 0
        self._tasks = [asyncio.create_task(self._batch_loop(), name="st-batcher"),
                       asyncio.create_task(self._drain_loop(), name="st-replayer")]
        if self.backlog:
            log.warning("spool holds %d bytes from a previous run: replaying into the store", self.spool_bytes)
            self._drain_wake.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Make everything queued durable (insert or spool), then stop the background tasks."""
        self._closing = True
        self._wake.set()
        deadline = time.monotonic() + timeout
        while (self._queue or self._inserting is not None) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        while self._queue:  # not made durable: the senders get an error, not a false 200
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(Unavailable("collector is shutting down"))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._spool_exec, self.spool.close)
        self._insert_exec.shutdown(wait=False, cancel_futures=True)
        self._spool_exec.shutdown(wait=True)

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every acknowledged span is in the store (queue empty, no insert running, spool
        replayed); False if that did not happen within ``timeout`` (the store is down or slow).

        A 200 can mean "spooled", so readers that must see everything acknowledged so far (a
        classification pass on demand) call this first.
        """
        deadline = time.monotonic() + timeout
        while self._queue or self._inserting is not None or self.queued_spans or self.backlog:
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            await asyncio.sleep(0.02)
        return True

    # -- ingest side ---------------------------------------------------------------------------
    async def submit(self, payload: bytes, n: int) -> None:
        """Return once the ``n`` spans in ``payload`` are durable; raise Overloaded/Unavailable if not taken."""
        if not n:
            return
        if self._closing:
            raise Unavailable("collector is shutting down")
        # An empty queue takes any request (its size is bounded by max_body_bytes), so a big
        # request is never refused forever; otherwise the bound holds.
        if self.queued_spans and self.queued_spans + n > self.settings.queue_max_spans:
            raise Overloaded(f"{self.queued_spans} spans queued (limit {self.settings.queue_max_spans})")
        if (self.backlog or not self.store_ok) and self.spool_bytes > self.settings.spool_max_bytes:
            raise Unavailable(f"store unavailable and spool full ({self.spool_bytes} bytes)")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(payload, n, fut))
        self.queued_spans += n
        self._wake.set()
        await fut

    # -- batching ------------------------------------------------------------------------------
    async def _batch_loop(self) -> None:
        s = self.settings
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                continue
            # Let a batch fill up for at most batch_max_age_s (group commit).
            first = time.monotonic()
            while (self.queued_spans < s.batch_max_spans and not self._closing
                   and time.monotonic() - first < s.batch_max_age_s):
                await asyncio.sleep(min(0.005, s.batch_max_age_s))
            while self._queue:
                batch: list[_Pending] = []
                count = 0
                while self._queue and (not batch or count + self._queue[0].spans <= s.batch_max_spans):
                    item = self._queue.popleft()
                    batch.append(item)
                    count += item.spans
                await self._commit(batch, count)

    async def _commit(self, batch: list[_Pending], count: int) -> None:
        payload = SEPARATOR.join(item.payload for item in batch)
        busy = time.monotonic() - self._last_replay < self.settings.busy_hold_s  # sustained load: stay WAL
        if (self.settings.durability == "wal" or self.backlog or not self.store_ok
                or self._inserting is not None or busy):
            # WAL, recovering, or an insert is already running: the spool answers now and the
            # replayer inserts these batches together, in order, after the running insert.
            await self._finish(batch, count, self._spool_batch(payload, count))
        else:
            self._inserting = asyncio.create_task(self._finish(batch, count, self._insert_or_spool(payload, count)))
            self._inserting.add_done_callback(self._insert_done)

    def _insert_done(self, _task: asyncio.Task[None]) -> None:
        self._inserting = None

    async def _finish(self, batch: list[_Pending], count: int, work: Any) -> None:
        """Await ``work`` (insert or spool), then answer every request in the batch."""
        try:
            await work
            outcome: BaseException | None = None
        except Exception as exc:  # noqa: BLE001 - neither stored nor spooled: senders must retry
            log.error("could not make %d spans durable: %s", count, exc)
            outcome = Unavailable(f"spans could not be stored or spooled: {exc}")
        finally:
            self.queued_spans -= count
        for item in batch:
            if not item.future.done():
                if outcome is None:
                    item.future.set_result(None)
                else:
                    item.future.set_exception(outcome)

    async def _insert_or_spool(self, payload: bytes, n: int) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        fut = self._insert_exec.submit(self.store.insert_payload, payload)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), self.settings.insert_deadline_s)
        except asyncio.TimeoutError:
            batch_id = await self._spool_batch(payload, n)
            log.warning("store insert exceeded %.1fs: %d spans spooled", self.settings.insert_deadline_s, n)
            self._late.append((fut, batch_id, n))
            fut.add_done_callback(lambda _f: loop.call_soon_threadsafe(self._drain_wake.set))
            return
        except Exception as exc:  # noqa: BLE001 - store down: spool
            self.metrics.inc("store_errors")
            self.store_ok = False
            log.warning("store insert failed (%s): %d spans spooled", exc, n)
            await self._spool_batch(payload, n)
            return
        self.metrics.observe_write(time.monotonic() - started)
        self.metrics.inc("spans_stored", n)
        self.store_ok = True

    async def _spool_batch(self, payload: bytes, n: int) -> int:
        loop = asyncio.get_running_loop()
        batch_id = self._next_batch_id
        self._next_batch_id += 1
        written = await loop.run_in_executor(self._spool_exec, self.spool.append, BATCH, batch_id, payload, n)
        self.spool_bytes += written
        self.backlog = True
        self.metrics.inc("spans_spooled", n)
        self._drain_wake.set()
        return batch_id

    # -- replay --------------------------------------------------------------------------------
    async def _drain_loop(self) -> None:
        backoff = 0.1
        while True:
            try:
                await asyncio.wait_for(self._drain_wake.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            self._drain_wake.clear()
            if not self.backlog:
                continue
            if self.settings.durability == "wal" and not self._closing:
                # Let the active segment fill a little: inserts have a large fixed cost per call, so
                # fewer, bigger replays keep up with a higher ingest rate. (In insert mode the running
                # insert already gives the spool that time.)
                await asyncio.sleep(self.settings.replay_delay_s)
            try:
                await self._drain_once()
                backoff = 0.1
            except Exception as exc:  # noqa: BLE001 - store still down: retry later
                self.store_ok = False
                log.info("spool replay paused (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.replay_backoff_max_s)
                self._drain_wake.set()

    def _read_segment(self, path: Path) -> list[Record]:
        return list(self.spool.read(path))

    async def _drain_once(self) -> None:
        loop = asyncio.get_running_loop()
        if any(not fut.done() for fut, _, _ in self._late):
            return  # a timed-out insert is still running: wait, its outcome decides what to skip
        for fut, batch_id, n in self._late:
            if fut.exception() is None:  # it did land: never replay that batch
                self._done_ids.add(batch_id)
                self.metrics.inc("spans_stored", n)
                await loop.run_in_executor(self._spool_exec, self.spool.append, DONE, batch_id)
            else:
                self.metrics.inc("store_errors")
        self._late.clear()
        inserting = self._inserting
        if inserting is not None:
            # Batches spooled while a direct insert runs are replayed right after it, in one go.
            await asyncio.wait({inserting})
        await loop.run_in_executor(self._spool_exec, self.spool.seal)
        segments = await loop.run_in_executor(self._spool_exec, self.spool.sealed_segments)
        group: list[Path] = []
        records: list[Record] = []
        for i, path in enumerate(segments):
            try:
                records += await loop.run_in_executor(self._spool_exec, self._read_segment, path)
            except SpoolCorrupt:
                await loop.run_in_executor(self._spool_exec, self.spool.quarantine, path)
                continue
            group.append(path)
            spans = sum(r.spans for r in records if r.kind != DONE)
            if spans < self.settings.replay_max_spans and i + 1 < len(segments):
                continue  # fewer, bigger inserts: the per-insert cost dominates small ones
            await self._replay(group, records)
            group, records = [], []
        if group:
            await self._replay(group, records)
        self.spool_bytes = await loop.run_in_executor(self._spool_exec, self.spool.size_bytes)
        if self.spool_bytes == 0:
            self.backlog = False
        else:
            self._drain_wake.set()

    async def _replay(self, group: list[Path], records: list[Record]) -> None:
        """Insert the not-yet-stored batches of consecutive segments at once, then delete them."""
        loop = asyncio.get_running_loop()
        done = self._done_ids | {r.batch_id for r in records if r.kind == DONE}
        todo = [r for r in records if r.kind != DONE and r.batch_id not in done and r.payload]
        if todo:
            payload = SEPARATOR.join(r.payload for r in todo)
            n = sum(r.spans for r in todo)
            started = time.monotonic()
            try:
                await loop.run_in_executor(self._insert_exec, self.store.insert_payload, payload)
            except Exception:
                self.metrics.inc("store_errors")
                raise
            self.metrics.observe_write(time.monotonic() - started)
            self.metrics.inc("spans_stored", n)
            self.metrics.inc("spans_replayed", n)
            self._last_replay = time.monotonic()
        self.store_ok = True
        for path in group:
            await loop.run_in_executor(self._spool_exec, self.spool.remove, path)
