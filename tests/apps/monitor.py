"""Test app for the web monitor tests (``tests.apps.monitor:app``)."""

from __future__ import annotations

from typing import Any

from actors import App

app = App("monitored")
app.conf.beat_schedule = {"hourly-add": {"task": "mon.add", "schedule": 3600.0, "args": (1, 1)}}


@app.actor(name="mon.add")
def add(x: int, y: int) -> int:
    return x + y


@app.actor(name="mon.total")
def total(values: list[int]) -> int:
    return sum(values)


@app.actor(name="mon.boom")
def boom(text: str) -> None:
    raise ValueError(f"boom: {text}")


@app.actor(name="mon.flaky", bind=True, max_retries=3)
def flaky(self: Any, text: str) -> str:
    if self.request.retries < 1:
        raise self.retry(countdown=0.1)
    return text
