"""``actors monitor``: serve the web monitor (the ``monitor`` extra; docs/monitor.md).

Not to be confused with ``actors status`` and ``actors events`` (actors/cli/monitor.py), which
print the same readings in a terminal.
"""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from actors.app import App
from actors.cli.connect import connection_options
from actors.cli.loading import load_app
from actors.cli.output import fail
from actors.cli.processes import run_loop
from actors.cli.run_checks import LogFormat, LogLevel, check_log_options
from actors.errors import ActorsError
from actors.log import configure_logging


@connection_options
def monitor_command(
    app: Annotated[
        str | None,
        typer.Argument(help="MODULE:APP, for its settings and periodic tasks (optional)."),
    ] = None,
    port: Annotated[int, typer.Option(help="HTTP port.")] = 5555,
    address: Annotated[
        str, typer.Option(help="Address to listen on; not loopback needs credentials.")
    ] = "127.0.0.1",
    max_tasks: Annotated[
        int, typer.Option(help="Tasks kept in memory at most (oldest forgotten first).")
    ] = 100_000,
    log_level: LogLevel = "info",
    log_format: LogFormat = None,
) -> None:
    """Serve the web monitor: workers, tasks, workflows, dead letters, periodic tasks.

    Credentials for actions from ACTORS_MONITOR_USER and ACTORS_MONITOR_PASSWORD (basic auth)
    or ACTORS_MONITOR_TOKEN (bearer); without them it is read-only and loopback only.
    """
    check_log_options(log_level, log_format)
    needed = ("starlette", "uvicorn", "jinja2", "multipart", "prometheus_client")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        fail(f"actors monitor needs {', '.join(missing)}: pip install 'actors[monitor]'")
    from actors.monitor.auth import MonitorSettings
    from actors.monitor.server import serve

    try:
        settings = MonitorSettings.build(address, port, max_tasks)
        loaded = load_app(app) if app else App("monitor")
    except ActorsError as exc:
        fail(exc)
    configure_logging(log_level, log_format)
    where = f"http://{address}:{port}/"
    auth = "credentials required" if settings.auth_enabled else "read-only, no credentials set"
    typer.echo(f"actors monitor on {where} ({auth})", err=True)
    try:
        run_loop(serve(loaded, settings))
    except ActorsError as exc:
        fail(exc)
