"""actors: Celery's programming model as an actor system on NATS JetStream."""

from actors import signals
from actors.actor import Actor, Request
from actors.app import App
from actors.canvas import Signature, chain, chord, chunks, group, signature
from actors.client.client import Client
from actors.client.result_set import GroupResult, ResultSet
from actors.client.results import AsyncResult
from actors.errors import (
    ActorsError,
    BrokerUnavailable,
    ChordError,
    ConfigurationError,
    ConfigurationTypeError,
    EncodeError,
    MaxRetriesExceeded,
    MessageTooLarge,
    ProtocolError,
    PublishFailed,
    ResultTimeout,
    Revoked,
    SoftTimeLimitExceeded,
    TaskFailed,
    TaskNotRegistered,
    TimeLimitExceeded,
    WorkerLost,
)
from actors.log import get_task_logger
from actors.middleware import Middleware
from actors.options import ActorOptions, SendOptions
from actors.retry import Retry
from actors.task_class import Task

__all__ = [
    "Actor",
    "ActorOptions",
    "ActorsError",
    "App",
    "AsyncResult",
    "BrokerUnavailable",
    "ChordError",
    "Client",
    "ConfigurationError",
    "ConfigurationTypeError",
    "EncodeError",
    "GroupResult",
    "MaxRetriesExceeded",
    "MessageTooLarge",
    "Middleware",
    "ProtocolError",
    "PublishFailed",
    "Request",
    "ResultSet",
    "ResultTimeout",
    "Retry",
    "Revoked",
    "SendOptions",
    "Signature",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskFailed",
    "TaskNotRegistered",
    "TimeLimitExceeded",
    "WorkerLost",
    "chain",
    "chord",
    "chunks",
    "get_task_logger",
    "group",
    "signals",
    "signature",
]
