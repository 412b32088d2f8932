"""Named thresholds that rules reference as ``$name``, configurable per API kind.

Defaults follow the real limits, so a production deployment labels what a user would call a hang:
- ``stall_ms`` 120 s: per-chunk watchdogs in the field use 60-120 s (healthy gaps stay < 250 ms);
  the SDK's own read timeout (600 s) is far too late to call a stream hung.
- ``poll_hang_ms`` 10 min: an Assistants run expires ~10 minutes after creation.
- ``requires_action_ms`` 10 min: the run expires in requires_action at the same deadline.
- ``indexing_ms`` 30 min: the proposed SDK poll deadline for vector store files (openai-python PR #3429).
- ``background_ms`` 10 min: a background response is retrievable for roughly 10 minutes.
- ``buffered_ttfe_ms`` 2 s: first event this late *and* everything after it in one burst = buffering proxy.
- ``proxy_limit_ms`` 100 s (``proxy_limit_slack_ms`` 1 s after it): the wall-clock limit of the intermediary in
  front of the model (Cloudflare's classic 100 s; nginx 60 s, some gateways 180 s), judged on the call's
  duration *from the request*, as the proxy counts (time to the first event - a model thinking, a
  queue - counts against it). The client sees the cut at or just after the limit, never before it.
  Set it to your own hop's limit.
- ``cut_cluster_min_calls`` 3 (a count): limits nobody configured are inferred when at least this many
  mid-stream cuts to one server end within ``proxy_limit_slack_ms`` of each other while their first-event
  times differ (``classifier/cut_clusters.py``).

Override per deployment (tests set them short):
- environment: ``STREAMTRIAGE_STALL_MS=5000`` (all kinds) or ``STREAMTRIAGE_STALL_MS__ASSISTANTS_RUNS=5000``
  (one kind; the API kind upper-cased with ``.`` -> ``_``);
- flags / API: ``--threshold stall_ms=5000`` or ``--threshold assistants.runs:stall_ms=5000``.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping

DEFAULTS: dict[str, float] = {
    "stall_ms": 120_000.0,
    "poll_hang_ms": 600_000.0,
    "requires_action_ms": 600_000.0,
    "indexing_ms": 1_800_000.0,
    "background_ms": 600_000.0,
    "buffered_ttfe_ms": 2_000.0,
    "proxy_limit_ms": 100_000.0,
    "proxy_limit_slack_ms": 1_000.0,
    "cut_cluster_min_calls": 3.0,
}

API_KINDS = (
    "chat.completions",
    "responses",
    "assistants.runs",
    "vector_stores.files",
    "vector_stores.file_batches",
    "vector_stores",
)


ENV_PREFIX = "STREAMTRIAGE_"

# ``STREAMTRIAGE_*`` variables read outside the collector's settings and the thresholds below. A name
# in none of these is refused at start-up (``check_env_names``): a typo such as STREAMTRIAGE_STAL_MS
# would otherwise be accepted and never apply. A new variable read anywhere gets a line here.
OTHER_ENV_NAMES = frozenset({
    "STREAMTRIAGE_CONFIG",  # settings file (collector/settings.py)
    "STREAMTRIAGE_READ_TOKEN",  # bearer token for reads (`streamtriage incidents`, the read API)
    "STREAMTRIAGE_URL",  # the running collector `streamtriage incidents` talks to
    "STREAMTRIAGE_CLASSIFY_INTERVAL_S",  # background classification loop (collector/routes_classifier.py)
    "STREAMTRIAGE_CLICKHOUSE_PASSWORD",  # Grafana data source password (dashboards/datasource.py)
    "STREAMTRIAGE_CAPTURE_CONTENT",  # the hook's content capture (instrumentation/instrumentor.py)
    "STREAMTRIAGE_UPSTREAM", "STREAMTRIAGE_COLLECTOR",  # the example relay app (examples/relay_app.py)
    "STREAMTRIAGE_NO_SDK_MATRIX", "STREAMTRIAGE_OPENAI1", "STREAMTRIAGE_OPENAI2",  # test harness
    "STREAMTRIAGE_ANTHROPIC0", "STREAMTRIAGE_ANTHROPIC2",  # test harness (scripts/sdk-matrix.sh)
    "STREAMTRIAGE_ACCURACY_ASYNC",
})


class ThresholdError(ValueError):
    """A threshold name or value that cannot be used."""


def _env_key(name: str, api: str | None = None) -> str:
    base = ENV_PREFIX + name.upper()
    return base if api is None else base + "__" + api.upper().replace(".", "_")


def threshold_env_names() -> set[str]:
    """Every environment variable a threshold is read from (global and per API kind)."""
    return {_env_key(name, api) for name in DEFAULTS for api in (None, *API_KINDS)}


def check_env_names(env: Mapping[str, str] | None = None, also_known: Iterable[str] = ()) -> None:
    """Refuse ``STREAMTRIAGE_*`` variables nobody reads, naming them and the closest known name."""
    env = os.environ if env is None else env
    known = threshold_env_names() | set(OTHER_ENV_NAMES) | set(also_known)
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    raise ThresholdError(f"unknown environment variable{'s' if len(unknown) > 1 else ''} {', '.join(hints)}: "
                         "nothing reads it; unset it or fix the name")


class Thresholds:
    """Resolved thresholds: ``get(name, api)`` gives the per-kind value, else the global one."""

    def __init__(self, overrides: Mapping[str, float] | None = None,
                 per_api: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.values = dict(DEFAULTS)
        for k, v in (overrides or {}).items():
            self._check(k)
            self.values[k] = float(v)
        self.per_api: dict[str, dict[str, float]] = {}
        for api, vals in (per_api or {}).items():
            for k, v in vals.items():
                self._check(k)
                self.per_api.setdefault(api, {})[k] = float(v)
        self._cache: dict[str | None, dict[str, float]] = {}

    @staticmethod
    def _check(name: str) -> None:
        if name not in DEFAULTS:
            raise ThresholdError(f"unknown threshold {name!r}; known: {', '.join(sorted(DEFAULTS))}")

    def for_api(self, api: str | None) -> dict[str, float]:
        """All thresholds for one API kind (cached: called once per record)."""
        got = self._cache.get(api)
        if got is None:
            got = dict(self.values)
            got.update(self.per_api.get(api or "", {}))
            self._cache[api] = got
        return got

    def get(self, name: str, api: str | None = None) -> float:
        self._check(name)
        return self.for_api(api)[name]

    def as_dict(self) -> dict[str, object]:
        return {"default": dict(self.values), "per_api": {k: dict(v) for k, v in self.per_api.items()}}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, flags: Iterable[str] = ()) -> Thresholds:
        """Defaults, then environment variables, then ``name=value`` / ``api:name=value`` flags."""
        env = os.environ if env is None else env
        overrides: dict[str, float] = {}
        per_api: dict[str, dict[str, float]] = {}
        for name in DEFAULTS:
            raw = env.get(_env_key(name))
            if raw:
                overrides[name] = _num(raw, _env_key(name))
            for api in API_KINDS:
                raw = env.get(_env_key(name, api))
                if raw:
                    per_api.setdefault(api, {})[name] = _num(raw, _env_key(name, api))
        for flag in flags:
            key, sep, raw = flag.partition("=")
            if not sep:
                raise ThresholdError(f"threshold flag {flag!r} must look like name=value or api:name=value")
            api, colon, name = key.strip().rpartition(":")
            cls._check(name)
            if colon and api not in API_KINDS:
                raise ThresholdError(f"threshold flag {flag!r}: unknown API kind {api!r}; known: {', '.join(API_KINDS)}")
            if colon:
                per_api.setdefault(api, {})[name] = _num(raw, flag)
            else:
                overrides[name] = _num(raw, flag)
        return cls(overrides, per_api)


def _num(raw: str, where: str) -> float:
    try:
        val = float(raw)
    except ValueError:
        raise ThresholdError(f"{where}: {raw!r} is not a number of milliseconds") from None
    if val < 0:
        raise ThresholdError(f"{where}: must not be negative")
    return val
