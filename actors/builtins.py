"""Built-in actors every App registers, named ``actors.<name>`` (docs/protocol.md, "Built-in
tasks"). Workers that serve all of an App's actors serve these too.
"""

from __future__ import annotations

from typing import Any, Protocol

ACCUMULATE = "actors.accumulate"
"""Returns its first argument: the body that makes a group replacing a task a chord whose
result (the list of the members' results) becomes the task's (actors/replace.py)."""

PREFIX = "actors."
"""Task names starting with this are built in."""


class _App(Protocol):
    def actor(self, *, name: str) -> Any: ...


def accumulate(results: Any) -> Any:
    """Return ``results`` (a chord body: the list of the header's results)."""
    return results


def register(app: _App) -> None:
    """Register the built-in actors on ``app``."""
    app.actor(name=ACCUMULATE)(accumulate)
