"""``actors inspect ...`` and ``actors control ...``: remote control from the command line,
registered on the CLI by actors/cli/main.py. Same requests as ``app.control`` (no app needed).

Exit codes: 0 when a worker replied, 1 when none did (or every reply is an error), 2 for a
usage error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from actors.cli.connect import connection_options, with_broker
from actors.cli.output import print_table
from actors.client.control import DEFAULT_TIMEOUT, Control, Replies
from actors.nats.broker import Broker

inspect_cli = typer.Typer(
    help="Ask running workers what they do (core NATS request/reply).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
control_cli = typer.Typer(
    help="Change running workers: rate and time limits, consumers, shutdown.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

DestinationOpt = Annotated[
    list[str] | None,
    typer.Option("--destination", "-d", help="Only this worker (hostname); repeat for more."),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", "-t", min=0.01, help="Seconds to wait for replies.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the replies as JSON.")]


def ask(
    command: str,
    arguments: dict[str, Any] | None,
    destination: Sequence[str] | None,
    timeout: float,
) -> Replies:
    """Send one control request and return the replies; exit 2 when NATS cannot be reached."""

    async def request(broker: Broker) -> Replies:
        aimed = list(destination) if destination else None
        return await Control.request(broker, command, arguments, aimed, timeout)

    return with_broker(request, topology=False)


def finish(replies: Replies, as_json: bool, headers: Sequence[str], rows: list[list[str]]) -> None:
    """Print the replies (a table, or JSON) and exit 1 when there is nothing useful."""
    if as_json:
        typer.echo(json.dumps(replies, indent=2, default=repr))
    elif rows:
        print_table(headers, rows)
    if not replies:
        if not as_json:
            typer.echo("no worker replied", err=True)
        raise typer.Exit(1)
    if all(_is_error(reply) for one in replies for reply in one.values()):
        raise typer.Exit(1)


def _is_error(reply: Any) -> bool:
    return isinstance(reply, dict) and "error" in reply


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _when(stamp: Any) -> str:
    if not isinstance(stamp, int | float):
        return "-"
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def _status(reply: Any) -> str:
    if isinstance(reply, dict) and len(reply) == 1 and ("ok" in reply or "error" in reply):
        key = next(iter(reply))
        return f"{key}: {reply[key]}"
    return _short(reply)


def _items(replies: Replies) -> list[tuple[str, Any]]:
    return sorted((worker, reply) for one in replies for worker, reply in one.items())


def _tasks(replies: Replies) -> list[list[str]]:
    rows = []
    for worker, reply in _items(replies):
        if not isinstance(reply, list):
            rows.append([worker, "-", "-", "-", "-", _status(reply)])
            continue
        if not reply:
            rows.append([worker, "(none)", "-", "-", "-", "-"])
        for task in reply:
            if isinstance(task, dict) and isinstance(task.get("request"), dict):  # scheduled
                task = {**task["request"], "time_start": None, "eta": task.get("eta")}
            if not isinstance(task, dict):
                continue
            when = task.get("eta") or _when(task.get("time_start"))
            rows.append(
                [
                    worker,
                    str(task.get("id")),
                    str(task.get("name")),
                    _short(task.get("args")),
                    _short(task.get("kwargs")),
                    str(when),
                ]
            )
    return rows


TASK_COLUMNS = ("WORKER", "ID", "TASK", "ARGS", "KWARGS", "STARTED / ETA")


def _inspect(
    command: str,
    destination: Sequence[str] | None,
    timeout: float,
    as_json: bool,
) -> None:
    replies = ask(command, None, destination, timeout)
    items = _items(replies)
    if command in ("active", "reserved", "scheduled"):
        finish(replies, as_json, TASK_COLUMNS, _tasks(replies))
    elif command == "registered":
        rows = [[w, ", ".join(r) if isinstance(r, list) else _status(r)] for w, r in items]
        finish(replies, as_json, ("WORKER", "ACTORS"), rows)
    elif command == "stats":
        rows = [
            [w]
            + [str(r.get(k, "-")) for k in ("pid", "concurrency", "processed", "active", "uptime")]
            + [", ".join(f"{x:.2f}" for x in r.get("loadavg", []))]
            for w, r in items
            if isinstance(r, dict)
        ]
        headers = ("WORKER", "PID", "CONCURRENCY", "PROCESSED", "ACTIVE", "UPTIME S", "LOAD")
        finish(replies, as_json, headers, rows)
    elif command == "conf":
        rows = [
            [w, key, _short(value)]
            for w, r in items
            if isinstance(r, dict)
            for key, value in sorted(r.items())
        ]
        finish(replies, as_json, ("WORKER", "SETTING", "VALUE"), rows)
    else:
        finish(replies, as_json, ("WORKER", "REPLY"), [[w, _status(r)] for w, r in items])


def _inspect_command(command: str, help_text: str) -> None:
    def run(
        destination: DestinationOpt = None,
        timeout: TimeoutOpt = DEFAULT_TIMEOUT,
        as_json: JsonOpt = False,
    ) -> None:
        _inspect(command, destination, timeout, as_json)

    run.__doc__ = help_text
    inspect_cli.command(command)(connection_options(run))


for _command, _help in (
    ("active", "Tasks running now on each worker: id, task, arguments, start time."),
    ("reserved", "Messages each worker holds that have not started."),
    ("scheduled", "Countdown/eta tasks of the actors each worker serves, waiting in NATS."),
    ("registered", "The actors each worker serves."),
    ("stats", "Counters and process figures of each worker."),
    ("ping", "Which workers answer."),
    ("conf", "Each worker's settings (secrets shown as ***)."),
):
    _inspect_command(_command, _help)


def _change(
    command: str,
    arguments: dict[str, Any] | None,
    destination: Sequence[str] | None,
    timeout: float,
    as_json: bool,
) -> None:
    replies = ask(command, arguments, destination, timeout)
    rows = [[worker, _status(reply)] for worker, reply in _items(replies)]
    finish(replies, as_json, ("WORKER", "REPLY"), rows)


@control_cli.command("rate-limit")
@connection_options
def rate_limit(
    task: Annotated[str, typer.Argument(help="The actor's task name.")],
    rate: Annotated[str, typer.Argument(help="'10/s', '100/m', '1000/h'; 'none' removes it.")],
    destination: DestinationOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Set an actor's rate limit on the running workers (until they restart)."""
    value = None if rate.lower() in ("none", "0", "") else rate
    arguments = {"task_name": task, "rate_limit": value}
    _change("rate_limit", arguments, destination, timeout, as_json)


