"""``streamtriage kb ...``: read the knowledge base (list, show one entry, export all of it) and test rules.

Every command takes ``--kb-dir`` (else ``STREAMTRIAGE_KB_DIR``, else ``kb_dir`` in the settings file): a
user knowledge-base directory whose entries extend or override the shipped ones (``user_kb``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

GROUP = "kb"
app = typer.Typer(help="The failure knowledge base: root causes, fixes, rules.", no_args_is_help=True)


KB_DIR_HELP = "User knowledge-base directory (extends/overrides shipped entries). Env STREAMTRIAGE_KB_DIR."


def kb_dir_setting(flag: str | None) -> str | None:
    """``--kb-dir``, else the environment, else the settings file (as ``serve`` resolves it)."""
    from streamtriage.collector.settings import SettingsError, load_settings

    try:
        return load_settings(kb_dir=flag).kb_dir
    except SettingsError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None


def _kb(kb_dir: str | None = None):
    from streamtriage.classifier.kb import KbError
    from streamtriage.classifier.user_kb import load_with_user

    try:
        return load_with_user(kb_dir_setting(kb_dir))
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
def list_entries(category: str | None = typer.Option(None, "--category", help="Only this category."),
                 kb_dir: str | None = typer.Option(None, "--kb-dir", help=KB_DIR_HELP)) -> None:
    """Every entry: id, category, status, prior fix rate and confidence, and whether it has a rule."""
    from rich.console import Console
    from rich.table import Table

    kb = _kb(kb_dir)
    table = Table(title=f"streamtriage knowledge base ({len(kb)} entries)")
    from streamtriage.classifier.user_kb import overridden

    replaced = set(overridden(kb))
    for col in ("id", "category", "status", "fix rate", "confidence", "rule", "title", "from"):
        table.add_column(col, overflow="fold")
    for e in sorted(kb, key=lambda e: (e.category, e.id)):
        if category and e.category != category:
            continue
        origin = "shipped" if e.source == Path(e.source).name else ("yours (overrides)" if e.id in replaced else "yours")
        table.add_row(e.id, e.category, e.status, f"{e.fix_rate:.2f}", f"{e.confidence:.2f}",
                      "yes" if e.rule else "-", e.title, origin)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command("show")
def show(
    kb_id: str = typer.Argument(..., help="Entry id, e.g. llm/peer-closed-incomplete-chunked-read"),
    fmt: str = typer.Option("md", "--format", help="md or json"),
    lang: str = typer.Option("en", "--lang", help="Language of title, root cause and fixes: en or zh"),
    kb_dir: str | None = typer.Option(None, "--kb-dir", help=KB_DIR_HELP),
) -> None:
    """One entry, complete: root cause, fixes with code, what does not help, evidence, rule."""
    from streamtriage.classifier.render import entry_json, entry_markdown

    _check(fmt, lang)
    entry = _kb(kb_dir).get(kb_id)
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
    kb_dir: str | None = typer.Option(None, "--kb-dir", help=KB_DIR_HELP),
) -> None:
    """The whole knowledge base as one JSON or Markdown document on stdout."""
    from streamtriage.classifier.render import kb_json, kb_markdown

    _check(fmt, lang)
    kb = _kb(kb_dir)
    if fmt == "json":
        typer.echo(json.dumps(kb_json(kb, lang), ensure_ascii=False, indent=2))
    else:
        typer.echo(kb_markdown(kb, lang or "en"))


@app.command("test")
def test(
    path: Path | None = typer.Argument(None, help="Fixture file or folder, user KB directory or file, or a "
                                       "/api/streams/<id> export (JSON). Default: every fixture."),
    kb_dir: str | None = typer.Option(None, "--kb-dir", help=KB_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Results as JSON."),
    now_ns: int | None = typer.Option(None, "--now-ns", help="Clock for open calls in an export (default: now)."),
    threshold: list[str] = typer.Option([], "--threshold", help="name=ms or api:name=ms, as for `serve`."),
) -> None:
    """Run fixtures against the rules, or explain a saved stream: which rule matched, and why not the others."""
    from streamtriage.classifier.kb import KbError
    from streamtriage.classifier.kb_test_cli import kb_test

    try:
        code = kb_test(path, kb_dir_setting(kb_dir), as_json, now_ns, threshold)
    except (KbError, ValueError) as exc:
        typer.secho(f"kb test: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)
