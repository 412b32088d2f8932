"""The match language: a small, closed vocabulary compiled to Python closures.

A matcher is a mapping; every key must be known (``MatchError`` otherwise), and all keys of one
mapping must hold (implicit AND). Keys:

- logic: ``all: [..]``, ``any: [..]``, ``not: {..}``
- fields (``record.FIELDS``): ``outcome: transport_error`` (equals), ``outcome: [a, b]`` (one of),
  ``delta_count: {gt: 0}``; operators ``eq ne in not_in gt gte lt lte near reached exists contains
  not_contains matches glob`` (``near: [value, tolerance]``). Numbers may be ``$threshold`` names. On list fields a scalar means
  "contains".
- ``exception`` / ``app_exception``: ``true`` / ``false`` (present / absent) or
  ``{class, raised, module, message}``: ``class`` compares class *names* anywhere in the raised
  exception and its cause chain, whatever the module (``httpx`` or ``httpx2``); ``raised`` only the
  outermost; ``module`` the module root (``httpx*``); ``message`` a regex.
- ``events``: ``{contains, missing, first, last, count}`` over the event sequence; type patterns
  are globs (``thread.run.*``).

See docs/match-language.md for the full reference.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

from .record import FIELDS, Record

Pred = Callable[[Record, Mapping[str, float]], bool]


class MatchError(ValueError):
    """A rule that cannot be compiled; the message names the path inside the rule."""


OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "near", "reached", "exists", "contains",
       "not_contains", "matches", "glob")
EXC_KEYS = ("class", "raised", "module", "message")
EVENT_KEYS = ("contains", "missing", "first", "last", "count")
LOGIC = ("all", "any", "not")


def _num_ref(v: Any, path: str, thresholds: set[str]) -> Callable[[Mapping[str, float]], float]:
    if isinstance(v, str) and v.startswith("$"):
        name = v[1:]
        if name not in thresholds:
            raise MatchError(f"{path}: unknown threshold ${name}; known: {', '.join(sorted(thresholds))}")
        return lambda th: th[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise MatchError(f"{path}: expected a number or $threshold, got {v!r}")
    f = float(v)
    return lambda th: f


def _as_list(v: Any, path: str) -> list[Any]:
    if isinstance(v, list):
        if not v:
            raise MatchError(f"{path}: empty list")
        return v
    return [v]


def _names(v: Any, path: str) -> list[str]:
    vals = _as_list(v, path)
    for x in vals:
        if not isinstance(x, str):
            raise MatchError(f"{path}: expected strings, got {x!r}")
    return vals


def _cls_name(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def _cls_module(qualified: str) -> str:
    return qualified.rsplit(".", 1)[0] if "." in qualified else ""


def _conj(preds: list[Pred]) -> Pred:
    """AND of predicates, unrolled for the common small cases (rules run per record, in bulk)."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda r, th: a(r, th) and b(r, th)
    if len(preds) == 3:
        a, b, c = preds
        return lambda r, th: a(r, th) and b(r, th) and c(r, th)

    def all_of(r: Record, th: Mapping[str, float]) -> bool:
        for p in preds:
            if not p(r, th):
                return False
        return True
    return all_of


