"""A beat test app (``tests.apps.beat:app``): one 1-second entry publishing ``beatapp.tick``.

Nothing serves ``beatapp.tick`` in beat tests, so every published message stays in the task
stream, where the tests count them by tick.
"""

from __future__ import annotations

from actors import App

app = App("beatapp")


@app.actor(name="beatapp.tick")
def tick(n: int) -> int:
    """The periodic task."""
    return n


app.conf.beat_schedule = {"every-second": {"task": "beatapp.tick", "schedule": 1.0, "args": [1]}}
