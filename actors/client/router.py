"""The client's router: which queue and priority each task message is sent with."""

from __future__ import annotations

import copy
from typing import Any

from actors.config import Settings
from actors.wire import routing
from actors.wire.message import TaskMessage


class Router:
    """Applies ``task_routes`` and the actors' own ``queue``/``priority`` to messages that do
    not name them (docs/routing.md has the order). The App registers each actor's defaults
    with :meth:`set_actor`; the rules are compiled again whenever ``task_routes`` changes."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._actors: dict[str, tuple[str | None, int | None]] = {}
        self._source: Any = None
        self._rules: tuple[routing.RouteRule, ...] = ()

    def set_actor(self, task: str, queue: str | None, priority: int | None) -> None:
        """Record an actor's own queue and priority (None: none)."""
        if queue is None and priority is None:
            self._actors.pop(task, None)
        else:
            self._actors[task] = (queue, priority)

    def rules(self) -> tuple[routing.RouteRule, ...]:
        """``task_routes`` compiled; ConfigurationError when it is not valid."""
        routes = self._settings.task_routes
        if routes != self._source:
            self._rules = routing.compile_routes(routes)
            self._source = copy.deepcopy(routes)
        return self._rules

    def route(self, message: TaskMessage) -> None:
        """Set the message's queue and priority where it names none (in place)."""
        if message.queue is not None and message.priority is not None:
            return
        rules = self.rules()
        actor_queue, actor_priority = self._actors.get(message.task, (None, None))
        if not rules and actor_queue is None and actor_priority is None:
            return  # the common case: nothing to route
        queue, priority = routing.resolve(
            message.task, message.queue, message.priority, rules, actor_queue
        )
        message.queue = queue
        message.priority = priority if priority is not None else actor_priority
