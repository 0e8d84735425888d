"""How the worker turns a ``Retry`` signal into the next attempt: its message, its RETRY
record and its de-duplication id; and which errors retry on their own (``autoretry_for``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from actors.actor import Actor
from actors.backoff import retry_delay
from actors.retry import Retry, retry_signal
from actors.wire.message import TaskMessage
from actors.wire.record import RETRY, ResultRecord


def autoretry(actor: Actor[Any, Any], retries: int, exc: Exception) -> Retry | None:
    """The Retry for an error listed in ``autoretry_for`` while retries remain, else None."""
    options = actor.options
    if not options.autoretry_for or not isinstance(exc, options.autoretry_for):
        return None
    kwargs = dict(options.retry_kwargs)
    max_retries = kwargs.pop("max_retries", None)
    if "countdown" not in kwargs and "eta" not in kwargs:
        kwargs["countdown"] = retry_delay(
            retries,
            default=options.default_retry_delay,
            backoff=options.retry_backoff,
            backoff_max=options.retry_backoff_max,
            jitter=options.retry_jitter,
        )
    signal = retry_signal(actor, retries, exc=exc, max_retries=max_retries, **kwargs)
    return signal if isinstance(signal, Retry) else None


def next_message(message: TaskMessage, signal: Retry) -> TaskMessage:
    """The message of the next attempt: same id, ``retries + 1``, the signal's time and args."""
    return dataclasses.replace(
        message,
        retries=message.retries + 1,
        eta=signal.when,
        args=list(signal.retry_args) if signal.retry_args is not None else message.args,
        kwargs=dict(signal.retry_kwargs) if signal.retry_kwargs is not None else message.kwargs,
    )


def retry_record(message: TaskMessage, signal: Retry) -> ResultRecord:
    """The RETRY record stored while the next attempt waits."""
    cause = signal.exc if signal.exc is not None else signal
    record = ResultRecord.failure(message.id, message.task, cause, status=RETRY)
    record.retries = message.retries + 1
    record.date_done = None
    record.result = {"eta": signal.when} if signal.when else None
    return record


def retry_msg_id(message: TaskMessage, delivery_seq: int) -> str:
    """Deterministic ``Nats-Msg-Id`` of an attempt asked for by the message delivered at
    stream sequence ``delivery_seq``: a re-sent copy is stored once, while the same attempt
    number of a task that was replaced (same id, retries counted from 0 again) is not taken
    for a copy of the replaced task's."""
    return f"{message.id}:{message.retries}:{delivery_seq}"
