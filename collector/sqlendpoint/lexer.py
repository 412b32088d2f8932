"""ClickHouse's lexer, transcribed: where each token starts and ends, exactly as the engine sees it.

Why exact: the engine runs every statement of a multi-statement text, so the endpoint must know
where a statement ends without asking the engine. Any difference between this lexer and the
engine's (a comment form it misses, a string it closes too early) is a place to hide a second
statement. This follows ``src/Parsers/Lexer.cpp``: ``'...'`` strings and ``"..."``/backtick
identifiers with backslash escapes and doubled quotes; ``--``, ``//`` and ``# ``/``#!`` line
comments ending at ``\\n`` only; nested ``/* */`` comments; ``$tag$...$tag$`` heredocs (tag of word
characters); ``x'..'``/``b'..'`` literals; numbers with ``_`` separators,
exponents and the tuple-access dot rule. Query parameters ``{name:Type}`` are not special here,
just as in the engine: the type's own string literals are lexed as strings.

Where the engine would report an error token (``\\G``, a lone ``#``, ``!``, an unclosed quote or
comment) or where a character is outside ASCII, ``LexError`` is raised: in doubt, refuse.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import GuardError

__all__ = ["LexError", "Token", "tokens"]


class LexError(GuardError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 62, "SYNTAX_ERROR")


@dataclass(frozen=True)
class Token:
    kind: str  # word, number, string, quoted, heredoc, symbol, semicolon
    text: str
    start: int
    end: int


_WHITESPACE = frozenset(" \t\n\r\f\v")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_ONE_CHAR = frozenset("()[]{},+*%?")
_TWO_CHAR = {"->", "==", "!=", "<=", "<>", ">=", "::", "||", "@@"}
# kinds after which a '.' is a qualifier/tuple access, never the start of a number
_BEFORE_DOT = frozenset({")", "]", "word", "quoted", "number"})


def _is_separator(text: str, i: int, start_of_block: bool, hexadecimal: bool) -> bool:
    """``_`` between digits (``1_000``), as the engine's ``isNumberSeparator``."""
    if text[i] != "_" or start_of_block:
        return False
    if i + 1 >= len(text):
        return False
    return text[i + 1] in (_HEX if hexadecimal else _DIGITS)


def _number_end(text: str, i: int, after_dot: bool) -> tuple[int, str]:
    """End of a number starting at ``i``, and its kind (``1abc`` is a bare word)."""
    n = len(text)
    start = i
    if after_dot:  # x.1.1 is tuple access: only a plain integer here
        i += 1
        while i < n and (text[i] in _DIGITS or _is_separator(text, i, False, False)):
            i += 1
    else:
        block, hexadecimal = False, False
        if i + 2 < n and text[i] == "0" and text[i + 1] in "xXbB":
            valid = text[i + 2] in _HEX if text[i + 1] in "xX" else text[i + 2] in "01"
            hexadecimal = valid and text[i + 1] in "xX"
            if valid:
                i += 2
                block = True
            else:
                i += 1
        else:
            i += 1
        digits = _HEX if hexadecimal else _DIGITS
        while i < n and (text[i] in digits or _is_separator(text, i, block, hexadecimal)):
            i += 1
            block = False
        if i < n and text[i] == ".":
            block = True
            i += 1
            while i < n and (text[i] in digits or _is_separator(text, i, block, hexadecimal)):
                i += 1
                block = False
        if i + 1 < n and text[i] in ("pP" if hexadecimal else "eE"):
            block = True
            i += 1
            if i + 1 < n and text[i] in "+-":
                i += 1
            while i < n and (text[i] in _DIGITS or _is_separator(text, i, block, False)):
                i += 1
                block = False
    if i < n and text[i] in _WORD:  # 1identifier is a bare word
        while i < n and text[i] in _WORD:
            i += 1
        if any(c not in _WORD and c != "$" for c in text[start:i]):
            raise LexError(f"Wrong number at position {start}")
        return i, "word"
    return i, "number"


def _quoted_end(text: str, i: int) -> int:
    quote = text[i]
    n = len(text)
    i += 1
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
    raise LexError(f"Quoted text starting at position {i} is not closed")


