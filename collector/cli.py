"""``streamtriage serve``: run the collector (OTLP/HTTP ingest + read API)."""
from __future__ import annotations

import logging
import sys

import typer

app = typer.Typer(add_completion=False)


@app.command()
def serve(
    store: str | None = typer.Option(None, "--store", help="chdb://DIR (default ./streamtriage-data) or "
                                        "http(s)://user:pass@host:8123/db. Env STREAMTRIAGE_STORE."),
    host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default 4318, the OTLP/HTTP port)."),
    token: str | None = typer.Option(None, "--token", help="Ingest token: /v1/traces requires "
                                        "Authorization: Bearer TOKEN. Env STREAMTRIAGE_TOKEN."),
    read_token: str | None = typer.Option(None, "--read-token", help="Read token for /api/* and the SQL "
                                             "endpoint (the ingest token is then refused there). "
                                             "Env STREAMTRIAGE_READ_TOKEN."),
    allow_unauthenticated: bool | None = typer.Option(None, "--allow-unauthenticated", help="Listen on a "
                                                         "non-loopback --host without tokens (trusted networks "
                                                         "only). Env STREAMTRIAGE_ALLOW_UNAUTHENTICATED."),
    config: str | None = typer.Option(None, "--config", help="YAML/TOML/JSON settings file. Env STREAMTRIAGE_CONFIG."),
    durability: str | None = typer.Option(None, "--durability", help="insert (default) or wal."),
    clickhouse_port: int | None = typer.Option(None, "--clickhouse-port", help="Also serve a read-only "
                                                  "ClickHouse HTTP endpoint on the store (for Grafana), "
                                                  "e.g. 8123. Env STREAMTRIAGE_CLICKHOUSE_PORT."),
    threshold: list[str] = typer.Option([], "--threshold", help="Classifier threshold, repeatable: name=ms or "
                                        "api:name=ms (e.g. stall_ms=30000, assistants.runs:poll_hang_ms=600000); "
                                        "env STREAMTRIAGE_STALL_MS, STREAMTRIAGE_STALL_MS__ASSISTANTS_RUNS..."),
    kb_dir: str | None = typer.Option(None, "--kb-dir", help="User knowledge-base directory: entries that extend "
                                      "or override the shipped ones by id. Env STREAMTRIAGE_KB_DIR."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Receive OTLP/HTTP traces on /v1/traces and store them in ClickHouse (or embedded chDB)."""
    import uvicorn

    from streamtriage.classifier.thresholds import Thresholds, check_env_names

    from .app import create_app, describe
    from .ports import PortInUse, bind_port, check_port_free
    from .service_lock import DirectoryLocked
    from .settings import SettingsError, load_settings, settings_env_names
    from .store import StoreError

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        check_env_names(also_known=settings_env_names())  # a misspelt variable is refused, not ignored
        settings = load_settings(config, store=store, host=host, port=port, token=token, read_token=read_token,
                                 allow_unauthenticated=allow_unauthenticated, durability=durability,
                                 clickhouse_port=clickhouse_port, thresholds=tuple(threshold) or None,
                                 kb_dir=kb_dir)
        Thresholds.from_env(flags=settings.thresholds)  # a bad threshold is a start-up error, not a silent default
        from streamtriage.classifier.user_kb import describe_kb

        kb_lines = describe_kb(settings.kb_dir)  # so is a broken user knowledge-base entry (KbError)
    except (SettingsError, OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    # Ports first: a service that cannot listen must not create or migrate its data directory.
    try:
        if settings.clickhouse_port:
            check_port_free(settings.host, settings.clickhouse_port, "--clickhouse-port / STREAMTRIAGE_CLICKHOUSE_PORT")
        sock = bind_port(settings.host, settings.port, "--port / STREAMTRIAGE_PORT")
    except PortInUse as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.port == 0:  # the port the kernel picked is the one to publish and print
        settings = settings.replace(port=int(sock.getsockname()[1]))
    from .service_lock import holder

    owner = holder(settings.state_path)
    if owner is not None:
        sock.close()
        typer.echo(f"error: {DirectoryLocked(settings.state_path, owner)}", err=True)
        raise typer.Exit(3)
    for line in [*describe(settings), *kb_lines]:
        typer.echo(line, err=True)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                                           log_level=log_level, access_log=False, lifespan="on"))
    try:
        server.run(sockets=[sock])
    except (DirectoryLocked, StoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from exc
    if not server.started:
        sys.exit(3)
