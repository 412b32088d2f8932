"""``streamtriage demo``: from zero to explained failures in one command.

Starts the collector on the embedded chDB store and the fault simulator, runs every scenario of the
catalogue through the real ``openai`` SDK with the hooks installed (sync and async), has the
classifier label them and prints what each app saw next to the knowledge-base entry that explains
it. The exit code is 0 only when every scenario got its expected label.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer()


def _fmt_rate(value: object) -> str:
    return "-" if value is None else f"{float(value):.0%}"  # type: ignore[arg-type]


def _table(verdicts: list, title: str):  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title=title, show_lines=False, expand=True)
    table.add_column("scenario", no_wrap=True, min_width=28)
    table.add_column("mode", ratio=1)
    table.add_column("what the app saw", overflow="fold", ratio=4)
    table.add_column("knowledge-base id", no_wrap=True, min_width=44)
    table.add_column("category", ratio=2)
    table.add_column("root cause", overflow="fold", ratio=6)
    table.add_column("fix rate", justify="right", ratio=1)
    table.add_column("conf.", justify="right", ratio=1)
    table.add_column("", ratio=1)
    for v in verdicts:
        best = v.best
        if best is None:
            kb, cat, cause, fix, conf = "-", "healthy" if v.expected is None else "(none)", "", "-", "-"
        else:
            kb, cat = best.get("KbId") or "(unclassified)", best.get("Category") or "-"
            cause = str(best.get("RootCause") or "")
            cause = cause if len(cause) <= 140 else cause[:137] + "..."
            fix, conf = _fmt_rate(best.get("FixRatePrior")), f"{float(best.get('Confidence') or 0):.2f}"
        mark = "[green]ok[/green]" if v.ok else f"[red]expected {v.expected[0] if v.expected else 'none'}[/red]"
        table.add_row(v.run.name, v.run.mode, v.run.app_saw, kb, cat, cause, fix, conf, mark)
    return table


@app.command()
def demo(
    data_dir: Path = typer.Option(Path("streamtriage-data"), help="Embedded chDB data directory (kept afterwards)."),
    modes: str = typer.Option("sync,async", help="Comma-separated SDK modes to run: sync, async."),
    scenario: list[str] = typer.Option([], "--scenario", "-s", help="Run only these scenarios (repeatable)."),
    port: int = typer.Option(0, help="Collector port (0 = any free port)."),
    workers: int = typer.Option(4, help="Scenarios run side by side (they mostly wait on stalls and polls)."),
    json_out: Path | None = typer.Option(None, help="Also write every run and its labels to this JSON file."),
) -> None:
    """Run every fault scenario through the real SDK, the hooks, the collector and the classifier."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from streamtriage.collector.process import CollectorProcess, free_port
    from streamtriage.scenario_suite import (
        SHORT_THRESHOLDS,
        accuracy_report,
        catalogue,
        classify_and_fetch,
        match,
        run_catalogue,
    )

    console = Console(width=None if sys.stdout.isatty() else 200)
    wanted_modes = [m.strip() for m in modes.split(",") if m.strip()]
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    svc = CollectorProcess(data_dir=data_dir, port=port or free_port(), store=f"chdb://{data_dir}",
                           env=dict(SHORT_THRESHOLDS))
    console.print(f"[bold]streamtriage demo[/bold]: collector on {svc.url} (store chdb://{data_dir}), "
                  f"thresholds shortened for the simulator's sub-second faults")
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
    console.print(_table(verdicts, f"{len(verdicts)} scenario runs, openai {runs[0].sdk if runs else '?'}"))
    report = accuracy_report(verdicts)
    console.print(report.split("\n\n")[0])
    if "mislabelled:" in report:
        console.print(report[report.index("mislabelled:"):])
    short = " ".join(f"{k}={v}" for k, v in SHORT_THRESHOLDS.items() if k.endswith("_MS"))
    console.print(
        f"\nThe data stays in {data_dir}. Explore it:\n"
        f"  streamtriage incidents --store chdb://{data_dir} --since 1h   (opens the store when no collector runs)\n"
        f"  streamtriage serve --store chdb://{data_dir}     (then, in another shell:)\n"
        f"  curl 'http://127.0.0.1:4318/api/incidents?since=1h'   and  /api/streams/<trace id>\n"
        f"  streamtriage kb show llm/peer-closed-incomplete-chunked-read\n"
        f"The demo shortened the hang and stall thresholds to fit its sub-second faults. A later classification\n"
        f"pass with the defaults (a run expires after 10 minutes) withdraws its second-long hangs; to keep them,\n"
        f"export the same values first: {short}")
    if json_out is not None:
        json_out.write_text(json.dumps([v.to_dict() for v in verdicts], indent=1, default=str))
    bad = [v for v in verdicts if not v.ok]
    if bad or not verdicts:
        console.print(f"[red]{len(bad)} of {len(verdicts)} runs did not get their expected label[/red]")
        raise typer.Exit(1)
    console.print(f"[green]all {len(verdicts)} runs got their expected label[/green]")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
