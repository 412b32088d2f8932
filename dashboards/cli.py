"""``streamtriage dashboards ...``: write and check the Grafana provisioning tree."""
from __future__ import annotations

from pathlib import Path

import typer

GROUP = "dashboards"
app = typer.Typer(help="Grafana dashboards, alert rules and their provisioning files.", no_args_is_help=True,
                  add_completion=False)


def _require_yaml() -> None:
    """The provisioning files are YAML; PyYAML comes with the collector extra, not the light hook install."""
    try:
        import yaml  # noqa: F401
    except ImportError as exc:
        typer.echo("error: writing Grafana provisioning needs PyYAML: pip install 'streamtriage[collector]'", err=True)
        raise typer.Exit(2) from exc


@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", help="Directory to write the provisioning tree into."),
    datasource_url: str | None = typer.Option(
        None, "--datasource-url", help="ClickHouse Grafana reads: http(s)://\\[user@]host:port\\[/db] or "
        "clickhouse(s)://host:9000. Default: STREAMTRIAGE_STORE when it is a server, else http://localhost:8123."),
    database: str | None = typer.Option(None, "--database", help="Database holding otel_traces "
                                           "(default: the URL path, else STREAMTRIAGE_DATABASE, else 'default')."),
    username: str | None = typer.Option(None, "--username", help="ClickHouse user (default: from the URL, "
                                           "else 'default'). The password is read by Grafana from "
                                           "$STREAMTRIAGE_CLICKHOUSE_PASSWORD."),
    clickhouse_endpoint: str | None = typer.Option(
        None, "--clickhouse-endpoint", help="Point the data source at the collector's read-only ClickHouse "
        "endpoint (`serve --clickhouse-port`), e.g. http://collector-host:8123, instead of a ClickHouse server "
        "(for the embedded chDB store). Grafana's password is then read from $STREAMTRIAGE_READ_TOKEN."),
    collector_url: str = typer.Option("http://localhost:4318", "--collector-url",
                                      help="Collector base URL for KB links and alert runbooks."),
    webhook_url: str | None = typer.Option(None, "--alert-webhook-url", help="URL for the example webhook "
                                              "contact point."),
    provisioning_path: str | None = typer.Option(None, "--grafana-provisioning-path",
                                                    help="Where Grafana will see this tree (default "
                                                    "/etc/grafana/provisioning)."),
    notification_policy: bool = typer.Option(False, "--notification-policy", help="Also write an example "
                                             "notification policy. Grafana's provisioned policy REPLACES the "
                                             "organisation's whole policy tree; off by default."),
    hang_after_s: int | None = typer.Option(None, "--hang-after-s", help="Default of the dashboards' 'Hang after "
                                            "(s)' variable. Default: the collector's poll_hang_ms for "
                                            "assistants.runs (STREAMTRIAGE_POLL_HANG_MS, --threshold) / 1000."),
    threshold: list[str] = typer.Option([], "--threshold", help="As for `serve`: name=ms or api:name=ms; "
                                        "poll_hang_ms sets the 'hang after' default."),
) -> None:
    """Write datasources/, dashboards/ and alerting/ for Grafana, then check the result."""
    import os

    _require_yaml()

    from .checks import check_tree
    from .datasource import DatasourceError, DatasourceSettings, default_url
    from .export import DEFAULT_PROVISIONING_PATH, DEFAULT_WEBHOOK_URL, ExportOptions, export_tree

    try:
        if clickhouse_endpoint and datasource_url:
            raise DatasourceError("give either --datasource-url or --clickhouse-endpoint, not both")
        if clickhouse_endpoint:
            from .collector_endpoint import endpoint_datasource

            ds = endpoint_datasource(clickhouse_endpoint, database=database or os.environ.get("STREAMTRIAGE_DATABASE"),
                                     username=username)
        else:
            ds = DatasourceSettings.from_url(datasource_url or default_url(),
                                             database=database or os.environ.get("STREAMTRIAGE_DATABASE"),
                                             username=username)
    except DatasourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        hang_after_s = hang_after_s if hang_after_s is not None else _collector_hang_after_s(threshold)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if hang_after_s <= 0:
        typer.echo(f"error: --hang-after-s must be positive, got {hang_after_s}", err=True)
        raise typer.Exit(2)
    options = ExportOptions(datasource=ds, collector_url=collector_url, webhook_url=webhook_url or DEFAULT_WEBHOOK_URL,
                            provisioning_path=provisioning_path or DEFAULT_PROVISIONING_PATH,
                            notification_policy=notification_policy, hang_after_s=hang_after_s)
    written = export_tree(out, options)
    if ds.had_password:
        typer.echo(f"note: the password in the URL was not written; Grafana reads it from "
                   f"${ds.password_env}", err=True)
    problems = check_tree(out)
    for p in problems:
        typer.echo(f"problem: {p}", err=True)
    typer.echo(f"wrote {len(written)} files to {out} (ClickHouse {ds.protocol}://{ds.host}:{ds.port}/{ds.database})")
    if problems:
        raise typer.Exit(1)


def _collector_hang_after_s(flags: list[str]) -> int:
    """The collector's poll-hang threshold for runs, in seconds, from the same settings ``serve`` reads."""
    from streamtriage.classifier.thresholds import Thresholds
    from streamtriage.collector.settings import load_settings

    settings_flags = load_settings().thresholds
    th = Thresholds.from_env(flags=[*settings_flags, *flags])
    return max(1, round(th.get("poll_hang_ms", "assistants.runs") / 1000))


@app.command("check")
def check(tree: Path = typer.Argument(..., help="A provisioning directory written by export.")) -> None:
    """Run the structural checks on a provisioning tree."""
    _require_yaml()
    from .checks import check_tree

    problems = check_tree(tree)
    for p in problems:
        typer.echo(f"problem: {p}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{tree}: ok")


@app.command("prometheus-rules")
def prometheus_rules(out: Path = typer.Option(..., "--out", help="File to write the Prometheus rules to.")) -> None:
    """Write the Prometheus alerting rules over the collector's /metrics."""
    from .prometheus import render_rules_yaml

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_rules_yaml(), encoding="utf-8")
    typer.echo(f"wrote {out}")