@control_cli.command("time-limit")
@connection_options
def time_limit(
    task: Annotated[str, typer.Argument(help="The actor's task name.")],
    soft: Annotated[float | None, typer.Option(min=0, help="Soft limit, seconds.")] = None,
    hard: Annotated[float | None, typer.Option(min=0, help="Hard limit, seconds.")] = None,
    destination: DestinationOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Set an actor's soft and hard time limits on the running workers (until they restart);
    a limit left out is removed."""
    arguments = {"task_name": task, "soft": soft, "hard": hard}
    _change("time_limit", arguments, destination, timeout, as_json)


@control_cli.command("shutdown")
@connection_options
def shutdown(
    destination: DestinationOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Stop workers gracefully, as SIGTERM does (all of them unless --destination)."""
    _change("shutdown", None, destination, timeout, as_json)


@control_cli.command("add-consumer")
@connection_options
def add_consumer(
    actor: Annotated[str, typer.Argument(help="Task name to start serving.")],
    destination: DestinationOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Make workers start serving an actor of their app."""
    _change("add_consumer", {"actor": actor}, destination, timeout, as_json)


@control_cli.command("cancel-consumer")
@connection_options
def cancel_consumer(
    actor: Annotated[str, typer.Argument(help="Task name to stop serving.")],
    destination: DestinationOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Make workers stop fetching an actor's messages (running tasks finish)."""
    _change("cancel_consumer", {"actor": actor}, destination, timeout, as_json)
