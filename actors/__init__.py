"""actors: Celery's programming model as an actor system on NATS JetStream."""

from actors.actor import Actor, Request
from actors.app import App
from actors.errors import (
    ActorsError,
    BrokerUnavailable,
    ConfigurationError,
    MaxRetriesExceeded,
    ProtocolError,
    ResultTimeout,
    Revoked,
    SoftTimeLimitExceeded,
    TaskFailed,
    TaskNotRegistered,
    TimeLimitExceeded,
    WorkerLost,
)
from actors.log import get_task_logger
from actors.results import AsyncResult
from actors.retry import Retry
from actors.worker import Worker

__all__ = [
    "Actor",
    "ActorsError",
    "App",
    "AsyncResult",
    "BrokerUnavailable",
    "ConfigurationError",
    "MaxRetriesExceeded",
    "ProtocolError",
    "Request",
    "ResultTimeout",
    "Retry",
    "Revoked",
    "SoftTimeLimitExceeded",
    "TaskFailed",
    "TaskNotRegistered",
    "TimeLimitExceeded",
    "Worker",
    "WorkerLost",
    "get_task_logger",
]
