"""Running the language-neutral conformance fixtures of tests/conformance/ (see its README).

``run_case`` publishes one case's messages on a real nats-server where a worker serving
``tests.apps.conformance`` runs, then checks the expected outcome: result records, dead
letters, chord state and how often ``conformance.record`` ran. It fails with a message that
names the first outcome that did not hold.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext

FIXTURES = Path(__file__).resolve().parent.parent / "conformance"
NAMESPACE = uuid.UUID("6f1c5a0e-4b7d-4c4e-9a51-2f1d3c8b7e10")  # docs/protocol.md, derived ids
READY = ("SUCCESS", "FAILURE", "REVOKED")
DEFAULT_TIMEOUT = 10.0
_UUID5 = re.compile(r"\{uuid5:([^{}]*)\}")
T = TypeVar("T")


class Mismatch(AssertionError):
    """An expected outcome did not hold."""


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    """Every case of every fixture file, as ``("<file stem>:<case name>", case)``."""
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            out.append((f"{path.stem}:{case['name']}", case))
    return out


def expand(text: str) -> str:
    """Replace each ``{uuid5:<seed>}`` (innermost first) by the id derived from ``seed``."""
    while _UUID5.search(text):
        text = _UUID5.sub(lambda m: str(uuid.uuid5(NAMESPACE, m.group(1))), text)
    return text


def body_bytes(publish: dict[str, Any]) -> bytes:
    """The bytes a ``publish`` entry stands for (README: "Bodies")."""
    if "body_base64" in publish:
        data = base64.b64decode(publish["body_base64"])
    elif "body_text" in publish:
        data = publish["body_text"].encode()
    else:
        content_type = publish.get("headers", {}).get("Content-Type", "application/msgpack")
        media = content_type.split(";")[0].strip().lower()
        if media == "application/json":
            data = json.dumps(publish["body"]).encode()
        elif media == "application/msgpack":
            data = msgpack.packb(publish["body"], use_bin_type=True)
        else:
            raise ValueError(f"cannot encode a body as {content_type!r}: use body_base64")
    return data[: publish["truncate"]] if "truncate" in publish else data


class Observer:
    """What is stored on some subjects, as it arrives (ordered consumers from the start)."""

    def __init__(self, js: JetStreamContext, timeout: float) -> None:
        self.js = js
        self.timeout = timeout
        self.deadline = 0.0
        self.latest: dict[str, Msg] = {}
        self.dead: dict[int, Msg] = {}
        self.changed = asyncio.Condition()

    def start_clock(self) -> None:
        """Begin the case's timeout (call once everything is published)."""
        self.deadline = asyncio.get_running_loop().time() + self.timeout

    async def follow(self, subject: str) -> None:
        async def on_message(msg: Msg) -> None:
            if msg.subject.startswith("actors.dead."):
                self.dead[int((msg.headers or {}).get("Actors-Dead-Sequence", "0"))] = msg
            else:
                self.latest[msg.subject] = msg
            async with self.changed:
                self.changed.notify_all()

        await self.js.subscribe(subject, cb=on_message, ordered_consumer=True)

    async def wait_for(self, found: Callable[[], T | None], what: Callable[[], str]) -> T:
        """Wait until ``found()`` is not None and return it; Mismatch after the case's timeout."""
        try:
            async with asyncio.timeout_at(self.deadline), self.changed:
                await self.changed.wait_for(lambda: found() is not None)
        except TimeoutError:
            raise Mismatch(f"no {what()} within the case's {self.timeout:g}s") from None
        value = found()
        assert value is not None
        return value

    def record(self, task_id: str) -> dict[str, Any] | None:
        msg = self.latest.get(f"$KV.actors_results.{task_id}")
        if msg is None or (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
            return None
        record: dict[str, Any] = msgpack.unpackb(msg.data, raw=False)
        return record

    def value(self, subject: str) -> bytes | None:
        msg = self.latest.get(subject)
        return None if msg is None else msg.data


def check_record(record: dict[str, Any], expected: dict[str, Any], task_id: str) -> None:
    problems = []
    if record.get("status") != expected["status"]:
        problems.append(f"status {record.get('status')!r}, expected {expected['status']!r}")
    if "result" in expected and record.get("result") != expected["result"]:
        problems.append(f"result {record.get('result')!r}, expected {expected['result']!r}")
    error = record.get("error") or {}
    if "error_type" in expected and error.get("type") != expected["error_type"]:
        problems.append(f"error type {error.get('type')!r}, expected {expected['error_type']!r}")
    needle = expected.get("error_message")
    if needle is not None and needle.lower() not in str(error.get("message", "")).lower():
        problems.append(f"error message {error.get('message')!r} lacks {needle!r}")
    for name, value in expected.get("fields", {}).items():
        if record.get(name) != value:
            problems.append(f"field {name!r} is {record.get(name)!r}, expected {value!r}")
    if problems:
        raise Mismatch(f"record {task_id}: {'; '.join(problems)} (record: {record!r})")


def check_dead(msg: Msg, expected: dict[str, Any], published: tuple[str, bytes]) -> None:
    headers = msg.headers or {}
    subject, body = published
    problems = []
    if msg.subject != expected["subject"]:
        problems.append(f"on {msg.subject!r}, expected {expected['subject']!r}")
    reason = headers.get("Actors-Dead-Reason", "")
    if expected.get("reason") and expected["reason"].lower() not in reason.lower():
        problems.append(f"reason {reason!r} lacks {expected['reason']!r}")
    if headers.get("Actors-Dead-Subject") != subject:
        problems.append(f"Actors-Dead-Subject {headers.get('Actors-Dead-Subject')!r}")
    if "Actors-Dead-Truncated" not in headers and msg.data != body:
        problems.append("body differs from the message published")
    if problems:
        raise Mismatch(f"dead letter of publish {expected['publish']}: {'; '.join(problems)}")


async def run_case(case: dict[str, Any], url: str, runs_file: Path) -> None:
    """Publish the case's messages and check its expected outcome; raise Mismatch if not."""
    timeout = float(case.get("timeout", DEFAULT_TIMEOUT))
    expect = case["expect"]
    nc = await nats.connect(url, name="conformance-runner")
    try:
        js = nc.jetstream()
        observer = Observer(js, timeout)
        await observer.follow("$KV.actors_results.>")
        await observer.follow("actors.dead.>")
        for kv in expect.get("kv", []):
            await observer.follow(f"$KV.{kv['bucket']}.{expand(kv['key'])}")
        for counter in expect.get("counters", []):
            await observer.follow(expand(counter["subject"]))

        published: list[tuple[str, bytes]] = []
        sequences: list[int] = []
        for entry in case["publish"]:
            body = body_bytes(entry)
            ack = await js.publish(entry["subject"], body, headers=entry.get("headers") or None)
            published.append((entry["subject"], body))
            sequences.append(ack.seq)
        observer.start_clock()

        await check_outcome(observer, expect, published, sequences)
        await check_after(observer, expect, sequences, runs_file)
    finally:
        await nc.close()


async def check_outcome(
    observer: Observer,
    expect: dict[str, Any],
    published: list[tuple[str, bytes]],
    sequences: list[int],
) -> None:
    """The outcomes that arrive: records, dead letters, chord keys and counters."""
    for expected in expect.get("records", []):
        if expected.get("absent"):
            continue
        task_id = expand(expected["id"])

        def ready(
            task_id: str = task_id, wanted: str = expected["status"]
        ) -> dict[str, Any] | None:
            record = observer.record(task_id)  # a final record, or the custom state expected
            status = record.get("status") if record is not None else None
            return record if status in READY or (status == wanted not in READY) else None

        record = await observer.wait_for(
            ready, lambda t=task_id: f"finished record for {t} (latest: {observer.record(t)!r})"
        )
        check_record(record, expected, task_id)
    for expected in expect.get("dead_letters", []):
        seq = sequences[expected["publish"]]
        what = f"dead letter of publish {expected['publish']} (sequence {seq})"
        msg = await observer.wait_for(lambda seq=seq: observer.dead.get(seq), lambda w=what: w)
        check_dead(msg, expected, published[expected["publish"]])
    for kv in expect.get("kv", []):
        subject = f"$KV.{kv['bucket']}.{expand(kv['key'])}"
        want = kv.get("text", kv.get("msgpack"))

        def matches(subject: str = subject, kv: dict[str, Any] = kv) -> bool | None:
            data = observer.value(subject)
            if data is None:
                return None
            if "text" in kv:
                return data == kv["text"].encode() or None
            return msgpack.unpackb(data, raw=False) == kv["msgpack"] or None

        await observer.wait_for(
            matches,
            lambda s=subject, w=want: f"{s} = {w!r} (latest: {observer.value(s)!r})",
        )
    for counter in expect.get("counters", []):
        subject = expand(counter["subject"])

        def total(subject: str = subject) -> str | None:
            data = observer.value(subject)
            return None if data is None else str(json.loads(data).get("val"))

        await observer.wait_for(
            lambda s=subject, w=counter["val"]: True if total(s) == w else None,
            lambda s=subject, w=counter["val"]: f"counter {s} val {w!r} (latest: {total(s)!r})",
        )


async def check_after(
    observer: Observer, expect: dict[str, Any], sequences: list[int], runs_file: Path
) -> None:
    """What must hold once everything expected arrived: absences and run counts."""
    for expected in expect.get("records", []):
        task_id = expand(expected["id"])
        if expected.get("absent") and observer.record(task_id) is not None:
            raise Mismatch(f"record {task_id} exists: {observer.record(task_id)!r}")
    if "dead_letters" in expect:
        wanted = {sequences[d["publish"]] for d in expect["dead_letters"]}
        extra = [seq for seq in sequences if seq in observer.dead and seq not in wanted]
        if extra:
            reasons = [(observer.dead[s].headers or {}).get("Actors-Dead-Reason") for s in extra]
            raise Mismatch(f"unexpected dead letters (sequences {extra}): {reasons}")
    lines = runs_file.read_text().splitlines() if runs_file.exists() else []
    for tag, count in expect.get("runs", {}).items():
        if lines.count(tag) != count:
            raise Mismatch(
                f"conformance.record ran {lines.count(tag)} times for {tag!r}, expected {count}"
            )
