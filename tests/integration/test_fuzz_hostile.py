"""A bounded fuzz of the message path: hostile publishers against a real worker process.

Hypothesis generates batches of hostile messages (random bytes, truncated msgpack, wrong
types, deep nesting, huge ints, NaN, odd and forged headers, NUL/CR/LF/space/wildcards/unicode
in names, ids and nested signatures, odd subjects). Each batch is published raw with nats-py
(no actors client), then the test waits until every stored message is accounted for, and
checks what a hostile publisher must never achieve:

- the worker process stays alive, connected and serving (a sentinel task answers);
- every stored message ends as a run, a result record or a dead letter; none is left behind;
- nothing runs through a redelivery loop (every run is a first delivery);
- the worker's memory and its log lines stay bounded.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import nats
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from actors import App
from actors.nats.server import EmbeddedServer
from tests.helpers import eventually

SERVED = "actors.task.fuzz.echo"
RUNS_ENV = "FUZZ_RUNS_FILE"
MARK = "Fuzz-Seq"

INJECTION = "x\r\nPUB $JS.API.STREAM.DELETE.ACTORS 0\r\n\r\n"
HOSTILE_STRINGS = [
    "",
    " ",
    "a b",
    INJECTION,
    "a\x00b",
    "\r\n",
    "*",
    ">",
    "fuzz.*",
    "fuzz.>",
    "fuzz-echo",
    "fuzz..echo",
    ".fuzz",
    "é.ü",
    "🙂",
    "x" * 300,
    "fuzz.echo",
    "fuzz.nobody",
]
hostile_text = st.sampled_from(HOSTILE_STRINGS) | st.text(max_size=24)
names = st.sampled_from(["fuzz.echo", "fuzz.echo", "fuzz.nobody"]) | hostile_text
ids = st.uuids().map(str) | hostile_text
numbers = (
    st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.integers()  # beyond 64 bits: only JSON can carry these
    | st.floats(allow_nan=True, allow_infinity=True)
)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=16) | st.binary(max_size=16)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
times = st.sampled_from(
    ["2030-01-01T00:00:00Z", "2001-01-01T00:00:00Z", "tomorrow", "", "2030-13-45T99:00:00Z"]
) | st.text(max_size=30)


def signatures() -> st.SearchStrategy[Any]:
    """Nested signature maps, mostly well-formed in shape, hostile in content."""
    options = st.fixed_dictionaries(
        {},
        optional={
            "task_id": ids,
            "countdown": numbers | st.text(max_size=5),
            "eta": times | numbers,
            "expires": times | numbers,
            "ignore_result": st.booleans() | anything,
            "headers": anything,
            "group_id": ids,
        },
    )
    task = st.fixed_dictionaries(
        {"task": names},
        optional={
            "args": st.lists(scalars, max_size=3) | anything,
            "kwargs": st.dictionaries(st.text(max_size=5), scalars, max_size=2) | anything,
            "options": options | anything,
            "immutable": st.booleans() | anything,
            "map": st.sampled_from(["map", "starmap", "other"]) | anything,
            "kind": st.sampled_from(["task", "group", "chain", "chord", "bogus"]),
        },
    )
    return st.recursive(
        task,
        lambda inner: (
            st.fixed_dictionaries(
                {"kind": st.sampled_from(["group", "chain"]), "tasks": st.lists(inner, max_size=3)}
            )
            | st.fixed_dictionaries(
                {"kind": st.just("chord"), "header": inner, "body": inner | st.none()}
            )
            | st.fixed_dictionaries(
                {"task": names},
                optional={"options": st.fixed_dictionaries({"link": st.lists(inner, max_size=2)})},
            )
        ),
        max_leaves=6,
    )


sig_lists = st.lists(signatures(), max_size=3) | anything
fields = st.fixed_dictionaries(
    {},
    optional={
        "id": ids | anything,
        "task": names | anything,
        "args": st.lists(scalars, max_size=4) | anything,
        "kwargs": st.dictionaries(st.text(max_size=6), scalars, max_size=3) | anything,
        "v": st.integers(-2, 3) | anything,
        "retries": numbers | anything,
        "eta": times | anything,
        "expires": times | anything,
        "link": sig_lists,
        "link_error": sig_lists,
        "chain": sig_lists,
        "chord": st.fixed_dictionaries(
            {},
            optional={
                "id": ids,
                "size": numbers,
                "index": numbers,
                "body": signatures() | anything,
            },
        )
        | anything,
        "group_id": ids | anything,
        "group_index": numbers | anything,
        "root_id": ids | anything,
        "parent_id": ids | anything,
        "headers": anything,
        "map": st.sampled_from(["map", "starmap", "nope"]) | anything,
        "ignore_result": st.just(False) | st.text(max_size=3) | st.integers(),
    },
)


@st.composite
def map_bodies(draw: st.DrawFn) -> Any:
    body: dict[str, Any] = {"id": str(uuid.uuid4()), "task": "fuzz.echo", "args": [], "kwargs": {}}
    body.update(draw(fields))
    return body


def _encode(body: Any, as_json: bool) -> tuple[bytes, str]:
    if as_json:
        try:
            return json.dumps(body).encode(), "application/json"
        except (TypeError, ValueError):
            pass
    try:
        return msgpack.packb(body, use_bin_type=True), "application/msgpack"
    except (TypeError, ValueError, OverflowError):
        return json.dumps(repr(body)).encode(), "application/json"


def _deep_body(depth: int) -> bytes:
    """A valid-looking msgpack message whose args nest ``depth`` arrays deep."""
    task_id = str(uuid.uuid4())
    return (
        b"\x84"
        + msgpack.packb("id")
        + msgpack.packb(task_id)
        + msgpack.packb("task")
        + msgpack.packb("fuzz.echo")
        + msgpack.packb("kwargs")
        + b"\x80"
        + msgpack.packb("args")
        + b"\x91" * depth
        + b"\x90"
    )


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    """One hostile message: subject, body bytes, headers (without the test's own mark)."""
    kind = draw(st.sampled_from(["map", "map", "map", "bytes", "truncated", "deep"]))
    headers: dict[str, str] = {}
    if kind == "map":
        data, content_type = _encode(draw(map_bodies()), draw(st.booleans()))
        headers["Content-Type"] = content_type
    elif kind == "bytes":
        data = draw(st.binary(max_size=512))
    elif kind == "truncated":
        whole, _ = _encode(draw(map_bodies()), False)
        data = whole[: draw(st.integers(0, max(0, len(whole) - 1)))]
    else:
        data = _deep_body(draw(st.sampled_from([40, 600, 5000])))
    extra = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "Content-Type": st.sampled_from(
                    [
                        "application/json",
                        "application/msgpack",
                        "APPLICATION/JSON; charset=utf-8",
                        "text/plain",
                        "",
                    ]
                ),
                "Nats-Msg-Id": st.uuids().map(str),
                "Nats-Rollup": st.sampled_from(["all", "sub"]),
                "Actors-Dead-Reason": st.text(
                    alphabet=st.characters(codec="ascii", min_codepoint=32), max_size=20
                ),
                "Status": st.sampled_from(["503", "404", "100"]),
                "X-Anything": st.text(
                    alphabet=st.characters(min_codepoint=32, exclude_characters="\x7f"),
                    max_size=40,
                ),
            },
        )
    )
    headers.update(extra)
    subject = draw(
        st.sampled_from([SERVED] * 8)
        | st.sampled_from(
            [
                "actors.task.>",
                "actors.task.*",
                "actors.task.fuzz.*",
                "actors.task.fuzz-echo",
                "actors.task.fuzz.nobody",
                "actors.task.fuzz.echo.extra",
                "actors.task.é",
            ]
        )
    )
    return subject, data, headers


