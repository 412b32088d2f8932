"""Which settings a read-only client may send, parsed with their real types, and the limits.

Why typed: a check on ``float(value)`` while the original string goes to the engine let
``max_memory_usage=0.5`` through as "below the cap", and the engine rounded it to 0 (unlimited).
Here every value is parsed to what the engine will use, and the *parsed* value is what the engine
gets. A limit may only be lowered: a positive integer no larger than the endpoint's cap; raising,
zeroing (0 means unlimited) or a fraction is refused with ``SETTING_CONSTRAINT_VIOLATION`` (452),
an unparsable value with ``CANNOT_PARSE_INPUT_ASSERTION_FAILED`` (27), a setting outside the
allowlist with ``READONLY`` (164), as ClickHouse does.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import GuardError

__all__ = ["Limits", "read_only_settings", "LIMIT_NAMES"]


@dataclass(frozen=True)
class Limits:
    """Caps for every read-only query; a client may ask for less, never for more."""

    # The provisioned Grafana data source sends its query timeout (60 s) as max_execution_time.
    max_execution_time: int = 60
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 256 * 1024 * 1024
    max_memory_usage: int = 1024 * 1024 * 1024
    # Half the cores: a heavy dashboard query must leave room for ingest in the same process.
    max_threads: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))

    def as_settings(self) -> dict[str, str]:
        return {
            "max_threads": str(self.max_threads),
            "max_execution_time": str(self.max_execution_time),
            "max_result_rows": str(self.max_result_rows),
            "max_result_bytes": str(self.max_result_bytes),
            "max_memory_usage": str(self.max_memory_usage),
            "result_overflow_mode": "throw",
            "timeout_overflow_mode": "throw",
        }


LIMIT_NAMES = ("max_execution_time", "max_result_rows", "max_result_bytes", "max_memory_usage", "max_threads")

# Types of the settings a client may pass. "uint": unsigned integer; "bool": 0/1/true/false;
# "mode": one of the listed words; "word": a short value of letters, digits and ``_./:+-``
# (the engine parses it with its own type; a bad one is its parse error, a 4xx).
_UINT = re.compile(r"[0-9]{1,19}")
_WORD = re.compile(r"[A-Za-z0-9_./:+-]{0,64}")
_OVERFLOW_MODES = ("throw", "break")
_TYPES: dict[str, str | tuple[str, ...]] = {
    "max_block_size": "uint", "max_rows_to_read": "uint", "max_bytes_to_read": "uint",
    "max_rows_to_group_by": "uint", "max_query_size": "uint", "limit": "uint", "offset": "uint",
    "extremes": "bool", "prefer_column_name_to_alias": "bool", "transform_null_in": "bool",
    "join_use_nulls": "bool", "enable_analyzer": "bool", "allow_experimental_analyzer": "bool",
    "use_index_for_in_with_subqueries": "bool", "query_plan_enable_optimizations": "bool",
    "precise_float_parsing": "bool",
    "read_overflow_mode": _OVERFLOW_MODES, "group_by_overflow_mode": ("throw", "break", "any"),
    "result_overflow_mode": _OVERFLOW_MODES, "timeout_overflow_mode": _OVERFLOW_MODES,
    "totals_mode": ("before_having", "after_having_inclusive", "after_having_exclusive", "after_having_auto"),
    "count_distinct_implementation": ("uniq", "uniqCombined", "uniqCombined64", "uniqHLL12", "uniqExact"),
    "session_timezone": "word", "log_comment": "word",
}
# Families of settings that change how results are computed or printed, never what may be read
# or written. Format settings that name server files (templates, schemas) are excluded by name.
_SAFE_PREFIXES = ("output_format_", "date_time_", "cast_", "join_", "optimize_", "aggregate_functions_",
                  "interval_output_", "format_csv_", "format_tsv_")
_UNSAFE = frozenset({"output_format_schema", "format_schema", "format_template_row", "format_template_resultset",
                     "format_template_rows_between_delimiter", "format_display_secrets_in_show_and_select",
                     "output_format_parquet_write_bloom_filter"})


def _parse(name: str, value: str, kind: str | tuple[str, ...]) -> str:
    if isinstance(kind, tuple):
        if value not in kind:
            raise GuardError(f"Unexpected value {value!r} of setting {name}: expected one of {', '.join(kind)}", 36)
        return value
    if kind == "uint":
        if not _UINT.fullmatch(value):
            raise GuardError(f"Cannot parse {value!r} as an unsigned integer for setting {name}", 27)
        return str(int(value))
    if kind == "bool":
        lowered = value.lower()
        if lowered not in ("0", "1", "true", "false"):
            raise GuardError(f"Cannot parse {value!r} as a boolean for setting {name}", 27)
        return "1" if lowered in ("1", "true") else "0"
    if not _WORD.fullmatch(value):
        raise GuardError(f"Value of setting {name} may only hold letters, digits and _./:+- (64 at most)", 36)
    return value


def _lower_limit(name: str, value: str, cap: int) -> str:
    if not _UINT.fullmatch(value):
        raise GuardError(f"Setting {name} must be a whole number between 1 and {cap}, got {value!r}", 27)
    asked = int(value)
    if asked < 1:
        raise GuardError(f"Setting {name} shouldn't be less than 1 (0 lifts the limit)", 452)
    if asked > cap:
        raise GuardError(f"Setting {name} shouldn't be greater than {cap}", 452)
    return str(asked)


def read_only_settings(requested: Mapping[str, str], limits: Limits) -> dict[str, str]:
    """The settings one request runs with: the client's (parsed), the limits (lowered at most).

    ``readonly`` may be sent as 1 or 2 and is ignored (the engine handle is read-only on its own);
    ``allow_ddl`` only as 0. The result holds canonical values only (integers as digits, booleans
    as 0/1), which is what the engine receives.
    """
    out: dict[str, str] = {}
    caps = limits.as_settings()
    for name, value in requested.items():
        if name == "readonly":
            if value not in ("1", "2"):
                raise GuardError(f"Cannot modify 'readonly' setting in readonly mode (asked for {value!r})")
            continue
        if name == "allow_ddl":
            if value != "0":
                raise GuardError("Cannot modify 'allow_ddl' setting in readonly mode")
            continue
        if name in LIMIT_NAMES:
            caps[name] = _lower_limit(name, value, int(caps[name]))
        elif name in ("result_overflow_mode", "timeout_overflow_mode"):
            caps[name] = _parse(name, value, _TYPES[name])
        elif name in _TYPES:
            out[name] = _parse(name, value, _TYPES[name])
        elif name not in _UNSAFE and name.startswith(_SAFE_PREFIXES):
            out[name] = _parse(name, value, "word")
        else:
            raise GuardError(f"Cannot modify '{name}' setting in readonly mode")
    out.update(caps)
    return out
