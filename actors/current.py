"""The current App: the one signatures and results use when none is given (Celery's
``current_app``), for code like ``signature("tasks.add", args=(2, 2)).delay()``.

The current App is the one set with ``app.set_current()``, else the only App alive in this
process. With several Apps alive and none set, there is no current App: guessing would send
tasks to the wrong NATS server, so :func:`current_app` raises and says what to do.
"""

from __future__ import annotations

import weakref
from typing import Any

from actors.errors import ConfigurationError

_apps: weakref.WeakSet[Any] = weakref.WeakSet()
_current: weakref.ReferenceType[Any] | None = None


def created(app: Any) -> None:
    """Called by every new App: it is now one of the Apps alive."""
    _apps.add(app)


def set_current(app: Any) -> None:
    """Make ``app`` the current App (``app.set_current()``)."""
    global _current
    _current = weakref.ref(app)


def find_current() -> Any | None:
    """The current App, or None when there is none or it is ambiguous."""
    chosen = _current() if _current is not None else None
    if chosen is not None:
        return chosen
    alive = list(_apps)
    return alive[0] if len(alive) == 1 else None


def current_app() -> Any:
    """The current App; ConfigurationError when none exists or several do and none is set."""
    chosen = find_current()
    if chosen is not None:
        return chosen
    count = len(list(_apps))
    fix = "build signatures from an actor (add.s(...)) or pass app="
    if count == 0:
        raise ConfigurationError(f"no App exists in this process: create one, or {fix}")
    raise ConfigurationError(
        f"{count} Apps exist in this process and none is current: call app.set_current() "
        f"on the one to use, or {fix}"
    )
