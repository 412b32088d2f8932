"""``streamtriage simulate``: run the fault simulator in the foreground (no GROUP: a top-level command)."""
from __future__ import annotations

import typer

app = typer.Typer(add_completion=False)


@app.command("simulate")
def simulate(
    port: int = typer.Option(8787, "--port", "-p", help="TCP port (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind; keep it on loopback."),
) -> None:
    """Run the fault-injecting OpenAI-compatible server (select faults with model `fault/NAME`)."""
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
