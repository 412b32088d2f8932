"""The store-derived gauges of ``/metrics``: labelled incidents by category and, per API kind, how
long the oldest open polling hang has been open.

The service keeps them and refreshes them every ``Settings.gauges_refresh_s`` in a worker thread, so
a scrape only reads the last values and never queries the store. The hang age is the span
contract's fact (``contract.facts``), the same the dashboards and the Grafana alert use.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from streamtriage.contract.facts import NON_TERMINAL_SQL, OBJECT_OPEN_S_SQL, OBJECT_STATUS_SQL, POLLED_APIS

from .store import LABELS_TABLE, TRACES_TABLE, Store, StoreError

if TYPE_CHECKING:
    from .state import CollectorState

log = logging.getLogger("streamtriage.collector")
TASK = "gauges_task"


def incidents_sql(db: str) -> str:
    return (f"SELECT Category, count() AS n FROM `{db}`.{LABELS_TABLE} FINAL WHERE IsDeleted = 0 "
            "GROUP BY Category")


def oldest_open_hang_sql(db: str) -> str:
    """Per API kind, seconds the longest-open polled object still not finished has been open (last hour)."""
    return f"""
SELECT api, max(open_for_s) AS oldest FROM (
  SELECT any(LlmApi) AS api, SpanAttributes['streamtriage.object.id'] AS object_id,
         {OBJECT_STATUS_SQL} AS status,
         {OBJECT_OPEN_S_SQL} AS open_for_s
  FROM `{db}`.{TRACES_TABLE}
  WHERE LlmSpan = 'poll' AND Timestamp >= now64(9) - INTERVAL 1 HOUR
  GROUP BY object_id)
WHERE status IN {NON_TERMINAL_SQL}
GROUP BY api"""


@dataclass
class StoreGauges:
    """Last refreshed values; a failed refresh keeps the previous ones."""

    incidents_by_category: dict[str, float] = field(default_factory=dict)
    oldest_open_hang: dict[str, float] = field(default_factory=lambda: dict.fromkeys(POLLED_APIS, 0.0))
    refreshes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refresh(self, store: Store) -> bool:
        """Query the store once; ``False`` when it could not be read."""
        db = store.database
        try:
            incidents = {str(r["Category"]): float(r["n"]) for r in store.query(incidents_sql(db))}
            hangs = dict.fromkeys(POLLED_APIS, 0.0)
            hangs.update({str(r["api"]): float(r["oldest"]) for r in store.query(oldest_open_hang_sql(db))})
        except StoreError as exc:
            log.debug("gauge refresh failed: %s", exc)
            return False
        with self._lock:
            self.incidents_by_category, self.oldest_open_hang = incidents, hangs
            self.refreshes += 1
        return True

    def snapshot(self) -> tuple[dict[str, float], dict[str, float]]:
        with self._lock:
            return dict(self.incidents_by_category), dict(self.oldest_open_hang)


async def _loop(state: CollectorState, interval: float) -> None:
    while True:
        if state.store.connected:
            await asyncio.to_thread(state.gauges.refresh, state.store)
        await asyncio.sleep(interval)


def startup(state: CollectorState) -> None:
    interval = state.settings.gauges_refresh_s
    if interval > 0:
        state.start_task(TASK, _loop(state, interval))


async def shutdown(state: CollectorState) -> None:
    await state.stop_task(TASK)
