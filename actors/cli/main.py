"""The ``actors`` command line."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated

import typer

from actors.cli import monitor, ops
from actors.cli.beat import beat as beat_command
from actors.cli.beat import schedule_cli
from actors.cli.connect import connection_options, with_broker
from actors.cli.dashboard import monitor_command
from actors.cli.exporter import exporter
from actors.cli.loading import open_app
from actors.cli.output import fail, print_table
from actors.cli.processes import WorkerOptions, run_processes, run_worker
from actors.cli.remote import control_cli, inspect_cli
from actors.cli.run_checks import (
    LogFormat,
    LogLevel,
    check_metrics_installed,
    check_recycling,
    check_run_options,
)
from actors.client.control import Control
from actors.client.workers import live_workers
from actors.errors import ActorsError
from actors.log import configure_logging
from actors.nats import migration, queues
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.nats.server import EmbeddedServer
from actors.wire import topology
from actors.wire.record import ResultRecord
from actors.worker import dead_letters
from actors.worker.queues import parse_queues

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
ops.register(cli)
cli.command("exporter")(exporter)
cli.command("monitor")(monitor_command)


def _print_version(show: bool) -> None:
    if show:
        typer.echo(f"actors {package_version('actors')}")
        raise typer.Exit()


@cli.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """actors: distributed tasks on NATS JetStream."""


@cli.command()
@connection_options
def run(
    app: Annotated[str, typer.Argument(help="The app to serve, as MODULE:ATTRIBUTE.")],
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="Tasks in flight per process.")
    ] = None,
    processes: Annotated[int, typer.Option("--processes", "-p", help="Worker processes.")] = 1,
    actors: Annotated[
        str | None, typer.Option("--actors", help="Comma-separated task names to serve.")
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-Q",
            help="Queues to serve, comma-separated, each with its own concurrency if given "
            "(reports:4,mail:32); default: the default queue.",
        ),
    ] = None,
    log_level: LogLevel = "info",
    log_format: LogFormat = None,
    beat: Annotated[
        bool, typer.Option(help="Also run beat (periodic tasks) in the worker.")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus /metrics here (needs the metrics extra)."),
    ] = None,
    health_port: Annotated[
        int | None, typer.Option(help="Serve /livez and /readyz here (Kubernetes probes).")
    ] = None,
    http_host: Annotated[
        str, typer.Option(help="Address the metrics and health ports listen on.")
    ] = "0.0.0.0",
    max_tasks_per_child: Annotated[
        int | None,
        typer.Option(help="Replace a worker process after it ran this many tasks."),
    ] = None,
    max_memory_per_child: Annotated[
        int | None,
        typer.Option(help="Replace a worker process once its resident memory passes this (KiB)."),
    ] = None,
    autoscale: Annotated[
        str | None, typer.Option(help="Celery's MAX,MIN: not offered (see docs/celery.md).")
    ] = None,
    events: Annotated[
        bool | None,
        typer.Option(
            "--events/--no-events",
            "-E",
            help="Publish task and worker events (default: the `events` setting).",
        ),
    ] = None,
) -> None:
    """Run a worker. Starts a local nats-server when none is configured or reachable.

    With --processes N, process i serves metrics and health on the given ports + i.
    """
    check_run_options(
        log_level,
        log_format,
        concurrency,
        processes,
        {"--metrics-port": metrics_port, "--health-port": health_port},
    )
    if metrics_port is not None:
        check_metrics_installed()
    check_recycling(max_tasks_per_child, max_memory_per_child, autoscale)
    try:
        served_queues = tuple(parse_queues(queues).items()) if queues is not None else ()
    except ActorsError as exc:
        fail(exc)
    configure_logging(log_level, log_format)
    if events is not None:  # through the environment, so that every worker process sees it
        os.environ["ACTORS_EVENTS"] = "1" if events else "0"
    for name, limit in (
        ("ACTORS_MAX_TASKS_PER_CHILD", max_tasks_per_child),
        ("ACTORS_MAX_MEMORY_PER_CHILD", max_memory_per_child),
    ):
        if limit is not None:
            os.environ[name] = str(limit)
    try:
        loaded, server = open_app(app)
    except ActorsError as exc:
        fail(exc)
    if events is not None:
        loaded.conf.events = events
    for setting, limit in (
        ("max_tasks_per_child", max_tasks_per_child),
        ("max_memory_per_child", max_memory_per_child),
    ):
        if limit is not None:
            setattr(loaded.conf, setting, limit)
    # A process that stops to be recycled needs a supervisor to start the next one.
    recycles = bool(loaded.conf.max_tasks_per_child or loaded.conf.max_memory_per_child)
    supervised = processes > 1 or recycles
    options = WorkerOptions(
        app_path=app,
        actors=tuple(a.strip() for a in (actors or "").split(",") if a.strip()),
        concurrency=concurrency,
        queues=served_queues,
        log_level=log_level,
        log_format=log_format,
        nats_url=server.url if server else None,
        companions=("schedulers.beat:serve",) if beat else (),
        metrics_port=metrics_port,
        health_port=health_port,
        http_host=http_host,
    )
    try:
        for name in options.actors:
            loaded.get_actor(name)
        code = run_processes(options, processes) if supervised else run_worker(options)
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


@cli.command()
@connection_options
def revoke(
    task_ids: Annotated[list[str], typer.Argument(help="Task id(s) to revoke.")],
    terminate: Annotated[bool, typer.Option(help="Also stop them where they run.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Revoke ids not known yet too (sent later).")
    ] = False,
) -> None:
    """Revoke tasks: workers skip them (state REVOKED); --terminate stops running ones.

    Exit 1 when an id is unknown (no result, not queued, not scheduled) or already finished;
    the other ids are revoked.
    """
    for task_id in task_ids:
        if not topology.valid_task_id(task_id):
            fail(f"{task_id!r} is not a task id")

    async def action(broker: Broker) -> dict[str, str | None]:
        found = {task_id: await _revocable(broker, task_id) for task_id in task_ids}
        chosen = [i for i, problem in found.items() if problem is None or force]
        await Control.store_revocations(broker, chosen, terminate)
        return found

    found = with_broker(action)
    revoked = [i for i, problem in found.items() if problem is None or force]
    for problem in found.values():
        if problem is not None:
            typer.echo(f"{'warning' if force else 'error'}: {problem}", err=True)
    if revoked:
        typer.echo(f"revoked {len(revoked)} task(s)" + (" (terminate)" if terminate else ""))
    if len(revoked) < len(task_ids):
        raise typer.Exit(1)


async def _revocable(broker: Broker, task_id: str) -> str | None:
    """None if ``task_id`` may still run, else why revoking it does nothing."""
    data = await Bucket(broker, topology.RESULTS_BUCKET).get(task_id)
    if data is not None:
        record = ResultRecord.from_bytes(data)
        return f"task {task_id} already finished ({record.status})" if record.ready else None
    if await queues.is_scheduled(broker, task_id) or await queues.is_queued(broker, task_id):
        return None
    return (
        f"no task {task_id} is known (no result, not queued, not scheduled); "
        "--force revokes it anyway"
    )


@cli.command()
@connection_options
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Live workers, one line each (from the actors_workers registry). Exit 1: none."""
    records = with_broker(live_workers, topology=False)
    if not records and not as_json:
        fail("no live workers", 1)
    monitor.print_workers(records, as_json)
    if not records:
        raise typer.Exit(1)


