"""Intermediary limits nobody configured, inferred across calls (SQL over the store).

A gateway, CDN or reverse proxy that cuts streams at a fixed wall-clock limit counts from when it
*received the request*. Every call it cuts therefore ends at about the same duration from the
request, whatever the model spent before its first event. A provider or relay that drops streams
under load cuts at scattered durations; a model that stops after a fixed amount of output cuts at a
fixed time *after the first event*, so its durations vary with the first-event time.

So: among mid-stream cuts (``transport_error`` after a first event, i.e. with a first-event time) to the
same server (host, port, and API kind as the route), a **cluster** is a group of at least ``cut_cluster_min_calls``
calls whose durations lie within ``proxy_limit_slack_ms`` of the shortest of them, while their
first-event times differ by more than twice that tolerance (what is constant is the time from the
request, not the time from the first token).

Why that tolerance: the client sees a proxy's cut at or just after the proxy's limit, never before it
(the proxy's clock starts when the request reaches it and the cut travels back to the client); the
difference is network and scheduling delay, well under the default 1 s slack. The shortest duration in
a cluster is therefore the best estimate of the limit (the inferred limit, slightly above the real one).
Requiring first-event spread > 2 x tolerance also keeps ordinary fast cuts out: a first-event time is
never longer than the call, so only calls longer than 2 x tolerance can form a cluster.

Window functions keep it one pass over the cut calls: O(n log n), never a self join. A first pass per API
kind reads materialized columns only; the attribute map (host, port) is read for its candidates only.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

CutClusters = dict[tuple[str, str], tuple[int, float]]  # (TraceId, SpanId) -> (cluster size, inferred limit ms)


def cut_clusters_sql(db: str, by_server: bool) -> str:
    """Members of every cut cluster since ``{lo:Int64}``; tolerances bound as parameters.

    ``by_server=False`` groups by API kind only and reads no attribute map (cheap: materialized columns);
    its clusters are a superset of the per-server ones. ``by_server=True`` groups by host, port and API
    kind, over the candidate calls named in ``{keys:Array(String)}`` (``TraceId/SpanId``)."""
    key = "host, port, api" if by_server else "api"
    server = ("SpanAttributes['server.address'] AS host, SpanAttributes['server.port'] AS port"
              if by_server else "'' AS host, '' AS port")
    only = ("AND TraceId IN {tids:Array(String)} AND concat(TraceId, '/', SpanId) IN {keys:Array(String)}"
            if by_server else "")
    return f"""
SELECT t, s, size, limit_ms FROM (
    SELECT t, s, d,
           maxIf(n_fwd, anchor) OVER back AS size,
           argMaxIf(d, n_fwd, anchor) OVER back AS limit_ms
    FROM (
        SELECT t, s, host, port, api, d,
               count() OVER fwd AS n_fwd,
               n_fwd >= {{min_calls:UInt32}} AND (max(ttfe) OVER fwd - min(ttfe) OVER fwd) > 2 * {{tol:Float64}} AS anchor
        FROM (
            SELECT TraceId AS t, SpanId AS s, {server}, LlmApi AS api, Duration / 1e6 AS d, LlmTtfeMs AS ttfe
            FROM `{db}`.otel_traces
            PREWHERE Timestamp >= fromUnixTimestamp64Nano({{lo:Int64}}) AND LlmSpan = 'call'
              AND LlmOutcome = 'transport_error' AND LlmTtfeMs > 0 {only}
        )
        WINDOW fwd AS (PARTITION BY {key} ORDER BY d RANGE BETWEEN CURRENT ROW AND {{tol_ms:UInt32}} FOLLOWING)
    )
    WINDOW back AS (PARTITION BY {key} ORDER BY d RANGE BETWEEN {{tol_ms:UInt32}} PRECEDING AND CURRENT ROW)
)
WHERE size > 0
"""


def find_cut_clusters(query: Callable[[str, dict[str, Any]], list[dict[str, Any]]], db: str, lo_ns: int,
                      thresholds: Mapping[str, float]) -> CutClusters:
    """Every call that belongs to a cut cluster, with the cluster's size and inferred limit.

    Two steps, so that the common case (no equal cuts anywhere) reads only materialized columns: clusters
    per API kind first, then per server among their members only."""
    params: dict[str, Any] = {"lo": int(lo_ns), "tol": float(thresholds["proxy_limit_slack_ms"]),
                              "tol_ms": int(round(thresholds["proxy_limit_slack_ms"])),
                              "min_calls": max(2, int(thresholds["cut_cluster_min_calls"]))}
    candidates = query(cut_clusters_sql(db, by_server=False), params)
    if not candidates:
        return {}
    params.update(keys=[f"{r['t']}/{r['s']}" for r in candidates], tids=sorted({r["t"] for r in candidates}))
    rows = query(cut_clusters_sql(db, by_server=True), params)
    return {(r["t"], r["s"]): (int(r["size"]), round(float(r["limit_ms"]), 1)) for r in rows}


def annotate(rec: dict[str, Any], clusters: CutClusters) -> None:
    """Put a record's cluster facts on it (records outside any cluster keep them empty)."""
    got = clusters.get((rec["trace_id"], rec["span_id"]))
    if got is not None:
        rec["cut_cluster_size"], rec["cut_cluster_limit_ms"] = got
