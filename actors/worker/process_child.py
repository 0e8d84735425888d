"""A child process that runs one sync task (``pool="process"``).

Started as ``python -m actors.worker.process_child``. Reads a msgpack request
``{"module", "task", "message", "soft"}`` on stdin, imports the module, finds
the actor by name among the module's Apps and Actors, runs it, and writes one msgpack reply to
the original stdout: ``{"result": value}``, ``{"error": {...}, "traceback": str}``,
``{"retry": {...}}`` or ``{"replace": {...}}``. Anything the task prints goes to stderr. The
child times the soft limit itself (SIGALRM raises SoftTimeLimitExceeded); the worker SIGKILLs
the child at the hard limit or on terminate.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from typing import Any, BinaryIO

import structlog

from actors.actor import Actor, Request, current_request
from actors.app import App
from actors.errors import SoftTimeLimitExceeded, TaskNotRegistered
from actors.log import configure_inherited_logging
from actors.replace import Replace
from actors.retry import Retry
from actors.wire import topology
from actors.wire.message import TaskMessage, decode, encode
from actors.wire.record import describe_exception


def find_actor(module_name: str, task: str) -> Actor[Any, Any]:
    """The actor named ``task`` registered at import time of ``module_name``."""
    module = importlib.import_module(module_name)
    for value in vars(module).values():
        if isinstance(value, Actor) and value.name == task:
            return value
        if isinstance(value, App) and task in value.registry:
            return value.registry[task]
    raise TaskNotRegistered(
        f"{task} is not registered when {module_name} is imported; pool='process' needs the "
        "actor defined at module level"
    )


def _soft_limit(signum: int, frame: object) -> None:
    raise SoftTimeLimitExceeded("soft time limit exceeded")


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Run one request and return the reply map.

    The request's ``soft`` (seconds, optional) is the task's soft time limit, timed here from
    the moment the task starts: the child's start-up (imports: 0.2 s and more on a busy
    machine) does not count against it, as it does not in a thread.
    """
    try:
        message = TaskMessage.from_wire(request["message"])
        structlog.contextvars.bind_contextvars(
            task=message.task, task_id=message.id, retries=message.retries
        )
        actor = find_actor(request["module"], request["task"])
        actor.app.client.hooks.worker_process_init()
        current_request.set(Request.from_message(message, {"pool": "process"}))
        args = [actor, *message.args] if actor.options.bind else message.args
        soft = request.get("soft")
        if isinstance(soft, int | float) and soft > 0:
            signal.signal(signal.SIGALRM, _soft_limit)
            signal.setitimer(signal.ITIMER_REAL, soft)
        value = actor.fn(*args, **message.kwargs)
        signal.setitimer(signal.ITIMER_REAL, 0)
        actor.app.client.flush()  # the task's own sends are stored before it counts as done
        encode(value)
        return {"result": value}
    except Retry as signal_:
        return {"retry": signal_.to_wire()}
    except Replace as replaced:
        return {"replace": replaced.to_wire()}
    except BaseException as exc:
        return {"error": describe_exception(exc), "traceback": traceback.format_exc()}


def main() -> None:
    """Entry point of the child process."""
    reply_to: BinaryIO = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # prints from the task must not corrupt the reply
    configure_inherited_logging()
    request = decode(sys.stdin.buffer.read(), topology.MSGPACK)
    reply_to.write(encode(run(request)))
    reply_to.flush()


if __name__ == "__main__":
    main()
