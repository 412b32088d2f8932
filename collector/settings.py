"""Collector settings: defaults < config file < ``STREAMTRIAGE_*`` environment < command line.

One frozen dataclass so every part of the service (and tests) sees the same validated values;
``load_settings`` is the only place that knows where values come from.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

DEFAULT_DATA_DIR = "./streamtriage-data"


class SettingsError(ValueError):
    """A setting has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Everything ``streamtriage serve`` can be told. Sizes are bytes, times seconds."""

    store: str = f"chdb://{DEFAULT_DATA_DIR}"
    database: str = "default"
    host: str = "127.0.0.1"
    port: int = 4318
    # Ingest token: ``/v1/traces`` needs ``Authorization: Bearer <token>``.
    token: str | None = None
    # Read token: the SQL endpoint and ``/api/*``. The ingest token every instrumented app holds is
    # not accepted there once a read token is set; without one, reads fall back to ``token``.
    read_token: str | None = None
    # Listening beyond loopback without a token is refused unless this is set deliberately.
    allow_unauthenticated: bool = False
    # Read-only ClickHouse HTTP endpoint on the store (collector/sqlendpoint/): port, or None
    # for off; with a read token, clients log in as ``clickhouse_user`` with it as password.
    clickhouse_port: int | None = None
    clickhouse_user: str = "default"
    # Where the lock/pid file and the spool live. Defaults to the chDB data dir, or
    # ./streamtriage-state for a server store.
    state_dir: str | None = None
    ttl_days: int = 30
    label_ttl_days: int = 90
    # ClickHouse cluster name: migrations run ON CLUSTER as replicated local tables plus Distributed
    # tables under the usual names (collector/cluster_ddl.py). Server stores only.
    cluster: str | None = None
    # Ingest limits.
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    queue_max_spans: int = 200_000
    spool_max_bytes: int = 2 * 1024 * 1024 * 1024
    retry_after_s: int = 2
    # Decoder worker processes: -1 = automatic (one per CPU, at most 4; 0 on one CPU = a thread).
    decode_workers: int = -1
    # Writer.
    durability: str = "insert"  # "insert": insert within deadline, spool on failure; "wal": spool first always
    batch_max_spans: int = 20_000
    batch_max_age_s: float = 0.0  # >0: hold a batch this long to fill; 0: commit at once (arrivals during a running commit are grouped anyway)
    insert_deadline_s: float = 2.0
    segment_max_bytes: int = 8 * 1024 * 1024
    busy_hold_s: float = 0.5  # insert mode: keep spooling this long after a replay (load is sustained)
    replay_max_spans: int = 50_000  # spooled spans per replay insert (whole segments)
    replay_delay_s: float = 0.2  # wal mode: gather spooled batches this long before a replay insert
    replay_backoff_max_s: float = 5.0
    # Classifier thresholds as ``name=ms`` / ``api:name=ms`` flags (classifier/thresholds.py); they
    # override the STREAMTRIAGE_STALL_MS-style variables, which override the defaults.
    thresholds: tuple[str, ...] = ()
    # User knowledge-base directory (classifier/user_kb.py): entries that extend or override the shipped ones.
    kb_dir: str | None = None
    # Background classification: an incremental pass plus an open-call sweep this often (0 = off).
    classify_interval_s: float = 5.0
    # How often the store-derived /metrics gauges (incidents by category, oldest open polling hang)
    # are refreshed; a scrape reads the last values and never queries the store.
    gauges_refresh_s: float = 15.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.thresholds, str):  # from the environment or a config file: comma-separated
            object.__setattr__(self, "thresholds", tuple(t.strip() for t in self.thresholds.split(",") if t.strip()))
        else:
            object.__setattr__(self, "thresholds", tuple(self.thresholds))
        scheme = urlparse(self.store).scheme
        if scheme not in ("chdb", "http", "https"):
            raise SettingsError(f"store must be chdb://DIR or http(s)://user:pass@host:8123/db, got {self.store!r}")
        if self.durability not in ("insert", "wal"):
            raise SettingsError(f"durability must be 'insert' or 'wal', got {self.durability!r}")
        for name in ("port", "ttl_days", "label_ttl_days", "max_body_bytes", "max_decompressed_bytes",
                     "queue_max_spans", "batch_max_spans", "segment_max_bytes"):
            if int(getattr(self, name)) < (0 if name == "port" else 1):
                raise SettingsError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.cluster is not None:
            if not self.cluster.replace("_", "").replace("-", "").isalnum():
                raise SettingsError(f"cluster must be a plain identifier, got {self.cluster!r}")
            if scheme == "chdb":
                raise SettingsError("cluster needs a ClickHouse server store (--store http://...), not chdb://")
        if not self.database.replace("_", "").isalnum():
            raise SettingsError(f"database must be a plain identifier, got {self.database!r}")
        if self.read_token is not None and self.read_token == self.token:
            raise SettingsError("read_token must differ from token (the ingest token)")
        if not is_loopback(self.host) and not self.token and not self.allow_unauthenticated:
            raise SettingsError(
                f"refusing to listen on {self.host or 'all interfaces'} without a token: anyone who can reach it "
                "could send spans and read every span. Set --token (and --read-token), or pass "
                "--allow-unauthenticated (STREAMTRIAGE_ALLOW_UNAUTHENTICATED=1) if the network is trusted")

    @property
    def reader_token(self) -> str | None:
        """The secret that opens the SQL endpoint and ``/api/*``: the read token, else the ingest token."""
        return self.read_token or self.token

    def display_url(self, port: int | None = None) -> str:
        """The real bind address, for people: ``http://0.0.0.0:4318 (all interfaces)``."""
        host = self.host or "0.0.0.0"
        shown = f"http://{'[' + host + ']' if ':' in host else host}:{self.port if port is None else port}"
        return shown + (" (all interfaces)" if host in ("0.0.0.0", "::") else "")

    @property
    def is_embedded(self) -> bool:
        return urlparse(self.store).scheme == "chdb"

    @property
    def chdb_dir(self) -> Path | None:
        """The chDB data directory, or None for a server store."""
        if not self.is_embedded:
            return None
        rest = self.store[len("chdb://"):]
        return Path(rest or DEFAULT_DATA_DIR).expanduser().resolve()

    @property
    def state_path(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir).expanduser().resolve()
        return self.chdb_dir or Path("./streamtriage-state").resolve()

    @property
    def spool_path(self) -> Path:
        return self.state_path / "spool"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_ENV_PREFIX = "STREAMTRIAGE_"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def settings_env_names() -> set[str]:
    """The ``STREAMTRIAGE_*`` variables ``load_settings`` reads (one per setting, plus the config file)."""
    return {_ENV_PREFIX + f.name.upper() for f in fields(Settings) if f.name != "extra"} | {_ENV_PREFIX + "CONFIG"}


def _coerce(name: str, raw: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = str(kinds[name])
    if raw is None:
        return None
    if kind == "bool":
        text = str(raw).strip().lower()
        if text not in _TRUE + _FALSE:
            raise SettingsError(f"{name} must be true or false, got {raw!r}")
        return text in _TRUE
    if kind.startswith("tuple"):  # a list from a file or the CLI; a comma-separated string from the environment
        return tuple(raw) if isinstance(raw, (list, tuple)) else str(raw)
    if "int" in kind and "str" not in kind:
        return int(raw)
    if "float" in kind:
        return float(raw)
    return str(raw)


def _read_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    elif path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib

            data = tomllib.loads(text)
        else:
            raise SettingsError(f"{path}: TOML settings need Python 3.11 or newer; use YAML or JSON")
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of settings")
    data = data.get("collector", data)
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def load_settings(config_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build settings from a config file, the environment and explicit overrides (None = not given)."""
    env = os.environ if env is None else env
    names = {f.name for f in fields(Settings)} - {"extra"}
    values: dict[str, Any] = {}
    config_file = config_file or env.get(_ENV_PREFIX + "CONFIG")
    if config_file:
        for key, raw in _read_file(Path(config_file)).items():
            if key not in names:
                raise SettingsError(f"{config_file}: unknown setting {key!r} (known: {', '.join(sorted(names))})")
            values[key] = raw
    for name in names:
        if _ENV_PREFIX + name.upper() in env:
            values[name] = env[_ENV_PREFIX + name.upper()]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**{k: _coerce(k, v) for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from exc
