"""Replacing a running task with a signature: ``self.replace(sig)`` (Celery's ``replace``).

The running task ends without a result of its own; the replacement's *final task* runs under
the task's id, so whoever waits on the task gets the replacement's result: a task signature
is its own final task, a chain's is its last step's, a chord's its body's; a group runs as a
chord whose body is the built-in ``actors.accumulate`` (its result: the members' results).
What was to follow the task (its ``link`` callbacks, the rest of its chain, its chord or group
membership) follows that final task; its ``link_error`` errbacks become the replacement's
(every step of a chain carries them, a chord calls them when it fails), as in Celery.
The worker publishes the replacement (actors/worker/outcomes.py) once the task has raised
:class:`Replace`.

Ids (docs/protocol.md, "Replacing a task"): with ``R = <task id>.replaced.<stream sequence of
the replaced message>``, the final task's message is published with ``Nats-Msg-Id`` =
``uuid5(R)`` (signature option ``msg_id``), whoever publishes it, since a message under the
task's own id would be dropped by JetStream's de-duplication as a copy of the replaced one;
the replacement's other tasks get ids derived from ``R``. A redelivered replaced task so
re-publishes the same messages, stored once.
"""

from __future__ import annotations

from typing import Any

from actors import builtins
from actors.canvas import chain, chord, group
from actors.errors import ActorsError, ConfigurationError
from actors.signature import Canvas, Hop, Signature, link_list, maybe_signature
from actors.wire.ids import derived_id
from actors.wire.message import TaskMessage

IGNORED = "IGNORED"
"""The state hooks (``task_postrun``, ``after_return``) see for a replaced task, as with
Celery, whose ``replace`` ends the task with ``Ignore``. It is never stored."""

MSG_ID = "msg_id"
"""Signature option: the ``Nats-Msg-Id`` to publish its task message with (not its task id)."""


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


def replace_signal(sig: Any, message: TaskMessage | None = None) -> Replace:
    """The signal for ``self.replace(sig)``; ConfigurationError for what cannot replace a task.

    A task signature, a chain or a chord can. A group runs as a chord whose body is the
    built-in ``actors.accumulate`` (as Celery's ``celery.accumulate``): the task's result is
    the list of the members' results. With ``message`` (the running task's), the
    replacement's messages are built once here, so one that cannot be sent fails the task
    with the reason.
    """
    replacement = maybe_signature(sig).clone()
    if isinstance(replacement, group):  # as Celery does: a chord whose body returns the list
        replacement = chord(replacement, Signature(builtins.ACCUMULATE), app=replacement.app)
    signal = Replace(replacement)
    if message is not None:
        replacement_messages(message, signal, store=True, delivery_seq=0)
    return signal


def final_task(sig: Canvas) -> Signature:
    """The task whose result is ``sig``'s: a chain's last step's, a chord's body's."""
    if isinstance(sig, Signature):
        return sig
    if isinstance(sig, chain):
        return final_task(sig.tasks[-1])
    if isinstance(sig, chord) and sig.body is not None:
        return final_task(sig.body)
    raise ConfigurationError(f"a {type(sig).__name__} has no single result to replace a task with")


def replacement_messages(
    message: TaskMessage, signal: Replace, store: bool, delivery_seq: int
) -> list[TaskMessage]:
    """The messages that start the replacement of ``message`` (delivered at stream sequence
    ``delivery_seq``), each with its ``msg_id`` when it is not its task id.

    The replacement's final task runs under the replaced task's id with its callbacks, the
    rest of its chain and its chord or group membership; its errbacks become the replacement's.
    """
    sig = signal.sig.clone()
    seed = f"{message.id}.replaced.{delivery_seq}"
    final = final_task(sig)
    if message.chord is not None and not isinstance(sig, Signature | chain):
        raise ConfigurationError(
            "a chord header member cannot be replaced with a chord or a group (a chord cannot "
            "be a member of another chord's header); replace it with a task or a chain"
        )
    if message.link_error:
        sig.options["link_error"] = [*link_list(sig.options.get("link_error")), *message.link_error]
    sig.assign_ids(seed)  # the ids not given, derived from the seed; a chain's link moves down
    final.options["task_id"] = message.id
    final.options[MSG_ID] = derived_id(seed)
    final.options["link"] = [*link_list(final.options.get("link")), *message.link]
    final.options["ignore_result"] = not store
    if final.task == builtins.ACCUMULATE and message.queue is not None:
        final.options.setdefault("queue", message.queue)  # served where the replaced task was
    hop = Hop(
        message.root_id, message.parent_id, message.chord, message.group_id, message.group_index
    )
    return sig.messages([], message.chain, hop)
