"""Decoding OTLP bodies: JSON mapping details, per-span rejection, and malformed input as clear errors."""
from __future__ import annotations

import gzip
import json
import os

import pytest

from streamtriage.collector import otlp_decode as otlp
from streamtriage.collector.span_rows import INSERT_COLUMNS, convert
from tests.collector.otlp_payloads import json_request, make_request, make_span


def _row(row: list) -> dict:
    return dict(zip(INSERT_COLUMNS, row, strict=False))


def test_json_hex_ids_enum_ints_and_names_and_camel_case() -> None:
    for kind, code in ((3, 2), ("SPAN_KIND_CLIENT", "STATUS_CODE_ERROR")):
        body = json.dumps(json_request("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174",
                                       kind=kind, status_code=code)).encode()
        out = convert(otlp.parse_request(body, otlp.JSON))
        assert out.rejected == 0
        row = _row(out.rows[0])
        assert (row["TraceId"], row["SpanId"]) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
        assert (row["SpanKind"], row["StatusCode"], row["StatusMessage"]) == ("Client", "Error", "json status")
        assert row["ServiceName"] == "svc-json" and row["ScopeName"] == "json-scope" and row["ScopeVersion"] == "9"
        assert row["SpanAttributes"] == {"streamtriage.span": "call", "streamtriage.contract": "1",
                                         "streamtriage.ttfe_ms": "12.5", "streamtriage.terminal.seen": "false",
                                         "gen_ai.response.finish_reasons": '["length"]'}
        assert row["Events.Name"] == ["chunk"] and row["Events.Attributes"] == [{"i": "3"}]
        assert row["Links.TraceId"] == ["0af7651916cd43dd8448eb211c80319c"]
        assert row["Duration"] == 5_000_000


def test_invalid_ids_are_rejected_per_span_not_per_request() -> None:
    good = make_span(os.urandom(16))
    bad_trace = make_span(b"\x00" * 16)
    short_span = make_span(os.urandom(16), span_id=b"\x01\x02")
    bad_parent = make_span(os.urandom(16), parent=b"\x01" * 3)
    out = convert(make_request([good, bad_trace, short_span, bad_parent]))
    assert len(out.rows) == 1 and out.rejected == 3
    assert "invalid trace_id" in out.error_message and "invalid span_id" in out.error_message
    body = json.dumps(json_request("not-hex", "eee19b7ec3c1b174")).encode()
    out = convert(otlp.parse_request(body, otlp.JSON))
    assert out.rows == [] and out.rejected == 1


@pytest.mark.parametrize("body", [
    b"\x0a\xff\xff\xff\x0f",                      # length prefix far beyond the data (truncated)
    make_request([make_span(os.urandom(16))]).SerializeToString()[:-7],
    b"\x0a\x05\x12\x03\x0a\x01",                  # nested message cut short
])
def test_truncated_protobuf_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(otlp.BadRequest):
        otlp.parse_request(body, otlp.PROTOBUF)


def test_invalid_utf8_in_protobuf_string_is_a_bad_request() -> None:
    raw = make_request([make_span(os.urandom(16), name="AAAA")]).SerializeToString()
    with pytest.raises(otlp.BadRequest):
        otlp.parse_request(raw.replace(b"AAAA", b"A\xff\xfeA"), otlp.PROTOBUF)


@pytest.mark.parametrize("body", [
    b"\xff\xfe{}",                                              # not UTF-8
    b"{not json",
    b"[1, 2]",                                                  # not an object
    b'{"resourceSpans": "nope"}',                               # wrong type
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5, "startTimeUnixNano": "x"}]}]}]}',
    ("[" * 100_000 + "]" * 100_000).encode(),                   # deep nesting
])
def test_malformed_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(otlp.BadRequest):
        otlp.parse_request(body, otlp.JSON)


def test_deeply_nested_attribute_values_are_refused() -> None:
    value: dict = {"stringValue": "leaf"}
    for _ in range(200):
        value = {"arrayValue": {"values": [value]}}
    doc = json_request("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174",
                       extra_span={"attributes": [{"key": "deep", "value": value}]})
    with pytest.raises(otlp.BadRequest):
        otlp.parse_request(json.dumps(doc).encode(), otlp.JSON)


def test_gzip_is_undone_and_bombs_stop_at_the_limit() -> None:
    payload = make_request([make_span(os.urandom(16))]).SerializeToString()
    assert otlp.decompress(gzip.compress(payload), "gzip", 1 << 20) == payload
    bomb = gzip.compress(b"\x00" * (50 << 20))  # 50 MiB of zeros in ~50 KiB
    assert len(bomb) < 100_000
    with pytest.raises(otlp.TooLarge):
        otlp.decompress(bomb, "gzip", 1 << 20)
    with pytest.raises(otlp.BadRequest):
        otlp.decompress(gzip.compress(payload)[:-10], "gzip", 1 << 20)
    with pytest.raises(otlp.BadRequest):
        otlp.decompress(b"not gzip at all", "gzip", 1 << 20)


def test_media_types() -> None:
    assert otlp.media_type("application/x-protobuf") == otlp.PROTOBUF
    assert otlp.media_type("application/json; charset=utf-8") == otlp.JSON
    assert otlp.media_type("text/plain") is None and otlp.media_type(None) is None


def test_warm_up_decodes_a_span_in_both_encodings() -> None:
    from streamtriage.collector.decode_worker import warm_up

    assert warm_up() == 2
