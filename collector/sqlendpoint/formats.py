"""Output formats the read-only endpoint writes.

Why a list: the engine also knows formats that are not for HTTP clients (chDB's in-process
``Dataframe``/``ArrowTable`` results, which cannot be written as bytes), formats that read a
server file named by a setting (``Template``, ``Protobuf``, ``CapnProto``) and wire protocols of
other servers. Any name not listed is refused with ``UNKNOWN_FORMAT`` (a 4xx) before the engine
runs, whether it comes from ``default_format``, ``X-ClickHouse-Format`` or a ``FORMAT`` clause.
"""
from __future__ import annotations

from .errors import GuardError

OUTPUT_FORMATS: tuple[str, ...] = (
    "TabSeparated", "TabSeparatedRaw", "TabSeparatedWithNames", "TabSeparatedWithNamesAndTypes",
    "TabSeparatedRawWithNames", "TabSeparatedRawWithNamesAndTypes", "TSV", "TSVRaw", "TSVWithNames",
    "TSVWithNamesAndTypes", "TSVRawWithNames", "TSVRawWithNamesAndTypes", "TSKV", "HiveText",
    "CSV", "CSVWithNames", "CSVWithNamesAndTypes",
    "CustomSeparated", "CustomSeparatedWithNames", "CustomSeparatedWithNamesAndTypes",
    "Raw", "RawWithNames", "RawWithNamesAndTypes", "RawBLOB", "LineAsString", "LineAsStringWithNames",
    "LineAsStringWithNamesAndTypes",
    "JSON", "JSONStrings", "JSONCompact", "JSONCompactStrings", "JSONColumns", "JSONColumnsWithMetadata",
    "JSONCompactColumns", "JSONEachRow", "JSONLines", "JSONL", "NDJSON", "JSONStringsEachRow",
    "JSONCompactEachRow", "JSONCompactEachRowWithNames", "JSONCompactEachRowWithNamesAndTypes",
    "JSONCompactStringsEachRow", "JSONCompactStringsEachRowWithNames",
    "JSONCompactStringsEachRowWithNamesAndTypes", "JSONObjectEachRow", "JSONEachRowWithProgress",
    "JSONStringsEachRowWithProgress", "JSONCompactEachRowWithProgress",
    "JSONCompactStringsEachRowWithProgress", "PrettyJSONEachRow", "PrettyJSONLines", "PrettyNDJSON",
    "Native", "RowBinary", "RowBinaryWithNames", "RowBinaryWithNamesAndTypes",
    "Parquet", "Arrow", "ArrowStream", "ORC", "Avro", "BSONEachRow", "MsgPack", "Npy",
    "Values", "SQLInsert", "XML", "Markdown", "MD", "Vertical", "Null", "Prometheus", "GeoJSON",
    "Pretty", "PrettyCompact", "PrettyCompactMonoBlock", "PrettyCompactNoEscapes",
    "PrettyCompactNoEscapesMonoBlock", "PrettyMonoBlock", "PrettyNoEscapes", "PrettyNoEscapesMonoBlock",
    "PrettySpace", "PrettySpaceMonoBlock", "PrettySpaceNoEscapes", "PrettySpaceNoEscapesMonoBlock",
)
_BY_LOWER = {name.lower(): name for name in OUTPUT_FORMATS}


def output_format(name: str) -> str:
    """The canonical name of an allowed output format; ``UNKNOWN_FORMAT`` (73) otherwise."""
    found = _BY_LOWER.get(name.lower())
    if found is None:
        raise GuardError(f"Output format '{name}' is not available on this endpoint", 73, "UNKNOWN_FORMAT")
    return found


def content_type(fmt: str) -> str:
    f = fmt.lower()
    if f.startswith("json") or f.startswith("prettyjson") or f == "ndjson":
        return "application/json; charset=UTF-8"
    if f in ("native", "rowbinary", "rowbinarywithnames", "rowbinarywithnamesandtypes", "parquet", "arrow",
             "arrowstream", "orc", "avro", "bsoneachrow", "msgpack", "npy", "rawblob"):
        return "application/octet-stream"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    return "text/plain; charset=UTF-8"