class Publisher:
    """A raw nats-py connection on its own loop: publishes what the fuzz makes, reads results."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.nc = self.run(nats.connect(url, skip_subject_validation=True))
        self.js = self.nc.jetstream(timeout=5)
        self.dead_marks: set[str] = set()
        self._sub = self.run(
            self.js.subscribe("actors.dead.>", cb=self._on_dead, ordered_consumer=True)
        )
        self.kv = self.run(self.js.key_value("actors_results"))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _on_dead(self, msg: Any) -> None:
        mark = (msg.headers or {}).get(MARK)
        if mark is not None:
            self.dead_marks.add(mark)

    def publish(self, subject: str, data: bytes, headers: dict[str, str]) -> bool:
        """True if JetStream stored the message (not refused, not a duplicate)."""
        size = len(data) + sum(len(k) + len(v) + 4 for k, v in headers.items()) + 16
        if size >= self.nc.max_payload:
            return False  # the server would close *our* connection; not the worker's problem

        async def go() -> bool:
            try:
                ack = await self.js.publish(subject, data, headers=headers, timeout=5)
            except Exception:
                return False
            return not ack.duplicate

        return bool(self.run(go()))

    def has_record(self, task_id: str) -> bool:
        async def go() -> bool:
            try:
                await self.kv.get(task_id)
            except Exception:
                return False
            return True

        return bool(self.run(go()))

    def pump(self, seconds: float) -> None:
        """Let the loop deliver dead letters for a moment."""
        self.run(asyncio.sleep(seconds))

    def close(self) -> None:
        self.run(self._sub.unsubscribe())
        self.run(self.nc.close())
        self.loop.close()


@pytest.fixture
def fuzz_worker(worker_process: Callable[..., Any], tmp_path: Path) -> Iterator[Any]:
    runs = tmp_path / "runs.txt"
    runs.touch()
    process = worker_process(
        "tests.apps.fuzz:app",
        "--concurrency",
        "8",
        **{
            RUNS_ENV: str(runs),
            "ACTORS_UNROUTED_GRACE": "0.5",
            "ACTORS_ACK_WAIT": "5",
            "ACTORS_MAX_DISCONNECTED": "5",
        },
    )
    process.runs_file = runs
    yield process


@pytest.fixture
def fuzz_env(
    fuzz_worker: Any, nats_server: EmbeddedServer, make_app: Callable[..., App]
) -> Iterator[dict[str, Any]]:
    """What the hypothesis examples of one test share: one server, worker and publisher."""
    app = make_app("fuzz-client")
    assert app.send_task("fuzz.ping").get(timeout=15) == "pong"  # the worker is warmed up
    publisher = Publisher(nats_server.url)
    yield {"publisher": publisher, "app": app, "seq": 0, "rss_kb": _rss_kb(fuzz_worker.pid)}
    publisher.close()


def _runs(path: Path) -> list[tuple[str, int]]:
    out = []
    for line in path.read_text().splitlines():
        task_id, _, delivered = line.rpartition(" ")
        out.append((task_id, int(delivered)))
    return out


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _body_id(data: bytes, headers: dict[str, str]) -> str | None:
    try:
        kind = headers.get("Content-Type", "")
        body = json.loads(data) if "json" in kind.lower() else msgpack.unpackb(data, raw=False)
    except Exception:
        return None
    task_id = body.get("id") if isinstance(body, dict) else None
    return task_id if isinstance(task_id, str) else None


_SETTINGS = {
    "deadline": None,
    "database": None,
    "phases": [Phase.explicit, Phase.generate],  # shrinking re-runs the live system for minutes
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
}
batches = st.lists(messages(), min_size=1, max_size=12)


@settings(max_examples=20, derandomize=True, **_SETTINGS)  # type: ignore[arg-type]
@given(batch=batches)
def test_hostile_messages_never_disable_the_worker(
    batch: list[tuple[str, bytes, dict[str, str]]], fuzz_worker: Any, fuzz_env: dict[str, Any]
) -> None:
    check_batch(batch, fuzz_worker, fuzz_env)


@pytest.mark.slow
@pytest.mark.timeout(600)
@settings(max_examples=150, **_SETTINGS)  # type: ignore[arg-type]
@given(batch=batches)
def test_hostile_messages_random_long_run(
    batch: list[tuple[str, bytes, dict[str, str]]], fuzz_worker: Any, fuzz_env: dict[str, Any]
) -> None:
    check_batch(batch, fuzz_worker, fuzz_env)


def check_batch(
    batch: list[tuple[str, bytes, dict[str, str]]], fuzz_worker: Any, state: dict[str, Any]
) -> None:
    """Publish one batch raw, wait until each stored message is accounted for, check health."""
    publisher: Publisher = state["publisher"]
    stored: dict[str, tuple[str, bytes, dict[str, str]]] = {}
    for subject, data, headers in batch:
        state["seq"] += 1
        mark = str(state["seq"])
        if publisher.publish(subject, data, {**headers, MARK: mark}):
            stored[mark] = (subject, data, headers)

    missing = list(stored)

    def unaccounted() -> list[str]:
        ran = {task_id for task_id, _ in _runs(fuzz_worker.runs_file)}
        missing[:] = [m for m in missing if not _accounted(m, stored[m], publisher, ran)]
        if missing:
            publisher.pump(0.1)  # the publisher's loop takes in dead letters meanwhile
        return [_short(stored[m]) for m in missing]

    eventually(
        unaccounted,
        until=lambda lost: not lost,
        what="every stored message to run, be recorded or be dead-lettered",
        timeout=30,
        interval=0,
    )

    assert fuzz_worker.process.poll() is None, fuzz_worker.output()
    assert state["app"].send_task("fuzz.ping").get(timeout=15) == "pong"
    assert fuzz_worker.count("nats.disconnected") == 0, fuzz_worker.output()
    redelivered = [(i, n) for i, n in _runs(fuzz_worker.runs_file) if n > 1]
    assert not redelivered, f"ran again through redelivery: {redelivered}"
    grown_mb = (_rss_kb(fuzz_worker.pid) - state["rss_kb"]) / 1024
    assert grown_mb < 150, f"worker RSS grew by {grown_mb:.0f} MB"
    longest = max((len(line) for line in fuzz_worker.log_file.read_text().splitlines()), default=0)
    assert longest < 16_000, f"a log line of {longest} characters"


def _short(message: tuple[str, bytes, dict[str, str]]) -> str:
    subject, data, headers = message
    return f"{subject} {data[:200]!r}{'...' if len(data) > 200 else ''} {headers}"


def _accounted(
    mark: str, message: tuple[str, bytes, dict[str, str]], publisher: Publisher, ran: set[str]
) -> bool:
    if mark in publisher.dead_marks:
        return True
    task_id = _body_id(message[1], message[2])
    if task_id is None:
        return False
    return task_id in ran or publisher.has_record(task_id)
