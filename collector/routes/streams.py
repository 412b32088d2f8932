"""``GET /api/streams/{trace_id}``: one call with its event/poll spans and its label."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from ..api_models import Stream
from ..deps import ReadAuthDep, StoreDep
from ..queries import TRACE_ID, get_stream
from ..store import StoreError

router = APIRouter(prefix="/api", tags=["api"])


@router.get("/streams/{trace_id}", summary="A call's spans (call, events, polls) and its label")
async def read_stream(trace_id: str, store: StoreDep, _auth: ReadAuthDep) -> Stream:
    tid = trace_id.lower()
    if not TRACE_ID.match(tid):
        raise HTTPException(400, "trace_id must be 32 hex characters")
    try:
        found = await run_in_threadpool(get_stream, store, tid)
    except StoreError as exc:
        raise HTTPException(503, f"store unavailable: {exc}") from exc
    if found is None:
        raise HTTPException(404, f"no spans or label for trace {tid}")
    return found
