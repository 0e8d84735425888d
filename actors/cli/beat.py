"""``actors beat`` and ``actors schedule ...``, registered on the CLI by actors/cli/main.py."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from actors.app import App
from actors.cli.connect import connection_options
from actors.cli.loading import load_app, open_app
from actors.cli.output import fail, print_table
from actors.cli.processes import stop_on_signals
from actors.cli.run_checks import LogFormat, LogLevel
from actors.errors import ActorsError
from actors.log import configure_logging
from schedulers.beat import Beat
from schedulers.entries import schedule_from_text
from schedulers.store import ScheduleInfo, ScheduleNotFound, ScheduleStore

AppArg = Annotated[str, typer.Argument(help="The app, as MODULE:ATTRIBUTE.")]
NameArg = Annotated[str, typer.Argument(help="The entry's name.")]

schedule_cli = typer.Typer(
    help="Periodic entries stored in NATS (bucket actors_beat); running beats pick up changes.",
    no_args_is_help=True,
)


@connection_options
def beat(
    app: AppArg,
    lease: Annotated[
        float, typer.Option(help="Seconds before a stalled claim is taken over.")
    ] = 1.5,
    grace: Annotated[
        float, typer.Option(help="A tick later than this counts as missed (catch-up).")
    ] = 2.0,
    log_level: LogLevel = "info",
    log_format: LogFormat = None,
) -> None:
    """Run beat: publish the app's periodic tasks. Run several for high availability."""
    try:
        configure_logging(log_level, log_format)
        loaded, server = open_app(app)
    except ActorsError as exc:
        fail(exc)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop_on_signals(loop, stop, lease + 15.0)  # a publish under way may take a lease
        try:
            await Beat(loaded, lease=lease, grace=grace).run(stop)
        finally:
            await loaded.aclose()

    try:
        asyncio.run(main())
    except (ActorsError, ValueError) as exc:
        fail(exc)
    finally:
        if server is not None:
            server.stop()


@schedule_cli.command("list")
@connection_options
def list_entries(
    app: AppArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List entries from code and stored ones, with their last and next tick."""
    infos: list[ScheduleInfo] = _call(app, lambda store: store.list())
    if as_json:
        typer.echo(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    print_table(
        ("NAME", "TASK", "SCHEDULE", "SOURCE", "ENABLED", "LAST TICK", "NEXT TICK"),
        (
            (
                info.name,
                info.task,
                info.schedule,
                info.source,
                "yes" if info.enabled else "no",
                info.last_tick.isoformat() if info.last_tick else "-",
                info.next_tick.isoformat() if info.next_tick else "-",
            )
            for info in infos
        ),
    )


@schedule_cli.command()
@connection_options
def add(
    app: AppArg,
    name: NameArg,
    task: Annotated[str, typer.Argument(help="Task name, e.g. tasks.cleanup.")],
    schedule: Annotated[
        str, typer.Argument(help="Seconds (30, 0.5) or a cron string ('*/5 * * * *', @daily).")
    ],
    args: Annotated[str, typer.Option(help="Positional arguments as a JSON list.")] = "[]",
    kwargs: Annotated[str, typer.Option(help="Keyword arguments as a JSON object.")] = "{}",
    options: Annotated[str, typer.Option(help="apply_async options as a JSON object.")] = "{}",
    tz: Annotated[str | None, typer.Option(help="IANA time zone of a cron schedule.")] = None,
    disabled: Annotated[bool, typer.Option(help="Store it disabled.")] = False,
    replace: Annotated[bool, typer.Option(help="Overwrite a stored entry of that name.")] = False,
) -> None:
    """Store an entry; running beats start it at once."""
    try:
        parsed = {key: json.loads(text) for key, text in (("args", args), ("kwargs", kwargs))}
        parsed["options"] = json.loads(options)
    except ValueError as exc:
        fail(f"--args/--kwargs/--options must be JSON: {exc}")
    info: ScheduleInfo = _call(
        app,
        lambda store: store.add(
            name,
            task,
            schedule_from_text(schedule),
            args=parsed["args"],
            kwargs=parsed["kwargs"],
            options=parsed["options"],
            tz=tz,
            enabled=not disabled,
            replace=replace,
        ),
    )
    typer.echo(f"added {info.name}: {info.task} {info.schedule}")


@schedule_cli.command()
@connection_options
def remove(app: AppArg, name: NameArg) -> None:
    """Delete a stored entry."""
    _call(app, lambda store: store.remove(name))
    typer.echo(f"removed {name}")


@schedule_cli.command()
@connection_options
def enable(app: AppArg, name: NameArg) -> None:
    """Enable an entry (from code or stored)."""
    _call(app, lambda store: store.enable(name))
    typer.echo(f"enabled {name}")


@schedule_cli.command()
@connection_options
def disable(app: AppArg, name: NameArg) -> None:
    """Disable an entry (from code or stored)."""
    _call(app, lambda store: store.disable(name))
    typer.echo(f"disabled {name}")


def _call(app_path: str, operation: Any) -> Any:
    """Run ``operation(store)`` against the app's NATS; errors become exit codes 1 or 2."""
    configure_logging("warning")  # log lines go to stderr, never into the listing
    try:
        app: App = load_app(app_path)
    except ActorsError as exc:
        fail(exc)
    try:
        return operation(ScheduleStore(app))
    except ScheduleNotFound as exc:
        fail(exc, 1)
    except ActorsError as exc:
        fail(exc)
    finally:
        app.close()
