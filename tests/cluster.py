"""A real three-node NATS cluster built from the shipped ``deploy/nats/*.conf``, on loopback.

The configs are rendered onto loopback: free ports for the client, monitoring and route
listeners, a temporary store directory, and routes pointing at the other nodes' ports. Every
other line is used as shipped, so tests on it prove that the config shape we ship forms a
JetStream cluster. The ``nats_cluster`` fixture (tests/conftest.py) starts one per test.
"""

from __future__ import annotations

import collections
import json
import re
import socket
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from actors.nats.server import find_nats_server
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "deploy" / "nats"
NAMES = ("nats-1", "nats-2", "nats-3")
STREAMS = ("ACTORS", "ACTORS_SCHEDULED", "ACTORS_DEAD", "KV_actors_results", "KV_actors_revoked")


@dataclass
class Node:
    """One nats-server started from a rendered copy of a shipped config."""

    name: str
    client_port: int
    http_port: int
    route_port: int
    config: Path
    process: subprocess.Popen[str] | None = None
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=300))
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def start(self) -> None:
        self.ready.clear()
        self.process = subprocess.Popen(
            [str(find_nats_server()), "-c", str(self.config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()

    def _drain(self, process: subprocess.Popen[str]) -> None:
        # Read stderr for the server's whole life so the pipe never fills and blocks it.
        assert process.stderr is not None
        for line in process.stderr:
            self.output.append(line.rstrip())
            if "Server is ready" in line:
                self.ready.set()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        if not self.ready.wait(timeout) or not self.running():
            raise TimeoutError(f"{self.name} not ready in {timeout}s:\n" + self.log())

    def jsz(self, query: str = "") -> dict[str, Any]:
        """The node's JetStream monitoring report (``/jsz``, e.g. ``?streams=true``)."""
        url = f"http://127.0.0.1:{self.http_port}/jsz{query}"
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def kill(self) -> None:
        """SIGKILL, as a crash or a lost machine would."""
        if self.process is not None and self.running():
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or not self.running():
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        return "\n".join(self.output)


class Cluster:
    """Three nodes; ``url`` lists all three as seeds, as ACTORS_NATS_URL does in production."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready(timeout)
        self.wait_for_meta_leader(timeout)

    def wait_for_meta_leader(self, timeout: float) -> str:
        """Wait until every running node reports the same JetStream meta leader of 3 peers."""

        def agreed(seen: list[dict[str, Any]]) -> bool:
            leaders = {meta.get("leader") or "" for meta in seen}
            sizes = {meta.get("cluster_size") for meta in seen}
            # The leader lists its peers: each must be current and online, or placing an R3
            # stream right away fails with "no suitable peers for placement, peer offline".
            peers = [p for meta in seen for p in meta.get("replicas") or ()]
            online = [p for p in peers if p.get("current") and not p.get("offline")]
            running = sum(n.running() for n in self.nodes)
            return (
                bool(seen)
                and len(leaders) == 1
                and "" not in leaders
                and sizes == {len(self.nodes)}
                and len(online) >= running - 1
            )

        seen = eventually(
            lambda: [n.jsz().get("meta_cluster", {}) for n in self.nodes if n.running()],
            until=agreed,
            what=lambda: (
                "a JetStream meta leader:\n"
                + "\n\n".join(f"{n.name}:\n{n.log()}" for n in self.nodes)
            ),
            timeout=timeout,
            interval=0.1,
            ignore=(OSError,),
        )
        return str(seen[0]["leader"])

    def leaders(self) -> dict[str, str]:
        """Stream name -> its leader's node name, as the running nodes report (``/jsz``)."""
        found: dict[str, str] = {}
        for node in self.nodes:
            if not node.running():
                continue
            try:
                report = node.jsz("?streams=true")
            except OSError:
                continue
            for account in report.get("account_details") or []:
                for stream in account.get("stream_detail") or []:
                    leader = (stream.get("cluster") or {}).get("leader")
                    if leader:
                        found[stream["name"]] = leader
        return found

    def lagging(self) -> list[str]:
        """``stream:node`` of every replica its leader does not report current (caught up),
        and ``stream:no leader`` for a stream whose leader does not report, as the running
        nodes' ``/jsz`` say (only a leader knows whether its followers are current)."""
        streams: set[str] = set()
        led: dict[str, list[dict[str, Any]]] = {}
        for node in self.nodes:
            if not node.running():
                continue
            for account in node.jsz("?streams=true").get("account_details") or []:
                for stream in account.get("stream_detail") or []:
                    streams.add(stream["name"])
                    cluster = stream.get("cluster") or {}
                    if cluster.get("leader") == node.name:
                        led[stream["name"]] = cluster.get("replicas") or []
        if not streams:
            return ["no streams reported"]
        behind = [f"{name}:no leader" for name in streams - set(led)]
        behind += [
            f"{name}:{replica.get('name')}"
            for name, replicas in led.items()
            for replica in replicas
            if not replica.get("current")
        ]
        return sorted(behind)

    def wait_current(self, timeout: float = 60.0) -> None:
        """Wait until every stream has a leader and all its replicas are caught up."""
        eventually(
            self.lagging,
            until=lambda behind: not behind,
            what="every stream replica current",
            timeout=timeout,
            interval=0.2,
            ignore=(OSError,),
        )

    def leader_of(self, stream: str, timeout: float = 20.0) -> Node:
        """The running node that leads ``stream``, once one does."""
        running = {n.name for n in self.nodes if n.running()}
        name = eventually(
            lambda: self.leaders().get(stream),
            until=lambda leader: leader in running,
            what=f"a running leader of {stream}",
            timeout=timeout,
            interval=0.1,
        )
        return self.node(str(name))

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def node_at(self, url: str) -> Node:
        port = urlparse(url).port
        return next(n for n in self.nodes if n.client_port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def render(text: str, node: Node, peers: list[Node], store: Path) -> str:
    """The shipped config with its addresses and store moved to loopback ports and ``store``.

    Each line we rewrite must appear exactly once, so a change in the shipped shape fails here
    rather than silently testing something else.
    """
    rewrites = [
        (r"^listen: 0\.0\.0\.0:4222$", f"listen: 127.0.0.1:{node.client_port}"),
        (r"^http: 0\.0\.0\.0:8222$", f"http: 127.0.0.1:{node.http_port}"),
        (r"^(\s+)store_dir: /data$", rf'\g<1>store_dir: "{store}"'),
        (r"^(\s+)listen: 0\.0\.0\.0:6222$", rf"\g<1>listen: 127.0.0.1:{node.route_port}"),
    ]
    rewrites += [
        (
            rf"^(\s+)nats-route://{peer.name}:6222$",
            rf"\g<1>nats-route://127.0.0.1:{peer.route_port}",
        )
        for peer in peers
    ]
    for pattern, replacement in rewrites:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count == 1, f"{node.name}: expected one line matching {pattern!r}, found {count}"
    return text


def build_cluster(directory: Path) -> Cluster:
    ports = free_ports(3 * len(NAMES))
    nodes = [
        Node(name, *ports[3 * i : 3 * i + 3], config=directory / f"{name}.conf")
        for i, name in enumerate(NAMES)
    ]
    for node in nodes:
        shipped = (CONFIGS / f"{node.name}.conf").read_text()
        store = directory / node.name
        store.mkdir()
        node.config.write_text(render(shipped, node, nodes, store))
    return Cluster(nodes)
