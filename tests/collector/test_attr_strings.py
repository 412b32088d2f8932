"""Attribute values are stored as the official exporter's ``pcommon.Value.AsString()`` writes them."""
from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from streamtriage.collector.attr_strings import as_string, attributes_map, go_float


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "0"), (1.0, "1"), (100.0, "100"), (12.5, "12.5"), (0.001, "0.001"), (1e-6, "0.000001"),
    (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (1.5e16, "15000000000000000"), (1e20, "100000000000000000000"),
    (1e21, "1e+21"), (1.234e22, "1.234e+22"), (-2.5, "-2.5"), (0.1 + 0.2, "0.30000000000000004"),
    (5e-324, "5e-324"),
])
def test_doubles_format_like_go_es6(value: float, text: str) -> None:
    assert go_float(value) == text


def _arr(*values: AnyValue) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=list(values)))


def test_scalars_bools_ints_bytes_and_empty() -> None:
    assert as_string(AnyValue(string_value="héllo <b>")) == "héllo <b>"
    assert as_string(AnyValue(bool_value=True)) == "true"
    assert as_string(AnyValue(bool_value=False)) == "false"
    assert as_string(AnyValue(int_value=-42)) == "-42"
    assert as_string(AnyValue(double_value=3.0)) == "3"
    assert as_string(AnyValue(bytes_value=b"\x00\xff")) == "AP8="
    assert as_string(AnyValue()) == ""


def test_arrays_and_maps_are_go_json() -> None:
    finish = _arr(AnyValue(string_value="stop"), AnyValue(string_value=""))
    assert as_string(finish) == '["stop",""]'
    mixed = _arr(AnyValue(int_value=1), AnyValue(double_value=2.0), AnyValue(bool_value=True), AnyValue(),
                 AnyValue(string_value="a<b&c>\u2028\"q\""))
    assert as_string(mixed) == '[1,2,true,null,"a\\u003cb\\u0026c\\u003e\\u2028\\"q\\""]'
    kv = AnyValue(kvlist_value=KeyValueList(values=[
        KeyValue(key="z", value=AnyValue(int_value=1)),
        KeyValue(key="a", value=_arr(AnyValue(double_value=1e-7))),
    ]))
    assert as_string(kv) == '{"a":[1e-7],"z":1}'


def test_attribute_map_last_duplicate_wins_and_all_values_are_strings() -> None:
    kvs = [KeyValue(key="k", value=AnyValue(int_value=1)), KeyValue(key="k", value=AnyValue(string_value="2")),
           KeyValue(key="b", value=AnyValue(bool_value=True))]
    assert attributes_map(kvs) == {"k": "2", "b": "true"}


def test_attribute_map_fast_path_agrees_with_as_string_on_empty_and_zero_values() -> None:
    # attributes_map skips WhichOneof for non-empty strings and non-zero ints: the values where that
    # shortcut cannot decide (empty, zero, false, unset) must still come out as pcommon's AsString.
    values = [AnyValue(string_value=""), AnyValue(int_value=0), AnyValue(int_value=-3), AnyValue(bool_value=False),
              AnyValue(double_value=0.0), AnyValue(double_value=-0.0), AnyValue(), AnyValue(bytes_value=b""),
              AnyValue(string_value="0"), AnyValue(int_value=7)]
    kvs = [KeyValue(key=f"k{i}", value=v) for i, v in enumerate(values)]
    assert attributes_map(kvs) == {f"k{i}": as_string(v) for i, v in enumerate(values)}
    assert attributes_map(kvs)["k1"] == "0" and attributes_map(kvs)["k3"] == "false" and attributes_map(kvs)["k6"] == ""
