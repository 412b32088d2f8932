"""Liveness, readiness and Prometheus metrics (unauthenticated: probes and scrapers carry no token)."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from ..deps import StateDep
from ..store import LABELS_TABLE, StoreError

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ingest can make spans durable (store reachable, or spool usable)")
async def readyz(state: StateDep) -> JSONResponse:
    store_ok = await run_in_threadpool(state.store.ping)
    w = state.writer
    spool_ok = w.spool_bytes <= state.settings.spool_max_bytes
    ready = store_ok or spool_ok
    body = {"status": "ready" if ready else "unavailable", "store": "ok" if store_ok else "down",
            "spool_bytes": w.spool_bytes, "backlog": w.backlog, "queued_spans": w.queued_spans}
    return JSONResponse(body, status_code=200 if ready else 503)


def _incidents_by_category(state: StateDep) -> dict[str, float]:
    db = state.store.database
    try:
        rows = state.store.query(
            f"SELECT Category, count() AS n FROM `{db}`.{LABELS_TABLE} FINAL WHERE IsDeleted = 0 GROUP BY Category")
    except StoreError:
        return {}
    return {str(r["Category"]): float(r["n"]) for r in rows}


POLLED_APIS = ("assistants.runs", "responses", "vector_stores.files", "vector_stores.file_batches", "vector_stores")


def _oldest_open_hang(state: StateDep) -> dict[str, float]:
    """Per API kind, seconds the longest-open polled object has been non-terminal (last hour; 0 if none).

    An object's status is its latest *successful* poll (a failed read says nothing about it), as on the
    dashboards' "Hangs currently open" panel.
    """
    db = state.store.database
    oldest = dict.fromkeys(POLLED_APIS, 0.0)
    try:
        rows = state.store.query(f"""
SELECT api, max(open_s) AS oldest FROM (
  SELECT LlmApi AS api, SpanAttributes['streamtriage.object.id'] AS object_id,
         argMax(LlmStatus, Timestamp) AS status,
         greatest(argMax(toFloat64OrZero(SpanAttributes['streamtriage.poll.first_seen_ms']), Timestamp),
                  toFloat64(toUnixTimestamp64Milli(max(Timestamp)) - toUnixTimestamp64Milli(min(Timestamp)))) / 1000
           AS open_s
  FROM `{db}`.otel_traces
  WHERE LlmSpan = 'poll' AND Timestamp >= now64(9) - INTERVAL 1 HOUR
    AND SpanAttributes['error.type'] = '' AND LlmStatus NOT IN ('', 'unknown', 'error')
  GROUP BY api, object_id)
WHERE status IN ('queued', 'in_progress', 'requires_action', 'cancelling')
GROUP BY api""")
    except StoreError:
        return oldest
    oldest.update({str(r["api"]): float(r["oldest"]) for r in rows})
    return oldest


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(state: StateDep) -> PlainTextResponse:
    by_category = await run_in_threadpool(_incidents_by_category, state) if state.store.connected else {}
    hangs = await run_in_threadpool(_oldest_open_hang, state) if state.store.connected else {}
    w = state.writer
    text = state.metrics.render(
        gauges={
            "queue_spans": ("Spans waiting in memory to be made durable.", w.queued_spans),
            "spool_bytes": ("Bytes in the on-disk spool not yet replayed.", w.spool_bytes),
            "store_up": ("1 when the last store operation succeeded.", 1.0 if w.store_ok else 0.0),
        },
        labelled={"incidents": ("Labelled calls (streamtriage_labels FINAL, not deleted) by category.",
                                "category", by_category),
                  "polling_hang_oldest_seconds": ("Seconds the longest-open polled object (run, background "
                                                  "response, file) has stayed non-terminal, per API kind.",
                                                  "api", hangs)},
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
