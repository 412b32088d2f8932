"""The lexer against the engine's own parser, on generated texts mixing every lexical context.

The engine is asked through ``formatQuery({q:String})``: the text travels as a bound *value*, so
nothing in it can run, and the engine's parser says whether it holds one statement or more. The
safety property: whenever the engine sees a statement boundary (``Multi-statements are not
allowed``), the endpoint's token layer refuses the text too. And for texts the engine reads as one
valid statement, the token layer finds the same single statement (no false refusals of valid SQL).
"""
from __future__ import annotations

import random

import pytest

from streamtriage.collector.sqlendpoint import GuardError
from streamtriage.collector.sqlendpoint.guard import single_statement

FRAGMENTS = [
    "'a;b'", "'it\\'s;'", "'it''s;'", "'\\\\'", "\"c;d\"", "`e;f`", "`g\\`;`", "$$;$$", "$t$ ; ' $t$", "$a b$;$a b$",
    "$'$;$'$", "/* ; */", "/* /* ; */ ; */", "-- ; '\n", "// ; '\n", "# ; '\n", "#!x ; '\n", "{p:Enum8('}' = 1)}",
    ";", ";", " ", "\n", "\r", "1", "x'3B'", "1e-", "1e--1", ".5", "t.1", "1_000", "0x1F", "--", "'", "\"", "`", "$",
    "$x", "/*", "*/", "//", "#", "'; SELECT 3 -- '", "SELECT 2", "AS s", ",", "(", ")", "{", "}", "\\'", "+", "-",
    "$1$;$1$", "$a$ ; $a$", "$a$$b$", "b'01'", "0b1", "x'", "\\G", "\u00e9", "\uff1b", "\u2028", "!", "!=", "::", "->",
]


def _texts(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    return ["SELECT 1 " + " ".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randint(1, 6))) for _ in range(n)]


def _escaped(text: str) -> str:
    """A bound parameter value is read in the escaped (TSV) format: backslashes and controls escaped."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@pytest.fixture(scope="module")
def parser(engine):
    """A plain read-only chDB connection: one fixed statement per call, so none of the endpoint's
    handle bookkeeping (reconnecting after an error) is needed or measured."""
    import chdb

    conn = chdb.connect(engine.path + "?readonly=1")
    yield conn
    conn.close()


def _engine_verdict(parser, text: str) -> str:
    try:
        out = parser.query("SELECT formatQuery({q:String})", "TSV", params={"q": _escaped(text)}).bytes()
    except Exception as exc:  # chDB's own error type, carrying ClickHouse's message
        return "multi" if "Multi-statements" in str(exc) else "error"
    return "one" if out.strip() else "error"


def _ours(text: str) -> str:
    try:
        single_statement(text)
        return "one"
    except GuardError as exc:
        return "multi" if "Multi-statements" in str(exc) else "error"


@pytest.mark.parametrize("seed", range(8))
def test_token_layer_refuses_every_text_the_engine_splits(parser, seed: int) -> None:
    verdicts: dict[tuple[str, str], int] = {}
    missed, false_refusals = [], []
    for text in _texts(seed, 500):
        engine_says, we_say = _engine_verdict(parser, text), _ours(text)
        verdicts[(engine_says, we_say)] = verdicts.get((engine_says, we_say), 0) + 1
        if engine_says == "multi" and we_say == "one":
            missed.append(text)
        if engine_says == "one" and we_say != "one" and text.isascii():  # non-ASCII: refused on purpose
            false_refusals.append(text)
    assert missed == [], missed[:5]
    assert false_refusals == [], false_refusals[:5]
    split_by_engine = sum(n for (engine_says, _), n in verdicts.items() if engine_says == "multi")
    assert split_by_engine > 5 and verdicts.get(("one", "one"), 0) > 20, verdicts  # the generator reaches both