@cli.command()
@connection_options
def events(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Replay stored events from then: 10m, 2h, 1d or an RFC 3339 time."),
    ] = None,
    follow: Annotated[
        bool, typer.Option(help="Keep printing new events (--no-follow: stop at the last).")
    ] = True,
) -> None:
    """Task and worker events (ACTORS_EVENTS), oldest first; Ctrl-C stops."""
    try:
        start = monitor.parse_since(since) if since else None
    except ActorsError as exc:
        fail(exc)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a live tail: not an error
        with_broker(lambda b: monitor.tail(b, start, as_json, follow), topology=False)


@cli.command()
@connection_options
def migrate() -> None:
    """Move the task stream of an older actors to the current streams. Stop workers first."""
    moved = with_broker(migration.migrate, topology=False)
    typer.echo(f"streams are current; moved {moved} message(s)")


@dead.command("list")
@connection_options
def dead_list(
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 100,
) -> None:
    """One line per dead letter: SEQ, time, task, task id, reason."""
    letters = with_broker(lambda b: dead_letters.list_dead(b, limit))
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
@connection_options
def dead_show(
    seq: Annotated[int, typer.Argument(help="Sequence number from `actors dead list`.")],
) -> None:
    """Headers and body of one dead letter."""
    letter = with_broker(lambda b: dead_letters.get_dead(b, seq))
    if letter is None:
        fail(f"no dead letter {seq}", 1)
    typer.echo(f"seq: {letter.seq}\ntime: {letter.time.isoformat()}\ntask: {letter.task}")
    typer.echo(f"task id: {letter.task_id}\nsubject: {letter.subject}\nreason: {letter.reason}")
    for key, value in sorted(letter.headers.items()):
        typer.echo(f"header {key}: {value}")
    typer.echo(f"body: {dead_letters.describe_body(letter)}")


@dead.command("replay")
@connection_options
def dead_replay(
    seq: Annotated[int | None, typer.Argument(help="Sequence number to replay.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Publish dead letters again to their task subjects, and remove them."""
    if (seq is None) == (not all_):
        fail("give a sequence number or --all (not both)")
    count = with_broker(lambda b: dead_letters.replay_many(b, seq))
    if seq is not None and count == 0:
        fail(f"no dead letter {seq}", 1)
    typer.echo(f"replayed {count} message(s)")


@dead.command("purge")
@connection_options
def dead_purge() -> None:
    """Delete every dead letter."""
    count = with_broker(dead_letters.purge)
    typer.echo(f"purged {count} dead letter(s)")


def main() -> None:
    """Entry point of the ``actors`` script."""
    cli()
