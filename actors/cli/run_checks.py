"""Options shared by the long-running commands, checked up front: one clear line, no traceback."""

from __future__ import annotations

import importlib.util
import logging
from typing import Annotated

import typer

from actors.cli.output import fail

LOG_FORMATS = ("console", "json")
LogLevel = Annotated[
    str, typer.Option("--log-level", "--loglevel", "-l", help="debug, info, warning or error.")
]
LogFormat = Annotated[str | None, typer.Option(help="console or json (default: console on a TTY).")]


def check_run_options(
    log_level: str,
    log_format: str | None,
    concurrency: int | None,
    processes: int,
    ports: dict[str, int | None] | None = None,
) -> None:
    """Exit 2 with ``error: ...`` on the first option that cannot work."""
    check_log_options(log_level, log_format)
    if concurrency is not None and concurrency < 1:
        fail(f"--concurrency must be at least 1, got {concurrency}")
    if processes < 1:
        fail(f"--processes must be at least 1, got {processes}")
    for option, port in (ports or {}).items():
        if port is not None and not 0 < port < 65536:
            fail(f"{option} must be a TCP port (1-65535), got {port}")


def check_log_options(log_level: str, log_format: str | None) -> None:
    """Exit 2 on an unknown log level or format."""
    if logging.getLevelNamesMapping().get(log_level.upper()) is None:
        fail(f"unknown --log-level {log_level!r}: use debug, info, warning or error")
    if log_format is not None and log_format not in LOG_FORMATS:
        fail(f"unknown --log-format {log_format!r}: use console or json")


def check_metrics_installed() -> None:
    """Exit 2 with what to install when prometheus-client is missing."""
    if importlib.util.find_spec("prometheus_client") is None:
        fail("--metrics-port needs prometheus-client: pip install 'actors[metrics]'")


def check_recycling(
    max_tasks_per_child: int | None, max_memory_per_child: int | None, autoscale: str | None
) -> None:
    """Exit with a message for bad recycling limits, and for Celery's ``--autoscale``."""
    for flag, value in (
        ("--max-tasks-per-child", max_tasks_per_child),
        ("--max-memory-per-child", max_memory_per_child),
    ):
        if value is not None and value < 1:
            fail(f"{flag} must be at least 1, got {value}")
    if autoscale is not None:
        fail(
            "--autoscale is not offered: sync tasks run in threads, and an idle thread costs no "
            "CPU and little memory, so growing and shrinking the pool would save nothing; "
            "--concurrency caps tasks in flight, --processes adds processes "
            "(docs/celery.md, 'Worker options')"
        )
