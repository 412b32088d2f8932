"""Expands panel and alert SQL the way Grafana and the ClickHouse plugin (4.20.x) do.

No Grafana server can run here, so the only way to know a panel's SQL works is to produce the exact
text the plugin would send to ClickHouse and run it. The plugin does this in two stages, and so
does this module:

1. Frontend (dashboards only; alert rules skip it): ``$__conditionalAll(cond, $var)`` becomes
   ``1=1`` when the variable's current value is "All" (``CHDatasource.applyConditionalAll``), then
   Grafana's template service replaces ``$var`` / ``${var}`` / ``${var:format}`` / ``[[var]]``.
   A value that is a list (multi-value variable, or "All" on an include-all variable) is written
   as ``'a','b'`` (``CHDatasource.format``); a single value is written raw.
2. Backend (``pkg/macros/macros.go`` via sqlds): ``$__timeFilter(col)``, ``$__fromTime``,
   ``$__interval_s``, ``$__timeInterval(col)`` and the rest of the plugin's macro table.

Anything the plugin would leave unexpanded (an unknown variable, an unknown macro, a macro with
the wrong argument count) raises :class:`MacroError`, because ClickHouse would reject it anyway.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone


class MacroError(ValueError):
    """The SQL uses a macro or variable the plugin would not expand."""


@dataclass(frozen=True)
class Variable:
    """A dashboard variable's current state, as Grafana's template service sees it."""

    name: str
    values: tuple[str, ...]
    multi: bool = False
    include_all: bool = False
    all_selected: bool = False

    @property
    def is_list(self) -> bool:
        """Grafana hands the formatter an array for multi-value variables and for "All"."""
        return self.multi or (self.include_all and self.all_selected)


@dataclass(frozen=True)
class QueryContext:
    """Everything a query needs from the dashboard: time range, interval and variables."""

    time_from: datetime
    time_to: datetime
    interval_s: float = 60.0
    variables: Mapping[str, Variable] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for t in (self.time_from, self.time_to):
            if t.tzinfo is None:
                raise MacroError("time range must be timezone-aware (Grafana sends UTC instants)")
        if self.time_to < self.time_from:
            raise MacroError("time range ends before it starts")


# --- stage 1: frontend ------------------------------------------------------------------------

_CONDITIONAL_ALL = "$__conditionalAll("
# Grafana's template-variable regex (public/app/features/templating/template_srv.ts, variableRegex).
_VARIABLE_RE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}"
)


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """Split the arguments of the call whose '(' is at ``open_paren``; returns (args, index after ')')."""
    depth = 0
    args: list[str] = []
    start = open_paren + 1
    for i in range(open_paren, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    raise MacroError(f"unbalanced parentheses in macro call at offset {open_paren}")


def apply_conditional_all(sql: str, variables: Mapping[str, Variable]) -> str:
    """``$__conditionalAll(cond, $var)`` -> ``1=1`` when ``var`` is "All" (or empty), else ``cond``."""
    idx = sql.rfind(_CONDITIONAL_ALL)
    while idx != -1:
        args, end = _macro_args(sql, idx + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            raise MacroError(f"$__conditionalAll needs 2 arguments, got {len(args)}")
        match = re.search(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+", args[1].strip())
        phrase = args[0]
        if match:
            var = variables.get(match.group(0))
            if var is None:
                raise MacroError(f"$__conditionalAll refers to unknown variable {match.group(0)!r}")
            if var.all_selected or not var.values:
                phrase = "1=1"
        sql = sql[:idx] + phrase + sql[end:]
        idx = sql.rfind(_CONDITIONAL_ALL)
    return sql


def _format_value(var: Variable, fmt: str | None) -> str:
    values = list(var.values)
    if fmt is None:
        return "'" + "','".join(values) + "'" if var.is_list else (values[0] if values else "")
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "raw":
        return ",".join(values)
    raise MacroError(f"variable format {fmt!r} of ${{{var.name}}} is not supported by this expander")


def _builtin_variables(ctx: QueryContext) -> dict[str, str]:
    """Grafana's global variables that the template service (not the plugin) replaces."""
    from_ms = int(ctx.time_from.timestamp() * 1000)
    to_ms = int(ctx.time_to.timestamp() * 1000)
    return {
        "__from": str(from_ms),
        "__to": str(to_ms),
        "__interval_ms": str(int(ctx.interval_s * 1000)),
        "__range_s": str((to_ms - from_ms) // 1000),
    }


def apply_template_variables(sql: str, ctx: QueryContext) -> str:
    """Replace dashboard variables; leaves ``$__macro`` names for the backend stage."""
    builtins = _builtin_variables(ctx)

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if m.group(5):
            raise MacroError(f"variable field access ${{{name}.{m.group(5)}}} is not supported")
        if name in ctx.variables:
            return _format_value(ctx.variables[name], fmt)
        if name in builtins and fmt is None:
            return builtins[name]
        if name.startswith("__"):
            return m.group(0)  # a plugin macro; the backend stage expands it
        raise MacroError(f"unknown dashboard variable ${name}")

    return _VARIABLE_RE.sub(replace, apply_conditional_all(sql, ctx.variables))


# --- stage 2: backend (pkg/macros/macros.go) ---------------------------------------------------

def _dt(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _dt64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _d(t: datetime) -> str:
    day: date = t.astimezone(timezone.utc).date()
    return f"toDate('{day.isoformat()}')"


def _interval_s(ctx: QueryContext) -> int:
    return int(max(ctx.interval_s, 1))


_Macro = Callable[[QueryContext, list[str]], str]

_MACROS: dict[str, tuple[int, _Macro]] = {
    "fromTime": (0, lambda c, a: _dt(c.time_from)),
    "toTime": (0, lambda c, a: _dt(c.time_to)),
    "fromTime_ms": (0, lambda c, a: _dt64(c.time_from)),
    "toTime_ms": (0, lambda c, a: _dt64(c.time_to)),
    "timeFilter": (1, lambda c, a: f"{a[0]} >= {_dt(c.time_from)} AND {a[0]} <= {_dt(c.time_to)}"),
    "timeFilter_ms": (1, lambda c, a: f"{a[0]} >= {_dt64(c.time_from)} AND {a[0]} <= {_dt64(c.time_to)}"),
    "dateFilter": (1, lambda c, a: f"{a[0]} >= {_d(c.time_from)} AND {a[0]} <= {_d(c.time_to)}"),
    "dateTimeFilter": (2, lambda c, a: (
        f"({a[0]} >= {_d(c.time_from)} AND {a[0]} <= {_d(c.time_to)}) AND "
        f"({a[1]} >= {_dt(c.time_from)} AND {a[1]} <= {_dt(c.time_to)})")),
    "timeInterval": (1, lambda c, a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {_interval_s(c)} second)"),
    "timeInterval_ms": (1, lambda c, a: (
        f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {max(int(c.interval_s * 1000), 1)} millisecond)")),
    "interval_s": (0, lambda c, a: str(_interval_s(c))),
}
_MACROS["dt"] = _MACROS["dateTimeFilter"]

_MACRO_RE = re.compile(r"\$__(\w+)")


def expand_macros(sql: str, ctx: QueryContext) -> str:
    """Expand the plugin's backend macros; what alert rules get (they skip the frontend stage)."""
    out: list[str] = []
    pos = 0
    for m in _MACRO_RE.finditer(sql):
        if m.start() < pos:
            continue
        name = m.group(1)
        if name not in _MACROS:
            raise MacroError(f"unknown or frontend-only macro $__{name} (not expanded by the plugin backend)")
        arity, fn = _MACROS[name]
        end = m.end()
        args: list[str] = []
        if end < len(sql) and sql[end] == "(":
            args, end = _macro_args(sql, end)
            args = [a.strip() for a in args]
            if args == [""]:
                args = []
        if len(args) != arity:
            raise MacroError(f"$__{name} expects {arity} argument(s), got {len(args)}")
        out.append(sql[pos:m.start()])
        out.append(fn(ctx, args))
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def expand_panel_sql(sql: str, ctx: QueryContext) -> str:
    """Both stages, in the plugin's order: what a dashboard panel sends to ClickHouse."""
    return expand_macros(apply_template_variables(sql, ctx), ctx)


def expand_alert_sql(sql: str, ctx: QueryContext) -> str:
    """Backend stage only: Grafana alert rules are evaluated without the template service."""
    if _CONDITIONAL_ALL in sql or re.search(r"\$(?!__)\w+|\$\{", sql):
        raise MacroError("alert SQL cannot use dashboard variables or $__conditionalAll (no frontend stage)")
    return expand_macros(sql, ctx)
