"""What ``actors status`` and ``actors events`` print: live workers and the event stream."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import typer

from actors.cli.output import print_table
from actors.client.events import read_events
from actors.errors import ConfigurationError
from actors.nats.broker import Broker
from actors.wire.events import describe
from actors.wire.message import parse_time
from actors.wire.registry import WorkerRecord

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``10m``, ``30s``, ``2h``, ``1d`` ago, or an RFC 3339 time; ConfigurationError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    now = now or datetime.now(UTC)
    if match:
        return now - timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    try:
        return parse_time(text.strip())
    except Exception:
        raise ConfigurationError(
            f"--since {text!r}: give a duration like 30s, 10m, 2h or 1d, or an RFC 3339 time"
        ) from None


def print_workers(records: list[WorkerRecord], as_json: bool) -> None:
    """One line per worker (or one JSON array)."""
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in records]))
        return
    now = datetime.now(UTC)
    print_table(
        ("WORKER", "ACTORS", "CONCURRENCY", "ACTIVE", "PROCESSED", "FAILED", "LOAD", "UP", "SEEN"),
        (
            (
                r.hostname,
                str(len(r.actors)),
                str(r.concurrency),
                str(r.active),
                str(r.processed),
                str(r.failed),
                f"{r.load:.2f}",
                _ago(r.started_at, now),
                _ago(r.heartbeat_at, now) + " ago",
            )
            for r in records
        ),
    )


def _ago(stamp: str, now: datetime) -> str:
    try:
        seconds = (now - parse_time(stamp)).total_seconds()
    except Exception:
        return "?"
    if seconds < 120:
        return f"{max(0.0, seconds):.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h"


async def tail(broker: Broker, since: datetime | None, as_json: bool, follow: bool) -> int:
    """Print events from ``since`` (and new ones with ``follow``); the number printed."""
    count = 0
    async for event in read_events(broker, since, follow):
        if as_json:
            typer.echo(json.dumps(event, default=str))
        else:
            stamp = datetime.fromtimestamp(float(event.get("timestamp", 0)), UTC)
            typer.echo(f"{stamp.isoformat(timespec='milliseconds')} {describe(event)}")
        count += 1
    return count
