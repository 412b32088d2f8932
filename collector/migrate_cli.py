"""``streamtriage migrate --print``: show the schema DDL the collector applies, for one node or a cluster.

Operators of a ClickHouse cluster review (or apply by hand) the exact statements before pointing a
collector at it; the collector itself applies the same ones at start (``--cluster`` / ``STREAMTRIAGE_CLUSTER``).
"""
from __future__ import annotations

import typer

app = typer.Typer(add_completion=False)


@app.command("migrate")
def migrate(
    print_ddl: bool = typer.Option(False, "--print", help="Print the DDL instead of applying it (the only mode)."),
    cluster: str | None = typer.Option(None, "--cluster", help="Render for this ClickHouse cluster: ON CLUSTER, "
                                       "Replicated*MergeTree <table>_local tables and Distributed tables."),
    database: str = typer.Option("otel", "--database", help="Database the tables live in."),
    ttl_days: int = typer.Option(30, "--ttl-days", help="Span retention (days)."),
    label_ttl_days: int = typer.Option(90, "--label-ttl-days", help="Label retention (days)."),
) -> None:
    """Print the numbered schema migrations as SQL (apply them with `streamtriage serve`)."""
    from .migrate import render_migrations
    from .settings import Settings, SettingsError

    if not print_ddl:
        typer.echo("migrate: only --print is supported; `streamtriage serve` applies migrations at start", err=True)
        raise typer.Exit(2)
    try:  # the same validation the collector applies to these values
        Settings(store="http://localhost:8123", database=database, cluster=cluster,
                 ttl_days=ttl_days, label_ttl_days=label_ttl_days)
    except SettingsError as exc:
        typer.echo(f"migrate: {exc}", err=True)
        raise typer.Exit(2) from None
    for mig, stmts in render_migrations(database, ttl_days, label_ttl_days, cluster):
        typer.echo(f"-- {mig.name} (checksum {mig.checksum})")
        for stmt in stmts:
            typer.echo(stmt.rstrip() + ";\n")