def _disj(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda r, th: a(r, th) or b(r, th)

    def any_of(r: Record, th: Mapping[str, float]) -> bool:
        for p in preds:
            if p(r, th):
                return True
        return False
    return any_of


class Compiler:
    """Compiles matcher mappings; knows the threshold names so ``$typos`` fail at load time."""

    def __init__(self, thresholds: set[str]) -> None:
        self.thresholds = thresholds

    def compile(self, spec: Any, path: str = "when") -> Pred:
        if not isinstance(spec, Mapping) or not spec:
            raise MatchError(f"{path}: a matcher must be a non-empty mapping, got {spec!r}")
        preds = [self._key(k, v, f"{path}.{k}") for k, v in spec.items()]
        return _conj(preds)

    def _key(self, key: str, val: Any, path: str) -> Pred:
        if key == "all" or key == "any":
            subs = [self.compile(s, f"{path}[{i}]") for i, s in enumerate(_as_list(val, path))]
            return _conj(subs) if key == "all" else _disj(subs)
        if key == "not":
            sub = self.compile(val, path)
            return lambda r, th: not sub(r, th)
        if key in ("exception", "app_exception"):
            return self._exception(key, val, path)
        if key == "events":
            return self._events(val, path)
        if key in FIELDS:
            return self._field(key, val, path)
        raise MatchError(f"{path}: unknown match key {key!r}")

    # -- fields -------------------------------------------------------------------------------
    def _field(self, name: str, val: Any, path: str) -> Pred:
        kind = FIELDS[name][0]
        if isinstance(val, Mapping):
            if not val:
                raise MatchError(f"{path}: empty operator mapping")
            preds = [self._op(name, kind, op, arg, f"{path}.{op}") for op, arg in val.items()]
            return preds[0] if len(preds) == 1 else (lambda r, th: all(p(r, th) for p in preds))
        if isinstance(val, list):
            return self._op(name, kind, "in", val, path)
        if kind == "list":
            return self._op(name, kind, "contains", val, path)
        return self._op(name, kind, "eq", val, path)

    def _check_scalar(self, kind: str, v: Any, path: str) -> None:
        ok = {
            "str": isinstance(v, str),
            "bool": isinstance(v, bool),
            "int": isinstance(v, (int, float)) and not isinstance(v, bool) or (isinstance(v, str) and v.startswith("$")),
            "float": isinstance(v, (int, float)) and not isinstance(v, bool) or (isinstance(v, str) and v.startswith("$")),
            "list": isinstance(v, str),
        }[kind]
        if not ok:
            raise MatchError(f"{path}: {v!r} does not fit a {kind} field")

    def _op(self, name: str, kind: str, op: str, arg: Any, path: str) -> Pred:
        if op not in OPS:
            raise MatchError(f"{path}: unknown operator {op!r}; known: {', '.join(OPS)}")
        if op == "exists":
            if not isinstance(arg, bool):
                raise MatchError(f"{path}: exists takes true/false")
            if kind == "list":
                return (lambda r, th: bool(r.get(name))) if arg else (lambda r, th: not r.get(name))
            if kind == "str":
                return (lambda r, th: bool(r.get(name))) if arg else (lambda r, th: not r.get(name))
            return (lambda r, th: r.get(name) is not None) if arg else (lambda r, th: r.get(name) is None)
        if op in ("gt", "gte", "lt", "lte"):
            if kind not in ("int", "float"):
                raise MatchError(f"{path}: {op} needs a numeric field, {name} is {kind}")
            ref = _num_ref(arg, path, self.thresholds)
            cmp = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}[op]

            def num(r: Record, th: Mapping[str, float]) -> bool:
                v = r.get(name)
                return v is not None and cmp(float(v), ref(th))
            return num
        if op in ("near", "reached"):
            if kind not in ("int", "float") or not isinstance(arg, list) or len(arg) != 2:
                raise MatchError(f"{path}: {op} takes [value, tolerance] on a numeric field")
            center, tol = (_num_ref(a, path, self.thresholds) for a in arg)
            if op == "near":
                return lambda r, th: r.get(name) is not None and abs(float(r[name]) - center(th)) <= tol(th)
            # One-sided: a limit enforced elsewhere is seen here at or after it, never before it.
            return lambda r, th: r.get(name) is not None and 0.0 <= float(r[name]) - center(th) <= tol(th)
        if op in ("matches", "glob"):
            pats = _names(arg, path)
            if op == "matches":
                try:
                    rx = [re.compile(p) for p in pats]
                except re.error as e:
                    raise MatchError(f"{path}: bad regex: {e}") from None
                def test(s: str) -> bool:
                    return any(x.search(s) for x in rx)
            else:
                def test(s: str) -> bool:
                    return any(fnmatch.fnmatchcase(s, p) for p in pats)
            if kind == "list":
                return lambda r, th: any(test(x) for x in (r.get(name) or ()))
            return lambda r, th: r.get(name) is not None and test(str(r.get(name)))
        if op in ("contains", "not_contains"):
            if kind not in ("list", "str"):
                raise MatchError(f"{path}: {op} needs a list or string field, {name} is {kind}")
            items = _names(arg, path)
            if kind == "list":
                def pos(r, th):
                    return bool(set(items) & set(r.get(name) or ()))
            else:
                def pos(r, th):
                    return any(i in (r.get(name) or "") for i in items)
            return pos if op == "contains" else (lambda r, th: not pos(r, th))
        # eq / ne / in / not_in
        vals = _as_list(arg, path) if op in ("in", "not_in") else [arg]
        for v in vals:
            self._check_scalar(kind, v, path)
        if kind in ("int", "float"):
            refs = [_num_ref(v, path, self.thresholds) for v in vals]
            def hit(r, th):
                return r.get(name) is not None and any(float(r[name]) == f(th) for f in refs)
        elif kind == "list":
            s = frozenset(vals)
            def hit(r, th):
                return not s.isdisjoint(r.get(name) or ())
        elif kind == "str":
            s = frozenset(vals)
            def hit(r, th):
                return (r.get(name) or "") in s
        else:
            s = frozenset(vals)
            def hit(r, th):
                return r.get(name) in s
        return hit if op in ("eq", "in") else (lambda r, th: not hit(r, th))

    # -- exceptions -----------------------------------------------------------------------------
    def _exception(self, key: str, val: Any, path: str) -> Pred:
        tfield = "exception_type" if key == "exception" else "app_exception_type"
        mfield = "exception_message" if key == "exception" else "app_exception_message"
        chain_field = "exception_chain" if key == "exception" else None
        if isinstance(val, bool):
            return (lambda r, th: bool(r.get(tfield))) if val else (lambda r, th: not r.get(tfield))
        if not isinstance(val, Mapping) or not val:
            raise MatchError(f"{path}: expected true/false or a mapping with {', '.join(EXC_KEYS)}")
        preds: list[Pred] = []

        def classes(r: Record) -> list[str]:
            out = [r[tfield]] if r.get(tfield) else []
            if chain_field and r.get(chain_field):
                out.extend(r[chain_field])
            return out

        # short class names of the raised exception and its chain, computed once per record
        cache_key = "_names_" + key

        def short_names(r: Record) -> frozenset[str]:
            got = r.get(cache_key)
            if got is None:
                got = frozenset(_cls_name(c) for c in classes(r))
                r[cache_key] = got
            return got

        for k, v in val.items():
            p = f"{path}.{k}"
            if k == "class":
                preds.append(_class_pred(frozenset(_names(v, p)), short_names))
            elif k == "raised":
                preds.append(_raised_pred(frozenset(_names(v, p)), tfield))
            elif k == "module":
                preds.append(_module_pred(_names(v, p), classes))
            elif k == "message":
                try:
                    rx = re.compile(str(v))
                except re.error as e:
                    raise MatchError(f"{p}: bad regex: {e}") from None
                preds.append(_message_pred(rx, mfield))
            else:
                raise MatchError(f"{p}: unknown key {k!r}; known: {', '.join(EXC_KEYS)}")
        return _conj(preds)

    # -- event sequence --------------------------------------------------------------------------
    def _events(self, val: Any, path: str) -> Pred:
        if not isinstance(val, Mapping) or not val:
            raise MatchError(f"{path}: expected a mapping with {', '.join(EVENT_KEYS)}")
        preds: list[Pred] = []

        def has(evs: list[str], pat: str) -> bool:
            if any(ch in pat for ch in "*?["):
                return any(fnmatch.fnmatchcase(e, pat) for e in evs)
            return pat in evs

        for k, v in val.items():
            p = f"{path}.{k}"
            if k in ("contains", "missing"):
                preds.append(_events_pred(_names(v, p), has, want_all=(k == "contains")))
            elif k in ("first", "last"):
                preds.append(_end_event_pred(_names(v, p), 0 if k == "first" else -1))
            elif k == "count":
                sub = self._field("event_count", v, p)
                preds.append(sub)
            else:
                raise MatchError(f"{p}: unknown key {k!r}; known: {', '.join(EVENT_KEYS)}")
        return _conj(preds)


