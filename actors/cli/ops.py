"""``actors queues``, ``purge``, ``result`` and ``call``: look at and act on the queues."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from actors.cli.connect import connection_options, with_broker
from actors.cli.output import fail, print_table
from actors.client.client import Client
from actors.config import Settings
from actors.errors import ActorsError, ResultTimeout
from actors.log import configure_logging
from actors.nats import queues
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.wire import topology
from actors.wire.ids import new_task_id
from actors.wire.message import TaskMessage, format_time
from actors.wire.record import SUCCESS, ResultRecord

_COUNTS = ("pending", "in_flight", "redelivered", "dead", "consumers", "waiting")
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, default=str, sort_keys=True))


@connection_options
def queues_command(as_json: Json = False) -> None:
    """Per actor: messages pending, in flight, redelivered, dead letters, consumers."""
    rows = with_broker(queues.queue_stats)
    if as_json:
        _echo_json([_stats_dict(row) for row in rows])
        return
    if not rows:
        typer.echo("no queues (no actor has a consumer, a message or a dead letter)")
        return
    print_table(
        ("ACTOR", "PENDING", "IN FLIGHT", "REDELIVERED", "DEAD", "CONSUMERS", "WAITING PULLS"),
        (
            [
                r.actor,
                *(
                    str(n)
                    for n in (r.pending, r.in_flight, r.redelivered, r.dead, r.consumers, r.waiting)
                ),
            ]
            for r in rows
        ),
    )


def _stats_dict(row: queues.QueueStats) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}


@connection_options
def purge_command(
    actors: Annotated[
        list[str] | None, typer.Argument(help="Actors whose queues to empty (default: all).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask.")] = False,
) -> None:
    """Delete the messages waiting for actors (all actors unless named). Asks first."""
    names = list(actors or [])
    for name in names:
        if not topology.valid_task_name(name):
            fail(f"{name!r} is not a task name")

    async def action(broker: Broker) -> dict[str, int]:
        targets = names or [row.actor for row in await queues.queue_stats(broker)]
        return {name: await queues.purge_queue(broker, name) for name in targets}

    what = ", ".join(names) if names else "EVERY actor"
    if not force:
        if not sys.stdin.isatty():
            fail("purge asks before deleting: give --force when not on a terminal")
        if not typer.confirm(f"Delete all messages waiting for {what}?"):
            fail("nothing purged", 1)
    purged = with_broker(action)
    total = sum(purged.values())
    for name, count in purged.items():
        typer.echo(f"{name}: purged {count} message(s)")
    typer.echo(f"purged {total} message(s)")


@connection_options
def result_command(
    task_id: Annotated[str, typer.Argument(help="The task id.")],
    as_json: Json = False,
) -> None:
    """Show the stored result of a task: state, value or error, traceback. Exit 1 if none."""
    if not topology.valid_task_id(task_id):
        fail(f"{task_id!r} is not a task id")

    async def action(broker: Broker) -> bytes | None:
        return await Bucket(broker, topology.RESULTS_BUCKET).get(task_id)

    data = with_broker(action)
    if data is None:
        fail(f"no result for task {task_id} (unknown, not finished, or expired)", 1)
    record = ResultRecord.from_bytes(data)
    if as_json:
        _echo_json({"id": task_id, **_record_dict(record)})
        return
    typer.echo(f"id: {task_id}\ntask: {record.task or '-'}\nstate: {record.status}")
    if record.status == SUCCESS:
        typer.echo(f"result: {json.dumps(record.result, default=repr)}")
    elif record.error is not None:
        typer.echo(f"error: {record.error.get('type', '?')}: {record.error.get('message', '')}")
    if record.date_done:
        typer.echo(f"date done: {record.date_done}")
    if record.traceback:
        typer.echo(f"traceback:\n{record.traceback}")


def _record_dict(record: ResultRecord) -> dict[str, Any]:
    return {
        "task": record.task,
        "state": record.status,
        "result": record.result,
        "error": record.error,
        "traceback": record.traceback,
        "date_done": record.date_done,
        "retries": record.retries,
        "worker": record.worker,
    }


def _json_arg(text: str, kind: type, option: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail(f"{option} is not valid JSON: {exc}")
    if not isinstance(value, kind):
        fail(f"{option} must be a JSON {'array' if kind is list else 'object'}, got {text!r}")
    return value


@connection_options
def call_command(
    task_name: Annotated[str, typer.Argument(help="The task to run, e.g. billing.charge.")],
    args: Annotated[
        str, typer.Option("--args", "-a", help="Positional args, a JSON array.")
    ] = "[]",
    kwargs: Annotated[
        str, typer.Option("--kwargs", "-k", help="Keyword args, a JSON object.")
    ] = "{}",
    countdown: Annotated[
        float | None, typer.Option(help="Run no sooner than this many seconds from now.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result and print it.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits (exit 1 after).")] = 60.0,
    as_json: Json = False,
) -> None:
    """Send a task by name and print its id; with --wait, print its result."""
    if not topology.valid_task_name(task_name):
        fail(f"{task_name!r} is not a task name")
    if countdown is not None and countdown < 0:
        fail("--countdown must be >= 0")
    message = TaskMessage(
        id=new_task_id(),
        task=task_name,
        args=_json_arg(args, list, "--args"),
        kwargs=_json_arg(kwargs, dict, "--kwargs"),
    )
    if countdown:
        message.eta = format_time(datetime.now(UTC) + timedelta(seconds=countdown))
    configure_logging("error")
    try:
        record = asyncio.run(_send(message, timeout if wait else None))
    except ResultTimeout:
        fail(f"task {message.id} sent; no result within {timeout:g}s", 1)
    except ActorsError as exc:
        fail(exc)
    if record is None:
        _echo_json({"id": message.id, "task": task_name}) if as_json else typer.echo(message.id)
        return
    if as_json:
        _echo_json({"id": message.id, **_record_dict(record)})
    elif record.status == SUCCESS:
        typer.echo(json.dumps(record.result, default=repr))
    else:
        error = record.error or {}
        typer.echo(f"{record.status}: {error.get('type', '?')}: {error.get('message', '')}")
    if record.status != SUCCESS:
        raise typer.Exit(1)


async def _send(message: TaskMessage, wait: float | None) -> ResultRecord | None:
    client = Client(Settings.build({}), "actors-cli")
    try:
        connection = await client.connection()
        await connection.send(message)
        if wait is None:
            return None
        return await connection.results.wait(message.id, wait)
    finally:
        await client.aclose()


def register(cli: typer.Typer) -> None:
    """Add these commands to the ``actors`` command line."""
    cli.command("queues")(queues_command)
    cli.command("purge")(purge_command)
    cli.command("result")(result_command)
    cli.command("call")(call_command)
