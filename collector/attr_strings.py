"""OTLP ``AnyValue`` -> the string the official ClickHouse exporter stores.

The exporter stores ``pcommon.Value.AsString()``: strings as-is, bools ``true``/``false``, ints in
decimal, doubles as ES6 numbers (Go's ``float64AsString``), bytes as standard base64, and arrays
and maps as compact JSON from Go's ``encoding/json`` (keys sorted, ``<>&`` and U+2028/9 escaped).
Matching it byte for byte keeps rows written by us and by the official collector interchangeable.
"""
from __future__ import annotations

import base64
import json
import math
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                             "\u2028": "\\u2028", "\u2029": "\\u2029"})


def go_float(f: float) -> str:
    """Format a double like Go's ``float64AsString`` (ES6 number to string, shortest digits)."""
    r = repr(f)
    if "e" not in r and "n" not in r:  # repr is fixed-point for 1e-4 <= |f| < 1e16: same digits as Go
        return r[:-2] if r.endswith(".0") else r
    if math.isnan(f):
        return "json: unsupported value: NaN"
    if math.isinf(f):
        return "json: unsupported value: " + ("+Inf" if f > 0 else "-Inf")
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    mant, _, exp_s = repr(abs(f)).partition("e")
    ip, _, fp = mant.partition(".")
    fp = "" if fp == "0" else fp
    all_digits = ip + fp
    lead = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.lstrip("0").rstrip("0") or "0"
    e10 = (int(exp_s) if exp_s else 0) + len(ip) - 1 - lead  # exponent of the first significant digit
    sign = "-" if f < 0 else ""
    if abs(f) < 1e-6 or abs(f) >= 1e21:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e-{-e10}" if e10 < 0 else f"{sign}{m}e+{e10:02d}"
    if e10 >= 0:
        intpart, frac = digits[: e10 + 1].ljust(e10 + 1, "0"), digits[e10 + 1:]
    else:
        intpart, frac = "0", "0" * (-e10 - 1) + digits
    return sign + intpart + ("." + frac if frac else "")


def _json_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).translate(_GO_ESCAPES)


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, bytes):
        return '"' + base64.b64encode(value).decode("ascii") + '"'
    if isinstance(value, dict):
        return "{" + ",".join(_json_str(k) + ":" + _json(value[k]) for k in sorted(value)) + "}"
    return "[" + ",".join(_json(v) for v in value) + "]"


def as_raw(v: AnyValue) -> Any:
    """pcommon ``AsRaw``: the Python value Go would marshal."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bytes_value":
        return v.bytes_value
    if kind == "array_value":
        return [as_raw(x) for x in v.array_value.values]
    out: dict[str, Any] = {}
    for kv in v.kvlist_value.values:
        out[kv.key] = as_raw(kv.value)
    return out


def as_string(v: AnyValue) -> str:
    """pcommon ``Value.AsString``."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind is None:
        return ""
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind == "int_value":
        return str(v.int_value)
    if kind == "double_value":
        return go_float(v.double_value)
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    if kind == "array_value":
        values = v.array_value.values
        if all(x.WhichOneof("value") == "string_value" for x in values):  # the common string[] case
            return "[" + ",".join([_json_str(x.string_value) for x in values]) + "]"
    return _json(as_raw(v))


def attributes_map(kvs: Any) -> dict[str, str]:
    """A repeated ``KeyValue`` as the exporter's ``Map(String, String)`` (last duplicate wins).

    Hot path of ingest (most of the decode time is spent here): a non-empty ``string_value`` or a
    non-zero ``int_value`` can only be the set member of the oneof, so the common values skip
    ``WhichOneof``; everything else (empty, zero, bool, double, bytes, arrays, maps) goes through
    ``as_string``.
    """
    out: dict[str, str] = {}
    for kv in kvs:
        v = kv.value
        s = v.string_value
        if not s:
            i = v.int_value
            s = str(i) if i else as_string(v)
        out[kv.key] = s
    return out
