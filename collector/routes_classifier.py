"""The classifier inside the collector: ``POST /api/classify``, ``GET /api/kb``, ``GET /api/kb/{id}``, and
the background loop that classifies continuously (listed in ``app.EXTENSIONS``).

The loop runs an incremental pass plus a sweep of open calls every ``classify_interval_s`` seconds
(``Settings``; ``STREAMTRIAGE_CLASSIFY_INTERVAL_S``, default 5, 0 turns it off) in a worker thread,
on a client of its own (``Store.open_client``), so it never waits behind the writer or the API. Thresholds come from ``serve --threshold`` flags, then the environment, then the defaults
(``classifier/thresholds.py``).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from .api_models import ClassifyResult, KbEntry, KbSummary
from .deps import ReadAuthDep
from .state import CollectorState

log = logging.getLogger("streamtriage.classifier")
router = APIRouter(prefix="/api", tags=["classifier"])
KEY = "classifier"


def _classifier(state: CollectorState) -> Any:
    clf = state.extras.get(KEY)
    if clf is None:
        from streamtriage.classifier.service import Classifier
        from streamtriage.classifier.thresholds import Thresholds
        from streamtriage.classifier.user_kb import load_with_user

        client = state.store.open_client()
        clf = Classifier(client, state.store.database, kb=load_with_user(state.settings.kb_dir),
                         thresholds=Thresholds.from_env(flags=state.settings.thresholds))
        state.extras[KEY] = clf
        state.extras[KEY + "_client"] = client
    return clf


def _state(request: Request) -> CollectorState:
    return request.app.state.collector


@router.post("/classify", summary="Run a classification pass now (incremental + open-call sweep)")
async def classify_now(request: Request, _auth: ReadAuthDep) -> ClassifyResult:
    state = _state(request)
    clf = _classifier(state)
    # Everything acknowledged so far is classified: a 200 may mean "spooled", so replay it first.
    if not await state.writer.flush(timeout=30.0):
        log.warning("classifying before the spool was replayed: the store is slow or down")
    try:
        return ClassifyResult.model_validate(await run_in_threadpool(clf.run_once))
    except Exception as exc:  # noqa: BLE001 - report, do not crash the API
        log.exception("classification pass failed")
        raise HTTPException(503, f"classification failed: {exc}") from exc


def _stats(clf: Any) -> dict[str, Any]:
    try:
        return clf.labels.kb_stats()
    except Exception:  # noqa: BLE001 - the KB is readable without the store
        return {}


@router.get("/kb", summary="Knowledge-base entries with prior and observed fix rates")
async def kb_list(request: Request, _auth: ReadAuthDep) -> list[KbSummary]:
    from streamtriage.classifier.render import kb_summary

    clf = _classifier(_state(request))
    stats = await run_in_threadpool(_stats, clf)
    return [KbSummary.model_validate(row) for row in kb_summary(clf.kb, stats)]


@router.get("/kb/{kb_id:path}", summary="One knowledge-base entry as JSON or Markdown (format=md)",
            response_model=KbEntry, responses={200: {"content": {"text/markdown": {}}}})
async def kb_entry(
    request: Request,
    kb_id: str,
    _auth: ReadAuthDep,
    format: Annotated[str, Query(pattern="^(json|md)$")] = "json",
    lang: Annotated[str, Query(pattern="^(en|zh)$")] = "en",
) -> Any:
    from streamtriage.classifier.render import entry_json, entry_markdown

    clf = _classifier(_state(request))
    entry = clf.kb.get(kb_id)
    if entry is None:
        raise HTTPException(404, f"no knowledge-base entry {kb_id!r}")
    stats = (await run_in_threadpool(_stats, clf)).get(kb_id)
    if format == "md":
        return PlainTextResponse(entry_markdown(entry, lang, stats), media_type="text/markdown; charset=utf-8")
    return KbEntry.model_validate(entry_json(entry, lang, stats))


def _sharded_pass(clf: Any, replicas: Any) -> None:
    """Heartbeat, take this replica's share of the calls (classifier/replicas.py), classify it."""
    clf.set_shard(*replicas.heartbeat())
    clf.run_once()


async def _loop(state: CollectorState, interval: float) -> None:
    from streamtriage.classifier.replicas import Replicas

    clf = _classifier(state)
    replicas = Replicas(clf.client, clf.db, ttl_s=max(30.0, 3 * interval), lock=clf.labels.lock)
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(_sharded_pass, clf, replicas)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a store outage must not end the loop
            log.warning("background classification failed: %s", exc)


def startup(state: CollectorState) -> None:
    interval = state.settings.classify_interval_s
    _classifier(state)  # load and validate the KB at start: a broken rule fails the service early
    if interval > 0:
        state.start_task("classifier_task", _loop(state, interval))


async def shutdown(state: CollectorState) -> None:
    await state.stop_task("classifier_task")
    client = state.extras.pop(KEY + "_client", None)
    if client is not None:
        client.close()
