"""Statement checks for the read-only ClickHouse HTTP endpoint.

A regex cannot tell ``file`` in a comment from ``file()`` in a subquery, so the decision is made
on the engine's own parse: ``EXPLAIN AST`` (which only parses, never executes) gives the statement
kind, every function call, every table expression and the ``SETTINGS``/``INTO OUTFILE``/``FORMAT``
clauses. A small lexer runs first because the embedded engine executes every statement of a
multi-statement text, ``EXPLAIN AST`` included: ``EXPLAIN AST SELECT 1; DROP TABLE t`` would drop.
The same lexer finds where an ``INSERT ... FORMAT`` statement ends and its data begins.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "GuardError",
    "Token",
    "ReadOnlyPolicy",
    "StatementInfo",
    "tokens",
    "single_statement",
    "first_keyword",
    "split_insert_data",
    "check_read_only",
    "parse_ast",
]


class GuardError(Exception):
    """A statement the endpoint refuses; carries the ClickHouse error code to report."""

    def __init__(self, message: str, code: int = 164, name: str = "READONLY") -> None:
        super().__init__(message)
        self.code = code
        self.name = name


# ---------------------------------------------------------------------------------------------
# Lexer: just enough of ClickHouse's to find statement boundaries outside strings and comments.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # word, number, string, quoted, symbol, semicolon, param, heredoc
    text: str
    start: int
    end: int


_WORD_START = re.compile(r"[A-Za-z_\x80-\uffff]")
_WORD = re.compile(r"[A-Za-z0-9_$\x80-\uffff]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*(?:[eEpP][+-][0-9]+)?")
_HEREDOC_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip_quoted(text: str, pos: int, quote: str) -> int:
    """Return the index after the closing quote; backslash escapes and doubled quotes."""
    i = pos + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    raise GuardError(f"Unterminated quoted text starting at position {pos}", 62, "SYNTAX_ERROR")


def _skip_block_comment(text: str, pos: int) -> int:
    depth = 0
    i = pos
    n = len(text)
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise GuardError(f"Unterminated comment starting at position {pos}", 62, "SYNTAX_ERROR")


def tokens(text: str, start: int = 0) -> Iterator[Token]:
    """Yield the tokens of ``text`` lazily (whitespace and comments dropped).

    Lazy so that the caller can stop at ``FORMAT <name>`` of an INSERT before binary data.
    """
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("--", i) or (ch == "#" and i + 1 < n and text[i + 1] in " !"):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            i = _skip_block_comment(text, i)
        elif ch in "'\"`":
            end = _skip_quoted(text, i, ch)
            yield Token("string" if ch == "'" else "quoted", text[i:end], i, end)
            i = end
        elif ch == "$":
            m = _HEREDOC_TAG.match(text, i)
            if m:
                close = text.find(m.group(0), m.end())
                if close < 0:
                    raise GuardError(f"Unterminated heredoc starting at position {i}", 62, "SYNTAX_ERROR")
                end = close + len(m.group(0))
                yield Token("heredoc", text[i:end], i, end)
                i = end
            else:
                yield Token("symbol", ch, i, i + 1)
                i += 1
        elif ch == "{":
            end = text.find("}", i)
            if end < 0:
                yield Token("symbol", ch, i, i + 1)
                i += 1
            else:
                yield Token("param", text[i : end + 1], i, end + 1)
                i = end + 1
        elif ch == ";":
            yield Token("semicolon", ch, i, i + 1)
            i += 1
        elif ch.isdigit():
            m = _NUMBER.match(text, i)
            assert m is not None
            yield Token("number", m.group(0), i, m.end())
            i = m.end()
        elif _WORD_START.match(ch):
            m = _WORD.match(text, i + 1)
            assert m is not None
            yield Token("word", text[i : m.end()], i, m.end())
            i = m.end()
        else:
            yield Token("symbol", ch, i, i + 1)
            i += 1


def single_statement(sql: str) -> str:
    """Return ``sql`` without a trailing ``;``; refuse a second statement.

    Everything after the first top-level ``;`` must be whitespace or comments.
    """
    for tok in tokens(sql):
        if tok.kind == "semicolon":
            rest = list(tokens(sql, tok.end))
            if any(t.kind != "semicolon" for t in rest):
                raise GuardError(
                    "Multi-statements are not allowed: only one statement per request", 62, "SYNTAX_ERROR"
                )
            return sql[: tok.start]
    return sql


def first_keyword(sql: str) -> str:
    """Upper-cased first word of the statement (skipping comments and opening parentheses)."""
    for tok in tokens(sql):
        if tok.kind == "word":
            return tok.text.upper()
        if tok.kind == "symbol" and tok.text == "(":
            continue
        return ""
    return ""


def split_insert_data(text: str) -> tuple[str, str | None, int | None]:
    """Split ``INSERT ... FORMAT <fmt><data>`` into (statement, format, data offset).

    ``text`` is the request decoded as latin-1 so offsets equal byte offsets. As in ClickHouse,
    the data starts after the first newline following the format name, or after the whitespace
    when there is no newline. Returns (text, None, None) when the statement has no FORMAT clause
    (``INSERT ... VALUES``, ``INSERT ... SELECT``), which then runs as ordinary SQL.
    """
    depth = 0
    it = tokens(text)
    for tok in it:
        if tok.kind == "symbol" and tok.text == "(":
            depth += 1
        elif tok.kind == "symbol" and tok.text == ")":
            depth -= 1
        elif tok.kind == "word" and depth == 0 and tok.text.upper() in ("SELECT", "WITH", "VALUES"):
            return text, None, None
        elif tok.kind == "word" and depth == 0 and tok.text.upper() == "FORMAT":
            name = next(it, None)
            if name is None or name.kind not in ("word", "quoted"):
                raise GuardError("Expected a format name after FORMAT", 62, "SYNTAX_ERROR")
            i = name.end
            n = len(text)
            while i < n and text[i] in " \t\r\n\f\v":
                if text[i] == "\n":
                    i += 1
                    break
                i += 1
            return text[: tok.start], name.text.strip("`\""), i
    return text, None, None


# ---------------------------------------------------------------------------------------------
# AST checks
# ---------------------------------------------------------------------------------------------


@dataclass
class AstNode:
    label: str
    children: list[AstNode] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.label.split(" ", 1)[0]

    @property
    def arg(self) -> str:
        """The word after the kind (function or identifier name)."""
        parts = self.label.split(" ")
        return parts[1] if len(parts) > 1 else ""

    def walk(self) -> Iterator[AstNode]:
        yield self
        for child in self.children:
            yield from child.walk()


_CHILDREN = re.compile(r"\s*\(children \d+\)\s*$")


def parse_ast(dump: str) -> AstNode:
    """Parse ``EXPLAIN AST`` output (one node per line, one space of indent per level)."""
    root: AstNode | None = None
    stack: list[tuple[int, AstNode]] = []
    for line in dump.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        node = AstNode(_CHILDREN.sub("", line.strip()))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif root is None:
            root = node
        else:
            raise GuardError("Multi-statements are not allowed", 62, "SYNTAX_ERROR")
        stack.append((depth, node))
    if root is None:
        raise GuardError("Empty query", 62, "SYNTAX_ERROR")
    return root


# Statement kinds that only read (EXPLAIN is checked through its inner statement).
_READ_ROOTS = {
    "SelectWithUnionQuery",
    "SelectIntersectExceptQuery",
    "SelectQuery",
    "ShowTables",
    "ShowColumns",
    "ShowIndexes",
    "ShowFunctions",
    "ShowEngineQuery",
    "ShowCreateTableQuery",
    "ShowCreateDatabaseQuery",
    "ShowCreateViewQuery",
    "ShowCreateDictionaryQuery",
    "ShowProcesslistQuery",
    "DescribeQuery",
    "ExistsTableQuery",
    "ExistsDatabaseQuery",
    "ExistsDictionaryQuery",
    "ExistsViewQuery",
}
_EXPLAIN_KINDS = {"EXPLAIN", "EXPLAIN AST", "EXPLAIN SYNTAX", "EXPLAIN PLAN", "EXPLAIN PIPELINE",
                  "EXPLAIN ESTIMATE", "EXPLAIN QUERY TREE", "EXPLAIN CURRENT TRANSACTION"}

# Table functions that only generate data inside the engine; every other one reads files, URLs,
# object stores or other servers and is refused.
SAFE_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generateseries", "generate_series", "values",
     "view", "generaterandom", "null"}
)
# Scalar functions that reach outside the database (``file`` reads the server's files).
UNSAFE_SCALAR_FUNCTIONS = frozenset({"file", "catboostevaluate", "modelevaluate"})
# The table functions of a ClickHouse 26.x engine minus the safe ones, used when the engine's
# own list is unavailable; names are compared lower-cased.
_KNOWN_OUTSIDE_FUNCTIONS = frozenset(
    {"file", "url", "urlcluster", "s3", "s3cluster", "gcs", "cosn", "oss", "remote", "remotesecure",
     "cluster", "clusterallreplicas", "mysql", "postgresql", "jdbc", "odbc", "hdfs", "hdfscluster",
     "azureblobstorage", "azureblobstoragecluster", "executable", "input", "sqlite", "mongodb",
     "redis", "dictionary", "iceberg", "icebergs3", "icebergazure", "iceberghdfs", "icebergs3cluster",
     "icebergazurecluster", "iceberghdfscluster", "deltalake", "deltalakecluster", "hudi",
     "hudicluster", "merge", "loop", "fuzzjson", "fuzzquery", "filecluster", "timeseriesdata",
     "timeseriestags", "timeseriesmetrics", "arrowflight", "ytsaurus", "paimon",
     "prometheusquery", "mergetreeindex", "mergetreeprojection"}
)


@dataclass(frozen=True)
class ReadOnlyPolicy:
    """What the guard refuses beyond the statement kind; ``outside_functions`` comes from the engine."""

    outside_functions: frozenset[str] = _KNOWN_OUTSIDE_FUNCTIONS
    safe_table_functions: frozenset[str] = SAFE_TABLE_FUNCTIONS
    unsafe_scalars: frozenset[str] = UNSAFE_SCALAR_FUNCTIONS

    @classmethod
    def from_engine_lists(cls, table_functions: set[str], scalar_functions: set[str]) -> ReadOnlyPolicy:
        """Refuse every table function the engine knows except the safe ones, anywhere in a query.

        A name that is also an ordinary scalar function (``format``) is only refused as a table.
        """
        tf = {n.lower() for n in table_functions}
        scalars = {n.lower() for n in scalar_functions}
        outside = (tf - SAFE_TABLE_FUNCTIONS - scalars) | UNSAFE_SCALAR_FUNCTIONS
        return cls(outside_functions=frozenset(outside))


@dataclass(frozen=True)
class StatementInfo:
    kind: str
    output_format: str | None  # from a FORMAT clause, if the statement has one


def _check_select_tree(node: AstNode, policy: ReadOnlyPolicy) -> None:
    for n in node.walk():
        if n.kind == "Set":
            raise GuardError("Cannot change settings in a query on a read-only endpoint (SETTINGS clause)")
        if n.kind == "Function":
            name = n.arg.lower()
            if name in policy.outside_functions or name in policy.unsafe_scalars:
                raise GuardError(f"Function '{n.arg}' reads outside the database and is not allowed here", 497, "ACCESS_DENIED")
        if n.kind == "TableExpression":
            for child in n.children:
                if child.kind == "Function" and child.arg.lower() not in policy.safe_table_functions:
                    raise GuardError(
                        f"Table function '{child.arg}' is not allowed on a read-only endpoint", 497, "ACCESS_DENIED"
                    )


def _statement_info(root: AstNode, policy: ReadOnlyPolicy) -> StatementInfo:
    fmt: str | None = None
    if root.kind == "Explain":
        explain_kind = root.label.split(" ", 1)[1] if " " in root.label else "EXPLAIN"
        if explain_kind not in _EXPLAIN_KINDS or not root.children:
            raise GuardError(f"{explain_kind} is not allowed on a read-only endpoint")
        inner, extra = root.children[0], root.children[1:]
        _statement_info(inner, policy)
        body = [root]
    elif root.label.split(" ", 1)[0] in _READ_ROOTS:
        body = [root.children[0]] if root.kind == "SelectWithUnionQuery" and root.children else [root]
        extra = root.children[1:] if root.kind == "SelectWithUnionQuery" else []
    else:
        raise GuardError(
            f"Only SELECT, WITH, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed on a read-only endpoint, got {root.label.split(' (')[0]}"
        )
    for node in extra:
        if node.kind == "Identifier":
            fmt = node.arg
        elif node.kind == "Literal":
            raise GuardError("INTO OUTFILE is not allowed on a read-only endpoint")
        elif node.kind == "Set":
            raise GuardError("Cannot change settings in a query on a read-only endpoint (SETTINGS clause)")
        elif root.kind != "Explain":
            raise GuardError(f"Unexpected clause {node.label} on a read-only endpoint")
    for node in body:
        _check_select_tree(node, policy)
    return StatementInfo(kind=root.kind, output_format=fmt)


# First words of statements that change something; refused before the engine sees them.
_WRITE_KEYWORDS = frozenset({
    "INSERT", "CREATE", "ALTER", "DROP", "DETACH", "ATTACH", "RENAME", "TRUNCATE", "OPTIMIZE",
    "SYSTEM", "SET", "KILL", "GRANT", "REVOKE", "BACKUP", "RESTORE", "DELETE", "UPDATE", "UNDROP",
    "USE", "EXCHANGE", "MOVE", "CHECK", "BEGIN", "COMMIT", "ROLLBACK", "WATCH", "REPLACE", "UPSERT",
})


def _has_into_outfile(sql: str) -> bool:
    prev = ""
    for tok in tokens(sql):
        word = tok.text.upper() if tok.kind == "word" else ""
        if prev == "INTO" and word == "OUTFILE":
            return True
        prev = word
    return False


def check_read_only(
    sql: str, explain_ast: Callable[[str], str], policy: ReadOnlyPolicy | None = None
) -> tuple[str, StatementInfo]:
    """Check one statement for the read-only endpoint.

    Returns the statement without its trailing ``;`` and what the checks found. Raises
    GuardError (with a ClickHouse error code) for anything that writes, changes settings or reads
    outside the database. ``explain_ast`` runs ``EXPLAIN AST <sql>`` on the engine with the
    request's query parameters bound and returns the dump.
    """
    policy = policy or ReadOnlyPolicy()
    stmt = single_statement(sql)
    if not stmt.strip() or not any(True for _ in tokens(stmt)):
        raise GuardError("Empty query", 62, "SYNTAX_ERROR")
    if _has_into_outfile(stmt):
        raise GuardError("INTO OUTFILE is not allowed on a read-only endpoint")
    keyword = first_keyword(stmt)
    if keyword in _WRITE_KEYWORDS:
        raise GuardError(
            f"Only SELECT, WITH, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed on a read-only endpoint, got {keyword}"
        )
    # Anything else is parsed by the engine: a typo gets the engine's own syntax error, and the
    # statement kind is decided on the parse, not on the first word.
    root = parse_ast(explain_ast(stmt))
    return stmt, _statement_info(root, policy)
