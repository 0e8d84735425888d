"""Replacing a running task with a signature: ``self.replace(sig)`` (Celery's ``replace``).

The running task ends without a result of its own; the replacement (a task signature) runs
under the task's id, so whoever waits on the task gets the replacement's result. What was to
follow the task (its ``link`` callbacks and ``link_error`` errbacks, the rest of its chain, its
chord or group) follows the replacement instead, as in Celery. The worker publishes the replacement
(actors/worker/outcomes.py) once the task has raised :class:`Replace`.
"""

from __future__ import annotations

from typing import Any

from actors.errors import ActorsError, ConfigurationError
from actors.signature import Canvas, Hop, Signature, link_list, maybe_signature
from actors.wire.ids import derived_id
from actors.wire.message import TaskMessage

IGNORED = "IGNORED"
"""The state hooks (``task_postrun``, ``after_return``) see for a replaced task, as with
Celery, whose ``replace`` ends the task with ``Ignore``. It is never stored."""


class Replace(ActorsError):
    """Raised by ``self.replace(sig)``: run ``sig`` in place of this task."""

    def __init__(self, sig: Canvas) -> None:
        super().__init__(f"replaced by {sig!r}")
        self.sig = sig

    def to_wire(self) -> dict[str, Any]:
        """A msgpack-able map (used to pass the signal out of a child process)."""
        return {"sig": self.sig.to_wire()}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Replace:
        """Rebuild a signal from :meth:`to_wire`."""
        return cls(maybe_signature(data["sig"]))


def replace_signal(sig: Any) -> Replace:
    """The signal for ``self.replace(sig)``; ConfigurationError for what cannot replace a task.

    Only a task signature can: it runs under the task's id. A chain cannot, because its last
    step (the one holding the result) would be published by another worker under this task's
    id, which JetStream's de-duplication drops as a copy of this task's message; a group or a
    chord has no single result. The replacement may itself call ``self.replace`` (a task
    replacing itself step by step), or link what follows (``sig.link(...)``).
    """
    replacement = maybe_signature(sig)
    if not isinstance(replacement, Signature):
        raise ConfigurationError(
            f"cannot replace a task with a {type(replacement).__name__}: replace it with one "
            "task signature (docs/workflows.md, 'Replacing a task')"
        )
    return Replace(replacement.clone())


def replacement_message(
    message: TaskMessage, signal: Replace, store: bool, delivery_seq: int
) -> tuple[TaskMessage, str]:
    """The message that runs the replacement of ``message``, and its Nats-Msg-Id.

    It runs under the replaced task's id, with its callbacks, errbacks, the rest of its chain
    and its chord or group membership. Its msg id is its own (derived from the delivery's
    stream sequence), so JetStream does not drop it as a copy of the task it replaces, while a
    redelivery of that task re-publishes the same message.
    """
    sig = signal.sig
    assert isinstance(sig, Signature)  # checked by replace_signal
    sig.options["task_id"] = message.id
    sig.options["link"] = [*link_list(sig.options.get("link")), *message.link]
    sig.options["link_error"] = [*link_list(sig.options.get("link_error")), *message.link_error]
    sig.options["ignore_result"] = not store
    hop = Hop(
        message.root_id, message.parent_id, message.chord, message.group_id, message.group_index
    )
    [out] = sig.messages([], message.chain, hop)
    return out, derived_id(f"{message.id}.replaced.{delivery_seq}")
