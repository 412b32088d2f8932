"""Statement checks for the read-only SQL endpoint, in two layers that each refuse a write alone.

1. **Tokens** (``check_tokens``), before any engine call: the exact lexer (``lexer.py``) finds the
   one statement (anything after a top-level ``;`` is refused); the first word must be a read
   (``SELECT``/``WITH``/``SHOW``/``DESCRIBE``/``EXISTS``/``EXPLAIN``); words that only appear in
   writes or setting changes (``INSERT``, ``SETTINGS``, ``OUTFILE``...) are refused anywhere
   outside literals; a call of any table function that reads outside the database (``file(``,
   ``url(``, ``remote(``...) is refused by name; a ``FORMAT`` clause must name an allowed format.
2. **The engine's parse** (``check_ast``): only text that passed layer 1, so exactly one statement,
   goes to ``EXPLAIN AST`` (parse only), on the engine's read-only handle. The statement kind,
   every function call, every table expression and the ``SETTINGS``/``INTO OUTFILE``/``FORMAT``
   clauses are checked on the tree, so a spelling the token layer did not foresee is still caught.

The engine's own read-only context (``engines.py``) is the third wall: even text that passed both
runs where writes and setting changes fail.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .errors import GuardError
from .formats import output_format
from .lexer import Token, tokens

__all__ = [
    "GuardError",
    "ReadOnlyPolicy",
    "StatementInfo",
    "single_statement",
    "first_keyword",
    "check_tokens",
    "check_ast",
    "check_read_only",
    "parse_ast",
]


def single_statement(sql: str) -> str:
    """Return ``sql`` without its trailing ``;``; refuse a second statement.

    Everything after the first top-level ``;`` must be further ``;``, whitespace or comments.
    """
    for tok in tokens(sql):
        if tok.kind == "semicolon":
            if any(t.kind != "semicolon" for t in tokens(sql, tok.end)):
                raise GuardError(
                    "Multi-statements are not allowed: only one statement per request", 62, "SYNTAX_ERROR"
                )
            return sql[: tok.start]
    return sql


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
     "prometheusquery", "mergetreeindex", "mergetreeprojection", "python", "pythontablefunction"}
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


# First words a read-only statement may start with (after opening parentheses).
_READ_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})
# Words that only occur in writes, setting changes or output to the server's disk. Refused anywhere
# outside literals: a column with such a name must be quoted (`insert`).
_REFUSED_WORDS = frozenset({
    "INSERT", "CREATE", "ALTER", "DROP", "DETACH", "ATTACH", "RENAME", "TRUNCATE", "OPTIMIZE",
    "SET", "SETTINGS", "KILL", "GRANT", "REVOKE", "BACKUP", "RESTORE", "UNDROP", "USE",
    "EXCHANGE", "OUTFILE", "DELETE", "UPDATE", "UPSERT", "WATCH", "MOVE", "BEGIN", "COMMIT",
    "ROLLBACK",
})


def first_keyword(sql: str) -> str:
    """Upper-cased first word of the statement (skipping comments and opening parentheses)."""
    for tok in tokens(sql):
        if tok.kind == "word":
            return tok.text.upper()
        if tok.kind == "symbol" and tok.text == "(":
            continue
        return ""
    return ""


def check_tokens(sql: str, policy: ReadOnlyPolicy | None = None) -> tuple[str, str | None]:
    """Layer 1, no engine involved: (the one statement without its ``;``, its FORMAT name or None)."""
    policy = policy or ReadOnlyPolicy()
    stmt = single_statement(sql)
    toks = list(tokens(stmt))
    if not toks:
        raise GuardError("Empty query", 62, "SYNTAX_ERROR")
    keyword = first_keyword(stmt)
    if keyword not in _READ_KEYWORDS:
        raise GuardError(
            f"Only SELECT, WITH, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed on a read-only endpoint, got {keyword or toks[0].text!r}"
        )
    fmt: str | None = None
    depth = 0
    for i, tok in enumerate(toks):
        nxt: Token | None = toks[i + 1] if i + 1 < len(toks) else None
        if tok.kind == "symbol" and tok.text in "([":
            depth += 1
        elif tok.kind == "symbol" and tok.text in ")]":
            depth -= 1
        if tok.kind == "word":
            word = tok.text.upper()
            qualified = (i > 0 and toks[i - 1].text == ".") or (nxt is not None and nxt.text == ".")
            show_create = word == "CREATE" and i > 0 and toks[i - 1].text.upper() == "SHOW"
            if word in _REFUSED_WORDS and not qualified and not show_create:  # system.settings is a table
                raise GuardError(f"'{tok.text}' is not allowed on a read-only endpoint (position {tok.start})")
            if word == "FORMAT" and depth == 0 and nxt is not None and nxt.kind in ("word", "quoted"):
                fmt = output_format(nxt.text.strip("`\""))
        if tok.kind in ("word", "quoted") and nxt is not None and nxt.kind == "symbol" and nxt.text == "(":
            name = _unquote(tok.text).lower()
            if name in policy.outside_functions or name in policy.unsafe_scalars:
                raise GuardError(f"Function '{_unquote(tok.text)}' reads outside the database and is not allowed here",
                                 497, "ACCESS_DENIED")
    return stmt, fmt


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] in "`\"" and text[-1] == text[0]:
        body = text[1:-1]
        return re.sub(r"\\(.)", r"\1", body).replace(text[0] * 2, text[0])
    return text


def check_ast(stmt: str, explain_ast: Callable[[str], str], policy: ReadOnlyPolicy | None = None) -> StatementInfo:
    """Layer 2: the engine's parse of one statement that passed ``check_tokens``."""
    info = _statement_info(parse_ast(explain_ast(stmt)), policy or ReadOnlyPolicy())
    if info.output_format is not None:
        output_format(info.output_format)
    return info


def check_read_only(
    sql: str, explain_ast: Callable[[str], str], policy: ReadOnlyPolicy | None = None
) -> tuple[str, StatementInfo]:
    """Both layers: the statement to run (without its ``;``) and what the checks found.

    Raises GuardError (with a ClickHouse error code) for anything that writes, changes settings or
    reads outside the database. ``explain_ast`` runs ``EXPLAIN AST <stmt>`` on the engine's
    read-only handle with the request's query parameters bound; it is called only after layer 1.
    """
    stmt, _ = check_tokens(sql, policy)
    return stmt, check_ast(stmt, explain_ast, policy)