# -- predicate factories (one closure per rule clause, typed, bound to their own values) ------------
def _class_pred(names: frozenset[str], short_names: Callable[[Record], frozenset[str]]) -> Pred:
    return lambda r, th: not names.isdisjoint(short_names(r))


def _raised_pred(names: frozenset[str], tfield: str) -> Pred:
    quals = frozenset(x for x in names if "." in x)
    return lambda r, th: bool(r.get(tfield)) and (_cls_name(r[tfield]) in names or r[tfield] in quals)


def _module_pred(pats: list[str], classes: Callable[[Record], Any]) -> Pred:
    return lambda r, th: any(
        fnmatch.fnmatchcase(_cls_module(c).split(".")[0], x) for c in classes(r) for x in pats)


def _message_pred(rx: re.Pattern[str], mfield: str) -> Pred:
    return lambda r, th: bool(rx.search(r.get(mfield) or ""))


def _events_pred(pats: list[str], has: Callable[[list[str], str], bool], *, want_all: bool) -> Pred:
    if want_all:
        return lambda r, th: all(has(r.get("events") or [], x) for x in pats)
    return lambda r, th: not any(has(r.get("events") or [], x) for x in pats)


def _end_event_pred(pats: list[str], idx: int) -> Pred:
    return lambda r, th: bool(r.get("events")) and any(fnmatch.fnmatchcase(r["events"][idx], x) for x in pats)


