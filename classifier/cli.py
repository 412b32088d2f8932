"""``streamtriage kb ...``: read the knowledge base (list, show one entry, export all of it)."""
from __future__ import annotations

import json
import sys

import typer

GROUP = "kb"
app = typer.Typer(help="The failure knowledge base: root causes, fixes, rules.", no_args_is_help=True)


def _kb():
    from streamtriage.classifier.kb import KbError, load_kb

    try:
        return load_kb()
    except KbError as exc:
        typer.secho(f"knowledge base error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


def _check(fmt: str, lang: str | None) -> None:
    if fmt not in ("md", "json"):
        typer.secho(f"--format must be md or json, not {fmt!r}", fg="red", err=True)
        raise typer.Exit(2)
    if lang not in (None, "en", "zh"):
        typer.secho(f"--lang must be en or zh, not {lang!r}", fg="red", err=True)
        raise typer.Exit(2)


@app.command("list")
def list_entries(category: str | None = typer.Option(None, "--category", help="Only this category.")) -> None:
    """Every entry: id, category, status, prior fix rate and confidence, and whether it has a rule."""
    from rich.console import Console
    from rich.table import Table

    kb = _kb()
    table = Table(title=f"streamtriage knowledge base ({len(kb)} entries)")
    for col in ("id", "category", "status", "fix rate", "confidence", "rule", "title"):
        table.add_column(col, overflow="fold")
    for e in sorted(kb, key=lambda e: (e.category, e.id)):
        if category and e.category != category:
            continue
        table.add_row(e.id, e.category, e.status, f"{e.fix_rate:.2f}", f"{e.confidence:.2f}",
                      "yes" if e.rule else "-", e.title)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command("show")
def show(
    kb_id: str = typer.Argument(..., help="Entry id, e.g. llm/peer-closed-incomplete-chunked-read"),
    fmt: str = typer.Option("md", "--format", help="md or json"),
    lang: str = typer.Option("en", "--lang", help="Root cause language: en or zh"),
) -> None:
    """One entry, complete: root cause, fixes with code, what does not help, evidence, rule."""
    from streamtriage.classifier.render import entry_json, entry_markdown

    _check(fmt, lang)
    entry = _kb().get(kb_id)
    if entry is None:
        typer.secho(f"no entry {kb_id!r}; see `streamtriage kb list`", fg="red", err=True)
        raise typer.Exit(1)
    if fmt == "json":
        typer.echo(json.dumps(entry_json(entry, lang), ensure_ascii=False, indent=2))
    else:
        typer.echo(entry_markdown(entry, lang))


@app.command("export")
def export(
    fmt: str = typer.Option("json", "--format", help="json or md"),
    lang: str | None = typer.Option(None, "--lang", help="Markdown language (default en); JSON keeps both unless set"),
) -> None:
    """The whole knowledge base as one JSON or Markdown document on stdout."""
    from streamtriage.classifier.render import kb_json, kb_markdown

    _check(fmt, lang)
    kb = _kb()
    if fmt == "json":
        typer.echo(json.dumps(kb_json(kb, lang), ensure_ascii=False, indent=2))
    else:
        typer.echo(kb_markdown(kb, lang or "en"))
