"""The children of a running task: ids of the tasks it sends while it runs.

The worker starts a list with :func:`begin` before it calls a task; every publish through a
:class:`~actors.client.client.Connection` in that context (``delay`` from the task, in its
thread or on the loop; ``replace``) adds the message's id; the worker stores the list in the
task's result record (``children``, docs/protocol.md), which ``AsyncResult.children`` reads.
"""

from __future__ import annotations

from contextvars import ContextVar

_sent: ContextVar[list[str] | None] = ContextVar("actors_children", default=None)

MAX_CHILDREN = 1_000
"""At most this many ids are kept per task: a record must stay well under max_payload."""


def begin() -> None:
    """Start recording the tasks sent from the current context (the worker, per task run)."""
    _sent.set([])


def add(task_id: str) -> None:
    """Note that ``task_id`` was sent (a no-op outside a task run)."""
    sent = _sent.get()
    if sent is not None and len(sent) < MAX_CHILDREN and task_id not in sent:
        sent.append(task_id)


def sent() -> list[str]:
    """The ids recorded so far in this context (empty outside a task run)."""
    return list(_sent.get() or ())