# -- SQL pushdown ---------------------------------------------------------------------------------
# A rule's ``when`` translated into a predicate over one *call span* row of otel_traces, used by full
# passes to skip calls no rule can match without leaving ClickHouse. The translation is a superset:
# whatever cannot be expressed on the call span (event sequences, polls, ratios) becomes TRUE, and
# ``not`` is only translated when its inner part is exact. Returns (sql, exact).
_SQL_FIELDS: dict[str, tuple[str, str]] = {
    # field: (SQL over the call span row, kind)
    "outcome": ("LlmOutcome", "str"),
    "api": ("LlmApi", "str"),
    "finish_reason": ("LlmFinishReason", "str"),
    "terminal_seen": ("LlmTerminalSeen", "bool"),
    "mode": ("SpanAttributes['streamtriage.call.mode']", "str"),
    "helper": ("SpanAttributes['streamtriage.helper']", "str"),
    "error_code": ("SpanAttributes['streamtriage.error.code']", "str"),
    "incomplete_reason": ("SpanAttributes['streamtriage.incomplete_reason']", "str"),
    "terminal_event": ("SpanAttributes['streamtriage.terminal.event']", "str"),
    "cancel_reason": ("SpanAttributes['streamtriage.cancel.reason']", "str"),
    "http_status": ("toInt64OrZero(SpanAttributes['http.response.status_code'])", "num"),
    "ttfe_ms": ("LlmTtfeMs", "num"),
    "output_tokens": ("LlmOutputTokens", "num"),
}
_SQL_LISTS = {"finish_reasons": "SpanAttributes['gen_ai.response.finish_reasons']",
              "exception_chain": "SpanAttributes['streamtriage.exception.chain']"}
_EXC = ("(SpanAttributes['streamtriage.exception.type'] != '' OR "
        "SpanAttributes['streamtriage.exception.chain'] NOT IN ('', '[]'))")
