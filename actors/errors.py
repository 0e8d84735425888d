"""Exceptions raised by actors. Every one derives from :class:`ActorsError`."""

from __future__ import annotations


class ActorsError(Exception):
    """Base class of every error this library raises."""


class ConfigurationError(ActorsError, ValueError):
    """A setting, a task definition or a value passed to the API is wrong; the message says
    what to fix. A ValueError too, as Python code expects of a bad value."""


class ConfigurationTypeError(ConfigurationError, TypeError):
    """A value passed to the API has the wrong type (also a TypeError, as Python code
    expects)."""


class EncodeError(ActorsError, TypeError):
    """A value cannot be encoded as msgpack (task arguments, a result); use msgpack types."""


class BrokerUnavailable(ActorsError):
    """NATS could not be reached, or a JetStream request failed."""


class PublishFailed(BrokerUnavailable):
    """A task message handed to the publish pipeline was not stored by JetStream.

    Raised by the task's ``AsyncResult.get()``, ``wait()`` and ``ready()``, by
    ``app.flush()``, or by ``delay()`` itself with ``confirm_publish``. ``task_id`` names the
    task and ``cause`` is the error the publish ended with.
    """

    def __init__(self, task_id: str, cause: BaseException) -> None:
        super().__init__(f"task {task_id} was not sent: {cause}")
        self.task_id = task_id
        self.cause = cause


class ProtocolError(ActorsError, ValueError):
    """A message or result record does not follow docs/protocol.md."""


class MessageTooLarge(ActorsError, ValueError):
    """A message (body and headers together) is larger than the server's ``max_payload``.

    Raised before anything is sent: the server would close the connection instead. ``size``
    is the message's size in bytes, headers included, and ``limit`` the server's maximum.
    """

    def __init__(self, message: str, size: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class TaskNotRegistered(ActorsError):
    """A message named a task that no worker serves."""


class ResultTimeout(ActorsError, TimeoutError):
    """Waiting for a result took longer than the timeout given."""


class TaskFailed(ActorsError):
    """A task raised an exception whose type cannot be rebuilt here.

    ``exc_type`` is the remote exception's dotted type name, ``exc_message`` its message and
    ``remote_traceback`` the formatted traceback from the worker.
    """

    def __init__(self, exc_type: str, exc_message: str, remote_traceback: str | None) -> None:
        super().__init__(f"{exc_type}: {exc_message}")
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.remote_traceback = remote_traceback


class ChordError(ActorsError):
    """A chord's body did not run because a header task failed; the message names it."""


class Revoked(ActorsError):
    """The task was revoked (or expired) before it finished."""


class MaxRetriesExceeded(ActorsError):
    """A task asked to retry more often than its ``max_retries`` allows."""


class SoftTimeLimitExceeded(ActorsError):
    """Raised inside a task when its soft time limit has passed, so it can clean up."""


class TimeLimitExceeded(ActorsError):
    """A task ran past its hard time limit and was stopped."""


class WorkerLost(ActorsError):
    """The process running the task died before it reported back (a crash, ``os._exit``)."""