def _block_comment_end(text: str, i: int) -> int:
    n = len(text)
    depth = 1
    i += 2
    while i + 2 <= n:
        pair = text[i:i + 2]
        if pair == "/*":
            depth += 1
            i += 2
        elif pair == "*/":
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise LexError("Multiline comment is not closed")


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def tokens(text: str, start: int = 0) -> Iterator[Token]:
    """Yield the significant tokens of ``text`` (whitespace and comments dropped)."""
    i = start
    n = len(text)
    prev = ""  # kind (or bracket) of the previous significant token
    while i < n:
        ch = text[i]
        begin = i
        kind = "symbol"
        if ch in _WHITESPACE:
            i += 1
            continue
        if ch in _DIGITS:
            i, kind = _number_end(text, i, prev == ".")
        elif ch in "'\"`":
            i = _quoted_end(text, i)
            kind = "string" if ch == "'" else "quoted"
        elif ch == ";":
            i += 1
            kind = "semicolon"
        elif ch == ".":
            if i > 0 and (not (i + 1 < n and text[i + 1] in _DIGITS) or prev in _BEFORE_DOT):
                i += 1
            else:
                i += 1
                block = True
                while i < n and (text[i] in _DIGITS or _is_separator(text, i, block, False)):
                    i += 1
                    block = False
                if i + 1 < n and text[i] in "eE":
                    i += 1
                    if i + 1 < n and text[i] in "+-":
                        i += 1
                    block = True
                    while i < n and (text[i] in _DIGITS or _is_separator(text, i, block, False)):
                        i += 1
                        block = False
                kind = "number"
        elif text.startswith("--", i) or text.startswith("//", i):
            i = _line_end(text, i + 2)
            continue
        elif text.startswith("/*", i):
            i = _block_comment_end(text, i)
            continue
        elif ch == "#":
            if i + 1 < n and text[i + 1] in " !":
                i = _line_end(text, i + 1)
                continue
            raise LexError(f"Unrecognized token '#' at position {i}")
        elif text[i:i + 2] in _TWO_CHAR:
            i += 2
        elif ch in _ONE_CHAR or ch in "-/=<>:|@":
            i += 1
        elif ch == "$" and (end := _heredoc_end(text, i)) is not None:
            i = end
            kind = "heredoc"
        elif ch == "$" and (i + 1 == n or text[i + 1] not in _WORD):
            i += 1
        elif i + 2 < n and text[i + 1] == "'" and ch in "xXbB":
            i = _hex_or_bin_end(text, i)
            kind = "string"
        elif ch in _WORD or ch == "$":
            i += 1
            while i < n and (text[i] in _WORD or text[i] == "$"):
                i += 1
            kind = "word"
        else:
            # '\G', a lone '!', non-ASCII outside literals: the engine errors or skips Unicode spaces.
            raise LexError(f"Unrecognized or non-ASCII character {ch!r} outside a literal at position {i}")
        tok = Token(kind, text[begin:i], begin, i)
        prev = tok.text if kind == "symbol" and tok.text in ".)]" else kind
        yield tok


def _heredoc_end(text: str, i: int) -> int | None:
    """End of ``$tag$...$tag$`` starting at ``i``, or None when ``$`` starts no heredoc here.

    The tag is word characters (ClickHouse 26.9, the engine chDB ships). Newer ClickHouse takes
    anything up to the next ``$`` as the tag; where the two readings differ (a non-word character
    before the next ``$`` and that tag closed later) the text is refused rather than guessed.
    """
    close = text.find("$", i + 1)
    if close < 0:
        return None
    tag = text[i:close + 1]
    end = text.find(tag, close + 1)
    if any(c not in _WORD for c in tag[1:-1]):
        if end >= 0:
            raise LexError(f"Ambiguous heredoc tag {tag!r} at position {i} (ClickHouse versions read it differently)")
        return None
    return None if end < 0 else end + len(tag)


def _hex_or_bin_end(text: str, i: int) -> int:
    allowed = _HEX if text[i] in "xX" else frozenset("01")
    j = i + 2
    while j < len(text) and text[j] in allowed:
        j += 1
    if j >= len(text) or text[j] != "'":
        raise LexError(f"Single quoted string starting at position {i} is not closed")
    return j + 1
