"""Feedback on labels over HTTP (listed in ``app.EXTENSIONS``); the rules live in ``classifier/feedback.py``.

- ``POST /api/labels/{trace_id}/feedback`` ``{"verdict": "confirm" | "wrong" | "clear", "right_kb_id": ...,
  "span_id": ..., "author": ..., "note": ...}``: a verdict on a call's label; ``wrong`` names the right
  entry (or ``"none"``: not an incident). The call is re-labelled before the answer.
- ``POST /api/mutes`` ``{"service": ..., "kb_id": ...}`` mutes an entry for a service;
  ``DELETE /api/mutes?service=...&kb_id=...`` unmutes it.
- ``GET /api/feedback``: verdicts and mutes in force, and the precision per entry.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..api_models import FeedbackSummary, MuteResult, VerdictResult
from ..deps import ReadAuthDep
from ..queries import TRACE_ID
from ..routes_classifier import _classifier

router = APIRouter(prefix="/api", tags=["feedback"])
M = TypeVar("M", bound=BaseModel)


class VerdictIn(BaseModel):
    verdict: str = Field(description="confirm | wrong | clear")
    right_kb_id: str | None = Field(None, description="with 'wrong': the entry that applies, or 'none'")
    span_id: str | None = Field(None, description="which call, when the trace holds several")
    author: str = ""
    note: str = ""


class MuteIn(BaseModel):
    service: str
    kb_id: str
    author: str = ""
    note: str = ""


async def _do(shape: Callable[[Any], M], fn: Any, *args: Any, **kw: Any) -> M:
    """Run a feedback step off the event loop; its answer in the API's shape (``api_models``)."""
    from streamtriage.classifier.feedback import FeedbackError

    try:
        return shape(await run_in_threadpool(fn, *args, **kw))
    except FeedbackError as exc:
        raise HTTPException(400, str(exc)) from exc
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.post("/labels/{trace_id}/feedback", summary="Confirm a call's label, or mark it wrong with the right entry")
async def label_feedback(trace_id: str, body: VerdictIn, request: Request, _auth: ReadAuthDep) -> VerdictResult:
    from streamtriage.classifier.feedback import give_verdict

    tid = trace_id.lower()
    if not TRACE_ID.match(tid):
        raise HTTPException(400, "trace_id must be 32 hex characters")
    clf = _classifier(request.app.state.collector)
    return await _do(VerdictResult.from_raw, give_verdict, clf, tid, body.verdict, body.right_kb_id, body.span_id, body.author, body.note)


@router.post("/mutes", summary="Mute a knowledge-base entry for a service")
async def mute(body: MuteIn, request: Request, _auth: ReadAuthDep) -> MuteResult:
    from streamtriage.classifier.feedback import set_mute

    clf = _classifier(request.app.state.collector)
    return await _do(MuteResult.model_validate, set_mute, clf, body.service, body.kb_id, True, body.author, body.note)


@router.delete("/mutes", summary="Unmute a knowledge-base entry for a service")
async def unmute(request: Request, _auth: ReadAuthDep, service: Annotated[str, Query()],
                 kb_id: Annotated[str, Query()]) -> MuteResult:
    from streamtriage.classifier.feedback import set_mute

    clf = _classifier(request.app.state.collector)
    return await _do(MuteResult.model_validate, set_mute, clf, service, kb_id, False)


@router.get("/feedback", summary="Verdicts and mutes in force, and precision per knowledge-base entry")
async def feedback(request: Request, _auth: ReadAuthDep) -> FeedbackSummary:
    from streamtriage.classifier.feedback import summary

    clf = _classifier(request.app.state.collector)
    return await _do(FeedbackSummary.model_validate, summary, clf)
