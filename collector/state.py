"""What the running service owns, in one object on ``app.state.collector``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .metrics import Metrics
from .service_lock import ServiceLock
from .settings import Settings
from .spool import Spool
from .store import Store
from .writer import Writer


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
