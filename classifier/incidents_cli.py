"""``streamtriage incidents``: labelled calls as a table, from the running service or the store itself.

With a running ``streamtriage serve`` the command asks its API (chDB allows one process per data
directory); otherwise it opens the store directly, runs a classification pass first (nothing else
would be labelling), and reads the labels.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

app = typer.Typer()


TOKEN_ENVS = ("STREAMTRIAGE_READ_TOKEN", "STREAMTRIAGE_TOKEN")


def read_token(flag: str | None) -> str | None:
    """The bearer token for reads: ``--token``, else STREAMTRIAGE_READ_TOKEN, else STREAMTRIAGE_TOKEN."""
    return flag or next((os.environ[k] for k in TOKEN_ENVS if os.environ.get(k)), None)


@app.command("incidents")
def incidents(
    since: str = typer.Option("1h", "--since", help="15m, 2h, 7d or an ISO-8601 time."),
    category: str | None = typer.Option(None, "--category", help="Only this category (e.g. incomplete_stream)."),
    service: str | None = typer.Option(None, "--service"),
    model: str | None = typer.Option(None, "--model"),
    limit: int = typer.Option(50, "--limit"),
    url: str | None = typer.Option(None, "--url", envvar="STREAMTRIAGE_URL",
                                   help="A running collector's base URL, e.g. http://127.0.0.1:4318 "
                                        "(env STREAMTRIAGE_URL). Default: the service that owns --store, else "
                                        "the store itself."),
    token: str | None = typer.Option(None, "--token", help="Bearer token for reading the collector's API. "
                                     "Env STREAMTRIAGE_READ_TOKEN, else STREAMTRIAGE_TOKEN."),
    store: str | None = typer.Option(None, "--store", help="chdb://DIR or http(s)://... (default as `serve`)."),
    config: str | None = typer.Option(None, "--config", help="Settings file, as for `serve`."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON instead of a table."),
    threshold: list[str] = typer.Option([], "--threshold", help="When classifying the store directly: "
                                        "name=ms or api:name=ms (e.g. stall_ms=30000); env STREAMTRIAGE_STALL_MS..."),
    kb_dir: str | None = typer.Option(None, "--kb-dir", help="When classifying the store directly: user "
                                      "knowledge-base directory, as for `serve`. Env STREAMTRIAGE_KB_DIR."),
) -> None:
    """Failed calls with their root cause, newest first.

    Reads from the collector at --url, else from the service running on --store's data directory,
    else opens that store (it must exist: nothing is created).
    """
    from streamtriage.classifier.thresholds import Thresholds, check_env_names
    from streamtriage.collector.locate import Location, ServiceError, locate
    from streamtriage.collector.queries import parse_since
    from streamtriage.collector.settings import SettingsError, load_settings, settings_env_names

    try:
        parse_since(since)
        check_env_names(also_known=settings_env_names())
        settings = load_settings(config, store=store, kb_dir=kb_dir)
        thresholds = Thresholds.from_env(flags=threshold)
        from streamtriage.classifier.user_kb import load_with_user

        kb = load_with_user(settings.kb_dir)
    except (ValueError, SettingsError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    token = read_token(token)
    if not url:
        _require_store(settings)
    try:
        if url:
            rows = Location(url=url.rstrip("/"), token=token).incidents(
                since=since, category=category, service=service, model=model, limit=limit)
        else:
            with locate(settings) as where:
                where.token = token or where.token
                if where.store is not None:
                    _classify_direct(where.store, thresholds, kb)
                rows = where.incidents(since=since, category=category, service=service, model=model, limit=limit)
    except ServiceError as exc:
        typer.secho(f"cannot read incidents: {exc}", fg="red", err=True)
        if exc.status == 401:
            typer.secho("hint: the collector requires a token: pass --token or set STREAMTRIAGE_READ_TOKEN "
                        "(or STREAMTRIAGE_TOKEN)", err=True)
        raise typer.Exit(1) from None
    except (RuntimeError, OSError) as exc:
        typer.secho(f"cannot read incidents: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    _table(rows, since)


def _require_store(settings: Any) -> None:
    """An embedded store must already exist: reading incidents never creates a data directory."""
    data_dir = settings.chdb_dir
    if data_dir is not None and not data_dir.is_dir():
        typer.secho(f"no streamtriage data at {data_dir}: pass --store chdb://DIR (where `streamtriage serve` keeps "
                    "its data) or --url http://HOST:4318 for a running collector", fg="red", err=True)
        raise typer.Exit(2)


def _classify_direct(store: Any, thresholds: Any, kb: Any = None) -> None:
    from streamtriage.classifier.service import Classifier

    client = store.open_client()
    try:
        Classifier(client, store.database, thresholds=thresholds, kb=kb).run_once()
    finally:
        client.close()


def _table(rows: list[dict[str, Any]], since: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from .render import fix_rate_text

    table = Table(title=f"incidents since {since} ({len(rows)})")
    for col in ("time", "service", "model", "api", "kb id", "category", "conf", "fix rate (prior/obs)", "calls",
                "evidence"):
        table.add_column(col, overflow="fold")
    table.add_column("trace", no_wrap=True, min_width=32)  # whole: /api/streams/<trace> takes the full id
    for r in rows:  # the API's Incident shape (collector/api_models.py), from the service or the store
        obs = r.get("fix_rate_observed")
        table.add_row(
            str(r.get("timestamp", ""))[:19], r.get("service", ""), r.get("model", ""), r.get("api", ""),
            r.get("kb_id") or "(unclassified)", r.get("category", ""), f"{float(r.get('confidence') or 0):.2f}",
            f"{float(r.get('fix_rate_prior') or 0):.2f} / {fix_rate_text(obs, int(r.get('fix_rate_sample') or 0))}",
            str(r.get("evidence_count", "")), "; ".join((r.get("evidence") or [])[:2]), str(r.get("trace_id", "")))
    Console(width=None if sys.stdout.isatty() else 220).print(table)
