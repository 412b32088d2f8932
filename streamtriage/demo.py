"""``streamtriage demo``: from zero to explained failures in one command.

Starts the collector on the embedded chDB store and the fault simulator, runs every scenario of the
catalogue through the real ``openai`` and ``anthropic`` SDKs with the hooks installed (sync and async), has the
classifier label them and prints what each app saw next to the knowledge-base entry that explains
it. The exit code is 0 only when every scenario got its expected label.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer()


@app.command()
def demo(
    data_dir: Path = typer.Option(Path("streamtriage-data"), help="Embedded chDB data directory (kept afterwards)."),
    modes: str = typer.Option("sync,async", help="Comma-separated SDK modes to run: sync, async."),
    scenario: list[str] = typer.Option([], "--scenario", "-s", help="Run only these scenarios (repeatable)."),
    port: int = typer.Option(0, help="Collector port (0 = any free port)."),
    workers: int = typer.Option(4, help="Scenarios run side by side (they mostly wait on stalls and polls)."),
    json_out: Path | None = typer.Option(None, help="Also write every run and its labels to this JSON file."),
    list_only: bool = typer.Option(False, "--list", help="List the scenarios (name and what it does) and exit."),
    wide: bool = typer.Option(False, "--wide", help="One row per run with what the app saw, root cause, fix rate "
                              "and confidence (needs ~200 columns)."),
    as_json: bool = typer.Option(False, "--json", help="Print every run and its labels as JSON on stdout "
                                 "(progress and summary go to stderr)."),
) -> None:
    """Run every fault scenario through the real SDK, the hooks, the collector and the classifier.

    Prints what was found first, then one row per scenario (fits 80 columns); --wide and --json for the rest.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from streamtriage.collector.process import CollectorProcess, free_port
    from streamtriage.demo_report import compact_table, summary_lines, wide_table
    from streamtriage.scenario_suite import (
        SHORT_THRESHOLDS,
        accuracy_report,
        catalogue,
        classify_and_fetch,
        match,
        run_catalogue,
        sdk_versions,
    )

    # The terminal's width (COLUMNS when not a terminal, else 80); with --json stdout holds only the JSON.
    console = Console(stderr=as_json)
    if list_only:
        for sc in catalogue():
            typer.echo(f"{sc.name:<40} {sc.description}")
        return
    wanted_modes = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = sorted(set(scenario) - {s.name for s in catalogue()})
    bad_modes = sorted(set(wanted_modes) - {"sync", "async"})
    if unknown or bad_modes or not wanted_modes:
        typer.secho(f"error: unknown --scenario {', '.join(unknown)}; `streamtriage demo --list` names them"
                    if unknown else f"error: --modes takes sync and/or async, not {modes!r}", fg="red", err=True)
        raise typer.Exit(2)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    svc = CollectorProcess(data_dir=data_dir, port=port or free_port(), store=f"chdb://{data_dir}",
                           env=dict(SHORT_THRESHOLDS))
    console.print(f"[bold]streamtriage demo[/bold]: collector on {svc.url}, store chdb://{data_dir}\n"
                  "(hang and stall thresholds shortened for the simulator's sub-second faults)")
    try:
        svc.start()
    except (RuntimeError, TimeoutError) as err:
        console.print(f"[red]could not start the collector:[/red] {err}")
        raise typer.Exit(2) from err
    try:
        total = (len(scenario) if scenario else len(catalogue())) * len(wanted_modes)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("running scenarios", total=total)

            def advance(run) -> None:  # type: ignore[no-untyped-def]
                progress.update(task, advance=1, description=f"{run.mode:5} {run.name}")

            runs = run_catalogue(svc.url, modes=wanted_modes, names=scenario or None, on_run=advance, workers=workers)
            progress.update(task, description="classifying")
            labels = classify_and_fetch(svc.url)
        verdicts = match(runs, labels)
    finally:
        svc.stop()
    title = f"{len(verdicts)} scenario runs, {sdk_versions(runs)}"
    if as_json:
        typer.echo(json.dumps([v.to_dict() for v in verdicts], indent=1, default=str))
    for line in summary_lines(verdicts):
        console.print(line, highlight=False)
    if not as_json:
        console.print(wide_table(verdicts, title) if wide else compact_table(verdicts, title, console.width))
    report = accuracy_report(verdicts)
    if "mislabelled:" in report:
        console.print(report[report.index("mislabelled:"):], highlight=False)
    short = "\n  ".join(f"export {k}={v}" for k, v in SHORT_THRESHOLDS.items() if k.endswith("_MS"))
    console.print(
        f"\nThe data stays in {data_dir}. Explore it:\n"
        f"  streamtriage incidents --store chdb://{data_dir} --since 1h\n"
        f"  streamtriage serve --store chdb://{data_dir}\n"
        f"    then: curl 'http://127.0.0.1:4318/api/incidents?since=1h'\n"
        f"          curl 'http://127.0.0.1:4318/api/streams/<trace id>'\n"
        f"  streamtriage kb show llm/peer-closed-incomplete-chunked-read\n"
        f"  streamtriage demo --wide     (what each app saw, root cause, fix rate)\n"
        f"  streamtriage demo --json     (every run and its labels)\n"
        f"The demo shortened the hang and stall thresholds to fit its sub-second faults.\n"
        f"By default a polled run is a hang only after 10 minutes (poll_hang_ms=600000:\n"
        f"a run expires then), so a later classification pass with the defaults\n"
        f"withdraws the demo's second-long hangs; to keep them, export first:\n  {short}", highlight=False)
    if json_out is not None:
        json_out.write_text(json.dumps([v.to_dict() for v in verdicts], indent=1, default=str))
    bad = [v for v in verdicts if not v.ok]
    if bad or not verdicts:
        console.print(f"[red]{len(bad)} of {len(verdicts)} runs did not get their expected label[/red]")
        raise typer.Exit(1)
    console.print(f"[green]all {len(verdicts)} runs got their expected label[/green]")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
