"""For CLI commands that read data: use the running service if there is one, else the store itself.

chDB allows one process per data directory, so while ``streamtriage serve`` runs, other commands
must go through its HTTP API. ``locate(settings)`` finds it through the lock file in the state
directory; when nobody holds the directory it opens the store directly (taking the lock for the
duration, so a service cannot start underneath). Example (the classifier's ``incidents``)::

    with locate(settings) as where:
        rows = where.incidents(since="2h", category="transport")   # same JSON shape either way
        if where.url: ...                                           # talking to the service
        else: where.store.query(...)                                # direct access
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import service_lock
from .queries import get_stream, list_incidents, parse_since
from .settings import Settings
from .store import Store, StoreError


class ServiceError(RuntimeError):
    """The running service answered with an error (``status``: its HTTP status, None when it did not answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Location:
    """Either ``url`` (a running service) or ``store`` (opened directly) is set."""

    url: str | None = None
    store: Store | None = None
    token: str | None = None

    def get(self, path: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        """GET a JSON endpoint of the running service."""
        if not self.url:
            raise ServiceError("no running service; use .store")
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        req = urllib.request.Request(self.url + path + (f"?{query}" if query else ""))
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise ServiceError(f"{self.url}{path}: HTTP {err.code}: {err.read()[:300]!r}", err.code) from err
        except urllib.error.URLError as err:
            raise ServiceError(f"service at {self.url} is not answering: {err.reason}") from err

    def incidents(self, since: str | None = None, category: str | None = None, service: str | None = None,
                  model: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if self.url:
            return self.get("/api/incidents", {"since": since, "category": category, "service": service,
                                               "model": model, "limit": limit}) or []
        assert self.store is not None
        found = list_incidents(self.store, parse_since(since), category, service, model, limit)
        return [incident.model_dump(mode="json") for incident in found]

    def stream(self, trace_id: str) -> dict[str, Any] | None:
        if self.url:
            return self.get(f"/api/streams/{trace_id}")
        assert self.store is not None
        found = get_stream(self.store, trace_id)
        return found.model_dump(mode="json") if found is not None else None


def running_service_url(settings: Settings) -> str | None:
    """Base URL of the service that owns this store's state directory, if one is running."""
    info = service_lock.holder(settings.state_path)
    return str(info["url"]) if info and info.get("url") else None


@contextmanager
def locate(settings: Settings) -> Iterator[Location]:
    info = service_lock.holder(settings.state_path)
    if info is not None:
        if not info.get("url"):
            raise service_lock.DirectoryLocked(settings.state_path, info)
        yield Location(url=str(info["url"]), token=settings.reader_token)
        return
    lock = service_lock.acquire(settings.state_path)
    store = Store(settings)
    try:
        store.connect()
        yield Location(store=store)
    except StoreError:
        raise
    finally:
        store.close()
        lock.release()

