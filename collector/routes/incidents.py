"""``GET /api/incidents``: labelled calls from ``streamtriage_labels FINAL`` (not withdrawn)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from ..api_models import Incident
from ..deps import ReadAuthDep, StoreDep
from ..queries import list_incidents, parse_since
from ..store import StoreError

router = APIRouter(prefix="/api", tags=["api"])


@router.get("/incidents", summary="Labelled calls, newest first")
async def read_incidents(
    store: StoreDep,
    _auth: ReadAuthDep,
    since: Annotated[str | None, Query(description="15m, 2h, 7d or an ISO-8601 time; default 24h")] = None,
    category: str | None = None,
    service: str | None = None,
    model: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    muted: Annotated[bool, Query(description="also labels hidden by a mute (Muted = 1)")] = False,
) -> list[Incident]:
    try:
        start = parse_since(since)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    try:
        rows = await run_in_threadpool(list_incidents, store, start, category, service, model, limit, muted)
    except StoreError as exc:
        raise HTTPException(503, f"store unavailable: {exc}") from exc
    return rows
