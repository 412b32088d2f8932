"""``streamtriage simulate``: run the fault simulator in the foreground (no GROUP: a top-level command)."""
from __future__ import annotations

import typer

from .faults import FAULTS

app = typer.Typer(add_completion=False)


@app.command("simulate", epilog="Faults: " + ", ".join(FAULTS) + ".")
def simulate(
    port: int = typer.Option(8787, "--port", "-p", help="TCP port (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind; keep it on loopback."),
) -> None:
    """Run the fault-injecting OpenAI-compatible server.

    Pick a fault per request with the model name: `fault/NAME` or `fault/NAME;k=v;k=v`, e.g.
    `fault/cut;after=3;how=rst` (cut the stream after 3 events with a reset) or
    `fault/stuck;status=queued` (a run or background response that never finishes). Any other
    model is a healthy answer. The header `x-streamtriage-fault: NAME;k=v` does the same. An
    assistant created with a fault model passes it on to its runs.

    Faults and their parameters: GET /_sim/faults (or simulator/README.md). Endpoints: chat
    completions, responses (+ background), assistants, threads, messages, runs, files, vector stores.
    """
    import asyncio

    from .server import serve

    def ready(server: object) -> None:
        typer.echo(f"streamtriage simulator on http://{host}:{server.port}/v1  "
                   f"(faults: GET /_sim/faults, request log: GET /_sim/log)", err=True)

    try:
        asyncio.run(serve(host, port, ready))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc}", err=True)
        raise typer.Exit(1) from None
