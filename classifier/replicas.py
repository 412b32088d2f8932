"""Several collectors on one store split the classification work instead of each redoing all of it.

Each collector's classification loop writes a heartbeat to ``streamtriage_classifier_replicas``;
the replicas seen within ``ttl_s`` are the live ones. Sorted by id, replica ``i`` of ``n`` classifies
the calls whose key hashes to ``i`` modulo ``n`` (the hash runs in ClickHouse, over the same group key
the records are assembled by, so every span of one call goes to one replica). When membership
changes, each replica re-reads its lookback window once: a departed replica's calls are picked up by
their new owner, and labels are idempotent, so a call classified twice in the hand-over is written
once (unchanged labels are not rewritten).
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from .assemble import G_EXPR, K_EXPR

TABLE = "streamtriage_classifier_replicas"


def shard_clause(index: int, count: int) -> str:
    """SQL over one span row: true when the span's call belongs to shard ``index`` of ``count``."""
    if count <= 1:
        return ""
    return f"cityHash64({G_EXPR}, {K_EXPR}) % {int(count)} = {int(index)}"


class Replicas:
    """Heartbeat and live membership of the collectors classifying one database."""

    def __init__(self, client: Any, database: str, replica_id: str | None = None, ttl_s: float = 30.0,
                 lock: Any = None) -> None:
        self.client = client
        self.db = database
        self.id = replica_id or uuid.uuid4().hex
        self.ttl_s = ttl_s
        self.lock = lock or threading.RLock()

    def heartbeat(self, now_s: float | None = None) -> tuple[int, int]:
        """Record this replica as live; returns its shard ``(index, count)`` among the live ones."""
        now_s = time.time() if now_s is None else now_s
        with self.lock:
            self.client.command(f"INSERT INTO `{self.db}`.{TABLE} (ReplicaId, LastSeen) "
                                "VALUES ({id:String}, fromUnixTimestamp64Milli({t:Int64}))",
                                parameters={"id": self.id, "t": int(now_s * 1000)})
            rows = self.client.query(
                f"SELECT ReplicaId FROM `{self.db}`.{TABLE} GROUP BY ReplicaId "
                "HAVING max(LastSeen) >= fromUnixTimestamp64Milli({lo:Int64}) ORDER BY ReplicaId",
                parameters={"lo": int((now_s - self.ttl_s) * 1000)}).result_rows
        live = [r[0] for r in rows]
        if self.id not in live:  # our own heartbeat is always live; guard against clock skew in the store
            live = sorted([*live, self.id])
        return live.index(self.id), len(live)
