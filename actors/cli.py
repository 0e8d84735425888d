"""The ``actors`` command line."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from actors.errors import ActorsError
from actors.log import configure_logging
from actors.runner import (
    WorkerOptions,
    load_app,
    run_processes,
    run_worker,
    start_embedded,
)
from actors.server import EmbeddedServer
from schedulers.cli import beat as beat_command
from schedulers.cli import schedule_cli

cli = typer.Typer(help="actors: distributed tasks on NATS JetStream.", no_args_is_help=True)
cli.command("beat")(beat_command)
cli.add_typer(schedule_cli, name="schedule")


@cli.command()
def run(
    app: Annotated[str, typer.Argument(help="The app to serve, as MODULE:ATTRIBUTE.")],
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="Tasks in flight per process.")
    ] = None,
    processes: Annotated[int, typer.Option("--processes", "-p", help="Worker processes.")] = 1,
    actors: Annotated[
        str | None, typer.Option("--actors", help="Comma-separated task names to serve.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: Annotated[
        str | None, typer.Option(help="console or json (default: console on a TTY).")
    ] = None,
    beat: Annotated[
        bool, typer.Option(help="Also run beat (periodic tasks) in the worker.")
    ] = False,
) -> None:
    """Run a worker. Starts a local nats-server when none is configured or reachable."""
    configure_logging(log_level, log_format)
    try:
        loaded = load_app(app)
        server = start_embedded(loaded)
    except ActorsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    options = WorkerOptions(
        app_path=app,
        actors=tuple(a.strip() for a in (actors or "").split(",") if a.strip()),
        concurrency=concurrency,
        log_level=log_level,
        log_format=log_format,
        nats_url=server.url if server else None,
        companions=("schedulers.beat:serve",) if beat else (),
    )
    try:
        for name in options.actors:
            loaded.get_actor(name)
        code = run_worker(options) if processes <= 1 else run_processes(options, processes)
    except ActorsError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 2
    finally:
        if server is not None:
            server.stop()
    raise typer.Exit(code)


@cli.command()
def server(
    port: Annotated[int, typer.Option(help="Client port on 127.0.0.1.")] = 4222,
    store_dir: Annotated[Path, typer.Option(help="JetStream storage.")] = Path(".actors/nats"),
) -> None:
    """Run a local nats-server with JetStream in the foreground, for workers and clients."""
    configure_logging("info")
    embedded = EmbeddedServer(store_dir, port=port)
    try:
        embedded.start()
    except ActorsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"nats-server listening on {embedded.url} (data in {store_dir}); Ctrl-C stops it")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5) and embedded.running():
        pass
    embedded.stop()


def main() -> None:
    """Entry point of the ``actors`` script."""
    cli()
