"""The dashboards streamtriage ships, each built by one module's ``build()``."""
from __future__ import annotations

from collections.abc import Callable

from ..builder import Json
from . import incidents, relay, runs_polling, stream_health

DASHBOARDS: dict[str, Callable[[], Json]] = {
    stream_health.UID: stream_health.build,
    incidents.UID: incidents.build,
    runs_polling.UID: runs_polling.build,
    relay.UID: relay.build,
}
"""uid -> builder; the uid is also the JSON file name in the provisioning tree."""
