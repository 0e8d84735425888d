"""The ``actors`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from actors.cli import monitor
from actors.cli.beat import beat as beat_command
from actors.cli.beat import schedule_cli
from actors.cli.loading import open_app
from actors.cli.output import fail, print_table
from actors.cli.processes import WorkerOptions, run_processes, run_worker
from actors.cli.remote import control_cli, inspect_cli
from actors.client.control import Control
from actors.client.workers import live_workers
from actors.config import Settings
from actors.errors import ActorsError
from actors.log import configure_logging
from actors.nats import migration
from actors.nats.broker import Broker
from actors.nats.server import EmbeddedServer
from actors.worker import dead_letters

# Never print local variables in a traceback: settings and URLs may hold passwords.
cli = typer.Typer(
    help="actors: distributed tasks on NATS JetStream.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
cli.command("beat")(beat_command)
cli.add_typer(schedule_cli, name="schedule")
cli.add_typer(inspect_cli, name="inspect")
cli.add_typer(control_cli, name="control")
dead = typer.Typer(
    help="Inspect and replay dead letters (ACTORS_DEAD).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
cli.add_typer(dead, name="dead")
T = TypeVar("T")
NatsUrl = Annotated[
    str | None, typer.Option("--nats-url", help="NATS URL(s) (default: $ACTORS_NATS_URL).")
]


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
    events: Annotated[
        bool | None,
        typer.Option(
            "--events/--no-events",
            "-E",
            help="Publish task and worker events (default: the `events` setting).",
        ),
    ] = None,
) -> None:
    """Run a worker. Starts a local nats-server when none is configured or reachable."""
    configure_logging(log_level, log_format)
    if events is not None:  # through the environment, so that every worker process sees it
        os.environ["ACTORS_EVENTS"] = "1" if events else "0"
    try:
        loaded, server = open_app(app)
    except ActorsError as exc:
        fail(exc)
    if events is not None:
        loaded.conf.events = events
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
        fail(exc)
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
        fail(exc)
    typer.echo(f"nats-server listening on {embedded.url} (data in {store_dir}); Ctrl-C stops it")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5) and embedded.running():
        pass
    embedded.stop()


def _with_broker(
    url: str | None, action: Callable[[Broker], Awaitable[T]], topology: bool = True
) -> T:
    configure_logging("error")

    async def run() -> T:
        settings = Settings.build({"nats_url": url} if url else {})
        broker = await Broker.connect(settings, "actors-cli")
        try:
            if topology:
                await broker.streams.ensure_topology()
            return await action(broker)
        finally:
            await broker.close()

    try:
        return asyncio.run(run())
    except ActorsError as exc:
        fail(exc)


@cli.command()
def revoke(
    task_ids: Annotated[list[str], typer.Argument(help="Task id(s) to revoke.")],
    terminate: Annotated[bool, typer.Option(help="Also stop them where they run.")] = False,
    nats_url: NatsUrl = None,
) -> None:
    """Revoke tasks: workers skip them (state REVOKED); --terminate stops running ones."""

    async def action(broker: Broker) -> None:
        await Control.store_revocations(broker, task_ids, terminate)

    _with_broker(nats_url, action)
    typer.echo(f"revoked {len(task_ids)} task(s)" + (" (terminate)" if terminate else ""))


@cli.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    nats_url: NatsUrl = None,
) -> None:
    """Live workers, one line each (from the actors_workers registry). Exit 1: none."""
    records = _with_broker(nats_url, live_workers, topology=False)
    if not records and not as_json:
        fail("no live workers", 1)
    monitor.print_workers(records, as_json)
    if not records:
        raise typer.Exit(1)


@cli.command()
def events(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Replay stored events from then: 10m, 2h, 1d or an RFC 3339 time."),
    ] = None,
    follow: Annotated[
        bool, typer.Option(help="Keep printing new events (--no-follow: stop at the last).")
    ] = True,
    nats_url: NatsUrl = None,
) -> None:
    """Task and worker events (ACTORS_EVENTS), oldest first; Ctrl-C stops."""
    try:
        start = monitor.parse_since(since) if since else None
    except ActorsError as exc:
        fail(exc)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a live tail: not an error
        _with_broker(nats_url, lambda b: monitor.tail(b, start, as_json, follow), topology=False)


@cli.command()
def migrate(nats_url: NatsUrl = None) -> None:
    """Move the task stream of an older actors to the current streams. Stop workers first."""
    moved = _with_broker(nats_url, migration.migrate, topology=False)
    typer.echo(f"streams are current; moved {moved} message(s)")


@dead.command("list")
def dead_list(
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 100,
    nats_url: NatsUrl = None,
) -> None:
    """One line per dead letter: SEQ, time, task, task id, reason."""
    letters = _with_broker(nats_url, lambda b: dead_letters.list_dead(b, limit))
    if not letters:
        typer.echo("no dead letters")
        return
    print_table(
        ("SEQ", "TIME", "TASK", "TASK ID", "REASON"),
        (
            (
                str(letter.seq),
                letter.time.isoformat(timespec="seconds"),
                letter.task or "-",
                letter.task_id or "-",
                letter.reason,
            )
            for letter in letters
        ),
    )


@dead.command("show")
def dead_show(
    seq: Annotated[int, typer.Argument(help="Sequence number from `actors dead list`.")],
    nats_url: NatsUrl = None,
) -> None:
    """Headers and body of one dead letter."""
    letter = _with_broker(nats_url, lambda b: dead_letters.get_dead(b, seq))
    if letter is None:
        fail(f"no dead letter {seq}", 1)
    typer.echo(f"seq: {letter.seq}\ntime: {letter.time.isoformat()}\ntask: {letter.task}")
    typer.echo(f"task id: {letter.task_id}\nsubject: {letter.subject}\nreason: {letter.reason}")
    for key, value in sorted(letter.headers.items()):
        typer.echo(f"header {key}: {value}")
    typer.echo(f"body: {dead_letters.describe_body(letter)}")


@dead.command("replay")
def dead_replay(
    seq: Annotated[int | None, typer.Argument(help="Sequence number to replay.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
    nats_url: NatsUrl = None,
) -> None:
    """Publish dead letters again to their task subjects, and remove them."""
    if (seq is None) == (not all_):
        fail("give a sequence number or --all (not both)")
    count = _with_broker(nats_url, lambda b: dead_letters.replay_many(b, seq))
    if seq is not None and count == 0:
        fail(f"no dead letter {seq}", 1)
    typer.echo(f"replayed {count} message(s)")


@dead.command("purge")
def dead_purge(nats_url: NatsUrl = None) -> None:
    """Delete every dead letter."""
    count = _with_broker(nats_url, dead_letters.purge)
    typer.echo(f"purged {count} dead letter(s)")


def main() -> None:
    """Entry point of the ``actors`` script."""
    cli()