_APP_EXC = "SpanAttributes['streamtriage.app_exception.type'] != ''"
TRUE = ("1", False)


def _q(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
        return str(int(v))
    if isinstance(v, float):
        return repr(v)
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _and(parts: list[tuple[str, bool]]) -> tuple[str, bool]:
    real = [p for p in parts if p[0] != "1"]
    exact = all(p[1] for p in parts)
    if not real:
        return ("1", exact)
    if len(real) == 1:
        return (real[0][0], exact)
    return ("(" + " AND ".join(p[0] for p in real) + ")", exact)


def _or(parts: list[tuple[str, bool]]) -> tuple[str, bool]:
    if any(p[0] == "1" for p in parts):
        return TRUE
    return ("(" + " OR ".join(p[0] for p in parts) + ")", all(p[1] for p in parts))


def to_sql(spec: Any, th_min: Mapping[str, float], th_max: Mapping[str, float]) -> tuple[str, bool]:
    """Superset SQL predicate for a (valid, already compiled) matcher over a call span row.

    ``th_min``/``th_max``: each threshold's smallest/largest value over all API kinds, so a
    ``$threshold`` comparison stays a superset whatever the row's API kind.
    """
    parts: list[tuple[str, bool]] = []
    for key, val in spec.items():
        if key == "all":
            parts.append(_and([to_sql(s, th_min, th_max) for s in val]))
        elif key == "any":
            parts.append(_or([to_sql(s, th_min, th_max) for s in val]))
        elif key == "not":
            inner = to_sql(val, th_min, th_max)
            parts.append((f"NOT {inner[0]}", True) if inner[1] else TRUE)
        elif key == "open":
            parts.append(("(0)", True) if val is True else (("1", True) if val is False else TRUE))
        elif key in ("exception", "app_exception"):
            present = _EXC if key == "exception" else _APP_EXC
            if val is False:
                parts.append((f"NOT {present}", True))
            else:
                parts.append((present, False))
        elif key in _SQL_LISTS and isinstance(val, str):
            parts.append((f"position({_SQL_LISTS[key]}, {_q(json_str(val))}) > 0", False))
        elif key in _SQL_FIELDS:
            parts.append(_field_sql(key, val, th_min, th_max))
        else:
            parts.append(TRUE)
    return _and(parts)


def json_str(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field_sql(name: str, val: Any, th_min: Mapping[str, float], th_max: Mapping[str, float]) -> tuple[str, bool]:
    col, kind = _SQL_FIELDS[name]
    if not isinstance(val, Mapping):
        val = {"in": val} if isinstance(val, list) else {"eq": val}
    parts: list[tuple[str, bool]] = []
    for op, arg in val.items():
        if op in ("eq", "in", "ne", "not_in") and kind in ("str", "bool"):
            vals = arg if isinstance(arg, list) else [arg]
            if kind == "bool":
                vals = [1 if v else 0 for v in vals]
            expr = f"({col} IN ({', '.join(_q(v) for v in vals)}))"
            parts.append((expr if op in ("eq", "in") else f"NOT {expr}", True))
        elif op in ("eq", "in") and kind == "num" and all(not isinstance(v, str) for v in (arg if isinstance(arg, list) else [arg])):
            vals = arg if isinstance(arg, list) else [arg]
            parts.append((f"{col} IN ({', '.join(_q(v) for v in vals)})", name == "http_status"))
        elif op in ("gt", "gte", "lt", "lte") and kind == "num":
            if isinstance(arg, str):
                ref = arg[1:]
                num = th_min[ref] if op in ("gt", "gte") else th_max[ref]
            else:
                num = float(arg)
            sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
            parts.append((f"{col} {sym} {num!r}", False))
        elif op == "exists" and kind == "str":
            parts.append((f"{col} != ''" if arg else f"{col} = ''", True))
        else:
            parts.append(TRUE)
    return _and(parts)
