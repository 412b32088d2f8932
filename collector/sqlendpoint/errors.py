"""Errors as ClickHouse reports them over HTTP: a code, a name, an HTTP status and a
``Code: N. DB::Exception: message. (NAME) (version V)`` body, which clickhouse-connect and
``@clickhouse/client`` turn into their typed errors."""
from __future__ import annotations

import re

# ClickHouse error names for the codes this package reports itself (others come from the engine).
ERROR_NAMES = {
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    36: "BAD_ARGUMENTS",
    46: "UNKNOWN_FUNCTION",
    48: "NOT_IMPLEMENTED",
    60: "UNKNOWN_TABLE",
    62: "SYNTAX_ERROR",
    73: "UNKNOWN_FORMAT",
    81: "UNKNOWN_DATABASE",
    115: "UNKNOWN_SETTING",
    159: "TIMEOUT_EXCEEDED",
    164: "READONLY",
    194: "REQUIRED_PASSWORD",
    210: "NETWORK_ERROR",
    241: "MEMORY_LIMIT_EXCEEDED",
    396: "TOO_MANY_ROWS_OR_BYTES",
    452: "SETTING_CONSTRAINT_VIOLATION",
    497: "ACCESS_DENIED",
    516: "AUTHENTICATION_FAILED",
    1001: "STD_EXCEPTION",
}
# HTTP status per error code, following ClickHouse's HTTP handler; anything else is 500 (the
# engine failed), except that codes this package raises for bad input are all 4xx.
HTTP_STATUS = {
    194: 401, 516: 401,
    164: 403, 497: 403, 192: 403, 193: 403, 195: 403,
    60: 404, 81: 404, 46: 404, 47: 404, 50: 404, 73: 404, 115: 404,
    62: 400, 6: 400, 26: 400, 27: 400, 36: 400, 41: 400, 42: 400, 43: 400, 44: 400, 53: 400,
    69: 400, 70: 400, 72: 400, 117: 400, 452: 400, 456: 400, 457: 400,
    48: 501, 210: 503,
}
_CODE_RE = re.compile(r"Code: (\d+)\. ")
_NAME_RE = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*(?:\(version [^)]*\))?\s*$")


class ClickHouseError(Exception):
    """An error reported the way ClickHouse reports it over HTTP."""

    def __init__(self, code: int, message: str, name: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name or ERROR_NAMES.get(code, "UNKNOWN_EXCEPTION")
        self.status = status or HTTP_STATUS.get(code, 500)

    @classmethod
    def from_engine_message(cls, text: str) -> ClickHouseError:
        """Wrap an engine exception text such as ``Code: 60. DB::Exception: ... (UNKNOWN_TABLE)``."""
        text = text.strip()
        codes = _CODE_RE.findall(text)
        code = int(codes[-1]) if codes else 1001
        name_match = _NAME_RE.search(text)
        message = text
        # chDB nests "Code: N. DB::Exception: Code: N. DB::Exception: msg"; keep the innermost.
        marker = "DB::Exception: "
        if marker in message:
            message = message[message.rfind(marker) + len(marker):]
        message = _NAME_RE.sub("", message).rstrip().rstrip(".")
        return cls(code, message, name_match.group(1) if name_match else None)

    def body(self, version: str) -> bytes:
        return f"Code: {self.code}. DB::Exception: {self}. ({self.name}) (version {version})\n".encode()


class GuardError(ClickHouseError):
    """A statement or setting the endpoint refuses before the engine sees it (default: READONLY)."""

    def __init__(self, message: str, code: int = 164, name: str | None = None) -> None:
        super().__init__(code, message, name)
