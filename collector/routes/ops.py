"""Liveness, readiness and Prometheus metrics (unauthenticated: probes and scrapers carry no token)."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from ..deps import StateDep
from ..routes_classifier import KEY as CLASSIFIER_KEY

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


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(state: StateDep) -> PlainTextResponse:
    by_category, hangs = state.gauges.snapshot()  # kept by the service (collector/gauges.py), not queried here
    w = state.writer
    shard_index, shard_count = getattr(state.extras.get(CLASSIFIER_KEY), "shard", (0, 1))
    text = state.metrics.render(
        gauges={
            "queue_spans": ("Spans waiting in memory to be made durable.", w.queued_spans),
            "spool_bytes": ("Bytes in the on-disk spool not yet replayed.", w.spool_bytes),
            "store_up": ("1 when the last store operation succeeded.", 1.0 if w.store_ok else 0.0),
            "classifier_replicas": ("Live collectors splitting the classification of this store "
                                    "(classifier/replicas.py).", shard_count),
            "classifier_shard": ("This collector's share of the calls: shard index among the live replicas.",
                                 shard_index),
        },
        labelled={"incidents": ("Labelled calls (streamtriage_labels FINAL, not deleted) by category.",
                                "category", by_category),
                  "polling_hang_oldest_seconds": ("Seconds the longest-open polled object (run, background "
                                                  "response, file) has stayed non-terminal, per API kind.",
                                                  "api", hangs)},
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
