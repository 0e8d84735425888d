"""The checks a delivered message passes before its task runs. Pure: no I/O.

:func:`check_message` returns the :class:`TaskMessage` to run, or a :class:`Rejection` that
says why the message goes to the dead-letter stream instead and what its result records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from actors.actor import Actor
from actors.errors import ActorsError, ProtocolError, TaskNotRegistered, WorkerLost
from actors.wire import routing, topology
from actors.wire.message import TaskMessage, clip_text, decode


class Received(Protocol):
    """What the checks read of a delivery (``actors.nats.consumer.Delivery`` has it)."""

    @property
    def subject(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def headers(self) -> dict[str, str]: ...

    @property
    def delivered(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message cannot run.

    ``task_id`` is the id its failure is stored under (None when the message has no readable
    id); ``error`` is the type of that failure.
    """

    reason: str
    task_id: str | None
    error: type[ActorsError] = ProtocolError
    message: TaskMessage | None = None
    """Set when the message was read but its arguments do not fit: the errbacks, chain and
    chord that it carries are failed too, as if the task had raised."""
    unknown: bool = False
    """The message names a task other than the actor of its subject (signal task_unknown)."""


def check_message(
    actor: Actor[Any, Any], received: Received, max_deliveries: int, max_message_bytes: int
) -> TaskMessage | Rejection:
    """The message to run for ``actor``, or why it cannot run.

    ``max_deliveries`` is the worker's default (the actor's option wins); ``max_message_bytes``
    bounds the body. The checks run in this order: deliveries, size, decoding and validation,
    task name against the actor, arguments (each item of a map/starmap).
    """
    data, content_type = received.data, received.headers.get("Content-Type")
    # Checked before anything else, so even a message that crashes us while being read
    # ends in the dead-letter stream instead of looping.
    limit = actor.options.max_deliveries or max_deliveries
    if received.delivered > limit:
        reason = (
            f"delivered {received.delivered} times without finishing (max_deliveries="
            f"{limit}); the task may crash its worker"
        )
        return Rejection(reason, message_id(data, content_type), WorkerLost)
    if len(data) > max_message_bytes:
        reason = f"message is {len(data)} bytes, over max_message_bytes"
        return Rejection(reason, message_id(data, content_type))
    try:
        message = TaskMessage.from_wire(decode(data, content_type))
    except ProtocolError as exc:
        return Rejection(f"malformed message: {exc}", message_id(data, content_type))
    if message.task != actor.name:
        reason = f"message names task {message.task!r} but came on {received.subject}"
        return Rejection(reason, message.id, unknown=True)
    try:
        check_arguments(actor, message)
    except TypeError as exc:
        reason = f"arguments do not fit {actor.name}{actor.call_signature}: {exc}"
        return Rejection(reason, message.id, message=message)
    return message


def check_arguments(actor: Actor[Any, Any], message: TaskMessage) -> None:
    """Raise TypeError when the arguments (or, for map/starmap, any item) do not fit."""
    if message.map is None:
        actor.check_arguments(message.args, message.kwargs)
        return
    for args, kwargs in map_calls(message):
        actor.check_arguments(args, kwargs)


def map_calls(message: TaskMessage) -> list[tuple[list[Any], dict[str, Any]]]:
    """The calls a map/starmap message stands for: one per item of ``args[0]``, in order."""
    if message.map not in ("map", "starmap"):
        raise TypeError(f"unknown map mode {message.map!r}: use map or starmap")
    if len(message.args) != 1 or not isinstance(message.args[0], list):
        raise TypeError("a map/starmap message takes one argument: the list of items")
    if message.map == "map":
        return [([item], message.kwargs) for item in message.args[0]]
    if not all(isinstance(item, list) for item in message.args[0]):
        raise TypeError("every starmap item must be a list of arguments")
    return [(list(item), message.kwargs) for item in message.args[0]]


def check_unserved(received: Received, age: float, grace: float) -> Rejection | None:
    """For a message on a subject no actor of this worker serves (a named queue's consumer
    delivers every task of the queue): None while it is younger than ``grace`` (hand it back,
    another worker of the queue may serve it), then why it fails (TaskNotRegistered)."""
    if age < grace:
        return None
    route = routing.parse_subject(received.subject)
    where = f" on queue {route.queue!r}" if route is not None else ""
    task = route.task if route is not None else received.subject
    reason = f"no worker{where} serves task {clip_text(task, 200)!r} (handed back for {grace:g}s)"
    task_id = message_id(received.data, received.headers.get("Content-Type"))
    return Rejection(reason, task_id, TaskNotRegistered)


def message_id(data: bytes, content_type: str | None) -> str | None:
    """The task id of a message that may be malformed, when it can be read at all."""
    try:
        body = decode(data, content_type, typed=False)
    except ProtocolError:
        return None
    task_id = body.get("id") if isinstance(body, dict) else None  # a map, possibly malformed
    return task_id if topology.valid_task_id(task_id) else None
