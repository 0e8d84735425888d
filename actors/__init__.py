"""actors: Celery's programming model as an actor system on NATS JetStream."""

from actors.actor import Actor, Request
from actors.app import App
from actors.canvas import Signature, chain, chord, chunks, group, signature
from actors.client.client import Client
from actors.client.results import AsyncResult, GroupResult
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
from actors.options import ActorOptions, SendOptions
from actors.retry import Retry

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
    "ProtocolError",
    "PublishFailed",
    "Request",
    "ResultTimeout",
    "Retry",
    "Revoked",
    "SendOptions",
    "Signature",
    "SoftTimeLimitExceeded",
    "TaskFailed",
    "TaskNotRegistered",
    "TimeLimitExceeded",
    "WorkerLost",
    "chain",
    "chord",
    "chunks",
    "get_task_logger",
    "group",
    "signature",
]
