"""The ``streamtriage`` command line.

Each component owns a ``cli.py`` exposing a typer app; this module only assembles them, so
adding a component is one line in ``_GROUPS``. Component CLIs import heavy dependencies
(chDB, FastAPI) inside their commands so ``streamtriage --help`` stays fast.
"""
from __future__ import annotations

import importlib

import typer

from streamtriage import __version__

app = typer.Typer(
    name="streamtriage",
    help="Find out why LLM streaming calls fail.",
    no_args_is_help=True,
    add_completion=False,
)

# Each listed module exposes ``app`` (a typer.Typer) and optionally ``GROUP``: with a GROUP name its
# commands become ``streamtriage GROUP ...``; without one they are merged at the top level.
_GROUPS: list[str] = [
    "streamtriage.simulator.cli",
    "streamtriage.collector.cli",
    "streamtriage.collector.migrate_cli",
    "streamtriage.dashboards.cli",
    "streamtriage.classifier.cli",
    "streamtriage.classifier.incidents_cli",
    "streamtriage.classifier.feedback_cli",
    "streamtriage.demo",
]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"streamtriage {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Find out why LLM streaming calls fail."""


def _register() -> None:
    for module_name in _GROUPS:
        module = importlib.import_module(module_name)
        group = getattr(module, "GROUP", None)
        sub: typer.Typer = module.app
        if group:
            app.add_typer(sub, name=group)
        else:
            app.registered_commands.extend(sub.registered_commands)
            app.registered_groups.extend(sub.registered_groups)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
