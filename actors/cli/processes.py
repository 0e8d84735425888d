"""Running workers from the command line: one in this process, or several supervised ones."""

from __future__ import annotations

import asyncio
import dataclasses
import faulthandler
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from actors.cli.loading import load_app, load_callable
from actors.client.background_loop import new_event_loop
from actors.log import configure_logging, share_output_lock
from actors.worker import Worker
from actors.worker.health import HttpEndpoints, serve_endpoints
from actors.worker.recycling import EXIT_RECYCLE

log = structlog.get_logger(__name__)
T = TypeVar("T")

EXIT_CONNECTION_LOST = 4
"""Exit status of a worker whose NATS connection was lost for good (see max_disconnected)."""


@dataclass(frozen=True)
class WorkerOptions:
    """What ``actors run`` passes to each worker process."""

    app_path: str
    actors: tuple[str, ...] = ()
    concurrency: int | None = None
    queues: tuple[tuple[str, int | None], ...] = ()
    """``-Q``: the queues served and their own slots (None: shared); empty: the default queue."""
    log_level: str = "info"
    log_format: str | None = None
    nats_url: str | None = None
    companions: tuple[str, ...] = ()
    """``module:function`` coroutines ``f(app, stop)`` run next to the worker (first process
    only), e.g. the beat for ``actors run --beat``. Given as paths so this layer imports none."""
    metrics_port: int | None = None
    health_port: int | None = None
    """Ports of ``/metrics`` and ``/livez`` + ``/readyz``; process N of ``--processes`` adds N."""
    http_host: str = "0.0.0.0"


def run_worker(options: WorkerOptions) -> int:
    """Run one worker in this process until SIGTERM or SIGINT; return the exit code.

    The code is 0, EXIT_CONNECTION_LOST when the worker lost its NATS connection for good, or
    EXIT_RECYCLE when it passed max_tasks_per_child or max_memory_per_child, so that a
    supervisor starts a fresh process.
    """
    configure_logging(options.log_level, options.log_format)
    if options.nats_url:
        os.environ["ACTORS_NATS_URL"] = options.nats_url
    app = load_app(options.app_path)
    if options.nats_url:
        app.conf.nats_url = options.nats_url
    worker = Worker(
        app, options.actors or None, options.concurrency, queues=dict(options.queues) or None
    )

    companions = [load_callable(path) for path in options.companions]
    tune_garbage_collector()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop_on_signals(loop, stop, worker.settings.shutdown_grace + _STOP_MARGIN)
        await worker.start()  # companions then share the worker's connection
        endpoints: list[HttpEndpoints] = []
        try:
            endpoints = await serve_endpoints(
                worker, options.http_host, options.metrics_port, options.health_port
            )
            await asyncio.gather(
                worker.wait_stopped(stop), *(companion(app, stop) for companion in companions)
            )
        finally:
            if worker.lost_reason:
                _exit_if_stuck(worker.settings.shutdown_grace + _STOP_MARGIN)
            stop.set()
            await worker.stop()
            for endpoint in endpoints:
                await endpoint.stop()

    run_loop(main())
    if worker.lost_reason:
        return EXIT_CONNECTION_LOST
    return EXIT_RECYCLE if worker.recycler.reason else 0


GC_THRESHOLDS = (20_000, 50, 100)
"""The worker's garbage collector thresholds. Python's default (700, 10, 10) runs a young
collection every 700 net container allocations, several times per task at thousands of tasks
per second; the cycles a task leaves are few, so collecting 30x less often costs little memory
(docs/scaling.md, "Where the CPU goes")."""


def tune_garbage_collector() -> None:
    """Collect less often, and never scan what was loaded before serving (the app, its
    modules): ``gc.freeze`` moves those objects out of the collector's generations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop where it is installed (faster I/O and thread wake-ups)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


_STOP_MARGIN = 15.0  # seconds past the planned shutdown before the watchdog ends the process


def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, limit: float) -> None:
    """On SIGTERM/SIGINT set ``stop``, and end the process if stopping takes over ``limit`` s.

    The watchdog is a last resort so that a stuck shutdown never hangs a deploy: it prints
    every thread's stack (to find the cause) and exits with status 3.
    """

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
            _exit_if_stuck(limit)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)


def _exit_if_stuck(limit: float) -> None:
    """Start the watchdog that ends the process if stopping takes over ``limit`` seconds."""
    timer = threading.Timer(limit, _give_up, args=(limit,))
    timer.daemon = True
    timer.start()


def _give_up(limit: float) -> None:
    log.error("shutdown.stuck", limit_s=limit, action="exiting with status 3")
    faulthandler.dump_traceback(all_threads=True)
    os._exit(3)


def _later_process(options: WorkerOptions, index: int) -> WorkerOptions:
    """Options of process ``index`` > 0: no companions, its own HTTP ports."""

    def shifted(port: int | None) -> int | None:
        return None if port is None else port + index

    return dataclasses.replace(
        options,
        companions=(),
        metrics_port=shifted(options.metrics_port),
        health_port=shifted(options.health_port),
    )


def _child(options: WorkerOptions, parent: int, log_lock: Any) -> None:
    share_output_lock(log_lock)
    _stop_when_orphaned(parent)
    sys.exit(run_worker(options))


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM ourselves (a graceful stop) once ``parent`` is gone, e.g. after a SIGKILL.

    Without this a worker process outlives its supervisor for ever.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("worker.orphaned", parent=parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="actors-parent-watch", daemon=True).start()


def run_processes(options: WorkerOptions, processes: int) -> int:
    """Run ``processes`` worker processes, restart any that crash, stop them all on SIGTERM
    or once one of them stops cleanly (asked to, by ``actors control shutdown``)."""
    context = multiprocessing.get_context("spawn")
    log_lock = context.Lock()  # one log line at a time across the processes
    share_output_lock(log_lock)
    children: list[Any] = [None] * processes
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping:
        for index, child in enumerate(children):
            if child is not None and child.is_alive():
                continue
            if child is not None and child.exitcode == 0:
                # A clean exit was asked for (`actors control shutdown`): stop the node.
                log.info("worker.process_stopped", index=index)
                stopping = True
                break
            if child is not None and child.exitcode == EXIT_RECYCLE:
                log.info("worker.process_recycled", index=index)
            elif child is not None:
                log.warning("worker.process_exited", index=index, exitcode=child.exitcode)
            own = options if index == 0 else _later_process(options, index)
            children[index] = context.Process(
                target=_child, args=(own, os.getpid(), log_lock), daemon=False
            )
            children[index].start()
        time.sleep(0.2)
    for child in children:
        if child.is_alive() and child.pid:
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join()
    return 0
