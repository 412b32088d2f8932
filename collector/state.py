"""What the running service owns, in one object on ``app.state.collector``."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .gauges import StoreGauges
from .metrics import Metrics
from .service_lock import ServiceLock
from .settings import Settings
from .spool import Spool
from .store import Store
from .writer import Writer

log = logging.getLogger(__name__)
T = TypeVar("T")


class DecoderUnavailable(RuntimeError):
    """A decoder worker process died; the request was not taken (503, the sender retries)."""


def decoder_workers(settings: Settings) -> int:
    """``decode_workers``: -1 = automatic (one process per CPU, at most 4, none on a single CPU)."""
    if settings.decode_workers >= 0:
        return settings.decode_workers
    cpus = os.cpu_count() or 1
    return 0 if cpus < 2 else min(cpus, 4)


def _worker_init(parent_pid: int) -> None:
    """Decoder workers must not outlive the collector, even after ``kill -9``: ask the kernel for a
    SIGKILL when the parent dies (Linux), and watch the parent pid as a fallback."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="st-parent-watch", daemon=True).start()


def make_decoder(settings: Settings) -> concurrent.futures.Executor:
    """Decoding is CPU-bound Python: worker processes give it other cores (only bytes cross the
    boundary); with 0 workers one thread keeps it off the event loop. Workers are spawned, never
    forked, because the parent runs the chDB engine's threads."""
    workers = decoder_workers(settings)
    if workers == 0:
        return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="st-decode")
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=_worker_init, initargs=(os.getpid(),))


@dataclass
class CollectorState:
    settings: Settings
    store: Store
    spool: Spool
    writer: Writer
    metrics: Metrics
    lock: ServiceLock | None = None
    # Free slots for other components' startup hooks (e.g. the classifier's background task).
    extras: dict[str, Any] = field(default_factory=dict)
    decoder: concurrent.futures.Executor | None = None
    gauges: StoreGauges = field(default_factory=StoreGauges)

    def start_task(self, name: str, loop: Coroutine[Any, Any, None]) -> None:
        """Run a component's background loop (kept in ``extras[name]``) until ``stop_task``."""
        self.extras[name] = asyncio.get_running_loop().create_task(loop)

    async def stop_task(self, name: str) -> None:
        """Cancel a loop started with ``start_task`` and wait for it; its failure must not stop shutdown."""
        task = self.extras.pop(name, None)
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    async def decode(self, fn: Callable[..., T], *args: Any) -> T:
        if self.decoder is None:
            self.decoder = make_decoder(self.settings)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.decoder, fn, *args)
        except BrokenProcessPool as exc:
            log.error("a decoder worker died; starting a new pool")
            broken, self.decoder = self.decoder, make_decoder(self.settings)
            broken.shutdown(wait=False, cancel_futures=True)
            raise DecoderUnavailable("decoder worker died; retry") from exc

    def close_decoder(self) -> None:
        if self.decoder is not None:
            self.decoder.shutdown(wait=True, cancel_futures=True)
            self.decoder = None
