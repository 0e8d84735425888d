"""A child process that runs one sync task (``pool="process"``), started with :data:`BOOTSTRAP`.

Reads a msgpack request ``{"module", "task", "message"}`` on stdin, imports the module, finds
the actor by name among the module's Apps and Actors, runs it, and writes one msgpack reply to
the original stdout: ``{"result": value}``, ``{"error": {...}, "traceback": str}`` or
``{"retry": {...}}``. Anything the task prints goes to stderr. SIGUSR1 raises
SoftTimeLimitExceeded; the worker SIGKILLs the child at the hard limit or on terminate.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any, BinaryIO

from actors.actor import Actor, Request, current_request
from actors.app import App
from actors.client.results import describe_exception
from actors.errors import SoftTimeLimitExceeded, TaskNotRegistered
from actors.retry import Retry
from actors.wire import topology
from actors.wire.message import TaskMessage, decode, encode


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


def run(request: dict[str, Any], early: Sequence[int] = ()) -> dict[str, Any]:
    """Run one request and return the reply map.

    ``early`` is non-empty when the soft limit's SIGUSR1 came before the task started (a slow
    start-up); the task then begins with SoftTimeLimitExceeded, as it would have a moment later.
    """
    try:
        message = TaskMessage.from_wire(request["message"])
        actor = find_actor(request["module"], request["task"])
        current_request.set(Request.from_message(message, {"pool": "process"}))
        args = [actor, *message.args] if actor.options.bind else message.args
        signal.signal(signal.SIGUSR1, _soft_limit)
        if early:
            raise SoftTimeLimitExceeded("soft time limit exceeded")
        value = actor.fn(*args, **message.kwargs)
        encode(value)
        return {"result": value}
    except Retry as signal_:
        return {"retry": signal_.to_wire()}
    except BaseException as exc:
        return {"error": describe_exception(exc), "traceback": traceback.format_exc()}


BOOTSTRAP = (
    "import signal\n"
    "early = []\n"
    "signal.signal(signal.SIGUSR1, lambda *_: early.append(1))\n"
    "from actors.worker.process_child import main\n"
    "main(early)\n"
)
"""``python -c`` code that starts a child: it notes a SIGUSR1 from its first instruction on.

Imports take a while (longer on a busy machine); a soft limit that fired meanwhile used to
kill the child with SIGUSR1's default action instead of raising in the task.
"""


def main(early: list[int] | None = None) -> None:
    """Entry point of the child process; ``early`` collects SIGUSR1s seen during start-up."""
    if early is None:
        early = []
        signal.signal(signal.SIGUSR1, lambda *_: early.append(1))
    reply_to: BinaryIO = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # prints from the task must not corrupt the reply
    request = decode(sys.stdin.buffer.read(), topology.MSGPACK)
    reply_to.write(encode(run(request, early)))
    reply_to.flush()


if __name__ == "__main__":
    main()
