"""OTLP -> exporter rows: the Python decoder against the engine decoding the protobuf itself (issue 16).

    python bench/bench_decode.py [--spans 12000] [--batch 512]

Same LLM-shaped requests as ``bench_collector.py``. One process, CPU time (``process_time``: all
threads, so chDB's count), per span:

- ``python``: the collector's ``decode_export`` (upb parse, ``convert``, JSON payload, call tally), and
  its steps alone;
- ``engine``: chDB reads the request bodies with ClickHouse's ``Protobuf`` input format (a trimmed
  ``trace.proto``, ``format_schema_source='string'``, ``input_format_protobuf_oneof_presence`` to know
  which ``AnyValue`` member is set) and turns them into the 22 exporter columns in SQL (string, int,
  bool, double, bytes and string-array values; kvlists and nested arrays would need a fallback), once
  per request and once for all requests in one length-delimited input.

It measures the candidates; it is not the collector's code path. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

# Field numbers as in opentelemetry-proto's trace.proto / common.proto; only what the rows need.
SCHEMA = " ".join("""
syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3;
  double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; }
message Span { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; repeated Event events = 11; repeated Link links = 13; Status status = 15; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
""".split())

_PRESENCE = ("Enum8('none'=0,'string_value'=1,'bool_value'=2,'int_value'=3,'double_value'=4,"
             "'array_value'=5,'kvlist_value'=6,'bytes_value'=7)")
_SCALAR = (f"string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, "
           f"value {_PRESENCE}")
_VALUE = f"Tuple({_SCALAR}, array_value Tuple(values Array(Tuple({_SCALAR}))))"
_KVS = f"Array(Tuple(key String, value {_VALUE}))"
STRUCTURE = (
    f"resource_spans Array(Tuple(resource Tuple(attributes {_KVS}), scope_spans Array(Tuple("
    f"scope Tuple(name String, version String), spans Array(Tuple(trace_id String, span_id String, "
    f"trace_state String, parent_span_id String, name String, kind Int32, start_time_unix_nano UInt64, "
    f"end_time_unix_nano UInt64, attributes {_KVS}, events Array(Tuple(time_unix_nano UInt64, name String, "
    f"attributes {_KVS})), links Array(Tuple(trace_id String, span_id String, trace_state String, "
    f"attributes {_KVS})), status Tuple(message String, code Int32)))))))")


def _as_string(v: str) -> str:
    return (f"multiIf({v}.value = 'string_value', {v}.string_value, {v}.value = 'int_value', toString({v}.int_value), "
            f"{v}.value = 'bool_value', if({v}.bool_value, 'true', 'false'), "
            f"{v}.value = 'double_value', toString({v}.double_value), "
            f"{v}.value = 'bytes_value', base64Encode({v}.bytes_value), "
            f"{v}.value = 'array_value', "
            f"'[\"' || arrayStringConcat(arrayMap(x -> x.string_value, {v}.array_value.values), '\",\"') || '\"]', '')")


def _map(kvs: str) -> str:
    return f"mapFromArrays(arrayMap(kv -> kv.key, {kvs}), arrayMap(kv -> {_as_string('kv.value')}, {kvs}))"


def rows_sql(fmt: str) -> str:
    res = _map("rs.resource.attributes")
    return f"""
SELECT toInt64(sp.start_time_unix_nano), lower(hex(sp.trace_id)), lower(hex(sp.span_id)),
  if(sp.parent_span_id = '' OR sp.parent_span_id = repeat('\\0', 8), '', lower(hex(sp.parent_span_id))),
  sp.trace_state, sp.name,
  ['Unspecified','Internal','Server','Client','Producer','Consumer'][if(sp.kind BETWEEN 0 AND 5, sp.kind + 1, 1)],
  {res}['service.name'], {res}, ss.scope.name, ss.scope.version, {_map('sp.attributes')},
  if(sp.end_time_unix_nano >= sp.start_time_unix_nano, sp.end_time_unix_nano - sp.start_time_unix_nano, 0),
  ['Unset','Ok','Error'][if(sp.status.code BETWEEN 0 AND 2, sp.status.code + 1, 1)], sp.status.message,
  arrayMap(e -> toInt64(e.time_unix_nano), sp.events), arrayMap(e -> e.name, sp.events),
  arrayMap(e -> {_map('e.attributes')}, sp.events),
  arrayMap(l -> lower(hex(l.trace_id)), sp.links), arrayMap(l -> lower(hex(l.span_id)), sp.links),
  arrayMap(l -> l.trace_state, sp.links), arrayMap(l -> {_map('l.attributes')}, sp.links)
{_source(fmt)}"""


def _source(fmt: str) -> str:
    return f"""FROM file({{path:String}}, '{fmt}', {{s:String}})
ARRAY JOIN resource_spans AS rs ARRAY JOIN rs.scope_spans AS ss ARRAY JOIN ss.spans AS sp
SETTINGS format_schema={{f:String}}, format_schema_message_name='ExportTraceServiceRequest',
  format_schema_source='string', input_format_protobuf_oneof_presence=1"""


def count_sql(fmt: str) -> str:
    return "SELECT count() " + _source(fmt)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=12_000)
    ap.add_argument("--batch", type=int, default=512)
    args = ap.parse_args()
    import clickhouse_connect
    from bench_collector import build_requests

    from streamtriage.collector import otlp_decode as otlp
    from streamtriage.collector.decode_worker import decode_export, rows_to_payload, tally_calls
    from streamtriage.collector.span_rows import convert

    reqs = build_requests(args.spans, args.batch)
    msgs = [otlp.parse_request(b, otlp.PROTOBUF) for b in reqs]
    n = sum(len(ss.spans) for m in msgs for rs in m.resource_spans for ss in rs.scope_spans)
    spans = [s for m in msgs for rs in m.resource_spans for ss in rs.scope_spans for s in ss.spans]
    rows = [convert(m).rows for m in msgs]
    gc.collect()
    gc.freeze()  # the fixtures are long-lived: keep the collector's scans of them out of the figures
    out: list[tuple[str, float]] = []

    def timed(label: str, fn) -> None:
        best = float("inf")
        for _ in range(3):
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
        out.append((label, best / n * 1e6))

    timed("python: decode_export (parse + convert + JSON + tally)", lambda: [
        decode_export(b, None, otlp.PROTOBUF, 1 << 30) for b in reqs])
    timed("python: protobuf parse (upb)", lambda: [otlp.parse_request(b, otlp.PROTOBUF) for b in reqs])
    timed("python: convert to rows", lambda: [convert(m) for m in msgs])
    timed("python: JSON payload + call tally", lambda: [(rows_to_payload(r), tally_calls(r)) for r in rows])
    timed("python floor: iterate attribute KeyValues only", lambda: [[kv for kv in s.attributes] for s in spans])

    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        os.chdir(tmp)  # the engine caches string schemas in ./__cache__
        client = clickhouse_connect.get_client(dsn=f"chdb://{tmp}/db")
        path = f"{tmp}/body.bin"
        params = {"path": path, "s": STRUCTURE, "f": SCHEMA}

        def engine(sql: str, bodies: list[bytes]) -> None:
            for body in bodies:
                Path(path).write_bytes(body)
                client.query(sql, parameters=params)

        def check_rows() -> None:  # the engine's rows equal the Python converter's on this data
            Path(path).write_bytes(reqs[0])
            got = client.query(rows_sql("ProtobufSingle"), parameters=params).result_rows
            want = rows[0]
            assert len(got) == len(want), (len(got), len(want))
            for g, w in zip(got, want, strict=True):
                assert list(g) == w, (g, w)

        check_rows()
        single = rows_sql("ProtobufSingle")
        timed("engine, one query per request: parse only (count)", lambda: engine(count_sql("ProtobufSingle"), reqs))
        timed("engine, one query per request: exporter rows", lambda: engine(single, reqs))
        many = b"".join(_varint(len(b)) + b for b in reqs)
        timed(f"engine, all {len(reqs)} requests in one query: parse only (count)",
              lambda: engine(count_sql("Protobuf"), [many]))
        timed(f"engine, all {len(reqs)} requests in one query: exporter rows", lambda: engine(rows_sql("Protobuf"), [many]))
        client.close()

    print(f"\n{n} spans in {len(reqs)} requests of <= {args.batch}; CPU µs per span (best of 3)\n")
    print("| path | CPU µs/span |\n|---|---:|")
    for label, us in out:
        print(f"| {label} | {us:.1f} |")


if __name__ == "__main__":
    main()
