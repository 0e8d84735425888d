"""Actors for the node-loss tests (``tests.apps.failover:app``).

``mark`` appends one line per run to a file, with what a duplicate run needs explaining: when
it ran, in which process, and how the message was delivered (stream sequence, delivery count).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from actors import App


def register(app: App) -> dict[str, Any]:
    """Register the failover test actors on ``app``; return them by short name."""

    @app.actor(name="failover.mark", bind=True)
    def mark(self: Any, value: Any, path: str, sleep: float = 0.0) -> Any:
        """Append ``time pid stream_seq delivered value`` to ``path``, sleep, return ``value``."""
        info = self.request.delivery_info
        with Path(path).open("a") as f:
            f.write(
                f"{time.time():.3f} {os.getpid()} {info.get('stream_seq')} "
                f"{info.get('delivered')} {value if isinstance(value, int) else 'body'}\n"
            )
        time.sleep(sleep)
        return value

    @app.actor(name="failover.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.actor(name="failover.probe")
    def probe(x: int) -> int:
        return x

    return {f.name.split(".", 1)[1]: f for f in app.registry.values()}


app = App("failover")
tasks = register(app)
