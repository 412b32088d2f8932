"""FastAPI dependencies as ``Annotated`` aliases: handlers read ``store: StoreDep``, ``_: AuthDep``.

Tests (and other components' routers) use the same aliases; ``app.dependency_overrides`` can swap them.
"""
from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from .metrics import Metrics
from .settings import Settings
from .state import CollectorState
from .store import Store
from .writer import Writer


def get_state(request: Request) -> CollectorState:
    return request.app.state.collector


def get_settings(state: Annotated[CollectorState, Depends(get_state)]) -> Settings:
    return state.settings


def get_store(state: Annotated[CollectorState, Depends(get_state)]) -> Store:
    return state.store


def get_writer(state: Annotated[CollectorState, Depends(get_state)]) -> Writer:
    return state.writer


def get_metrics(state: Annotated[CollectorState, Depends(get_state)]) -> Metrics:
    return state.metrics


def require_token(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    """With a configured token, ingest (``/v1/traces``) needs ``Authorization: Bearer <token>``."""
    _check_bearer(request, settings.token)


def _check_bearer(request: Request, secret: str | None) -> None:
    if not secret:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), secret.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


def require_read_token(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    """``/api/*`` needs the read token (or the ingest token when no read token is configured)."""
    _check_bearer(request, settings.reader_token)


StateDep = Annotated[CollectorState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
WriterDep = Annotated[Writer, Depends(get_writer)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
AuthDep = Annotated[None, Depends(require_token)]  # ingest
ReadAuthDep = Annotated[None, Depends(require_read_token)]  # /api/*
