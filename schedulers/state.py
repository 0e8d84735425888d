"""The beat KV bucket: stored entries and switches (``conf.<key>``) and tick states
(``tick.<key>``), with compare-and-set writes and one watch per beat. Wraps nats-py errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api
from nats.js.kv import KeyValue

from actors.app import App
from actors.errors import BrokerUnavailable, ProtocolError
from actors.nats.connection import NATS_ERRORS
from actors.wire.message import decode, encode
from schedulers.entries import Override
from schedulers.policy import TickState

BUCKET = "actors_beat"
CONF_PREFIX = "conf."
TICK_PREFIX = "tick."

_DELETED = ("DEL", "PURGE")


class BeatBucket:
    """Reads and writes of the beat bucket over the app's connection for this event loop."""

    def __init__(self, kv: KeyValue, js: Any) -> None:
        self._kv = kv
        self._js = js

    @classmethod
    async def open(cls, app: App) -> BeatBucket:
        """Connect (if needed) and create the bucket if it does not exist."""
        connection = await app.client.connection()
        js = connection.broker.js
        config = api.KeyValueConfig(
            bucket=BUCKET,
            history=1,
            replicas=app.conf.stream_replicas,
            storage=api.StorageType.FILE,
            direct=True,
        )
        try:
            try:
                kv = await js.create_key_value(config)
            except nats.js.errors.BadRequestError:  # exists with another configuration
                kv = await js.key_value(BUCKET)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot open bucket {BUCKET}: {exc!r}") from exc
        return cls(kv, js)

    # -- conf records ------------------------------------------------------------------------

    async def override(self, key: str) -> tuple[Override | None, int]:
        """The record under ``conf.<key>`` and its revision (0 when absent)."""
        value, revision = await self._get(CONF_PREFIX + key)
        return (Override.from_dict(value) if value is not None else None), revision

    async def put_override(self, key: str, override: Override, revision: int) -> bool:
        """Write ``conf.<key>`` if its revision is still ``revision`` (0: if absent)."""
        return await self._cas(CONF_PREFIX + key, override.to_dict(), revision)

    async def overrides(self) -> dict[str, Override]:
        """Every record under ``conf.``, by key."""
        out: dict[str, Override] = {}
        try:
            watcher = await self._kv.watch(CONF_PREFIX + ">")
            try:
                while (entry := await watcher.updates(timeout=10)) is not None:  # type: ignore[no-untyped-call]
                    if entry.operation not in _DELETED and entry.value:
                        out[entry.key[len(CONF_PREFIX) :]] = Override.from_dict(
                            decode(entry.value, None)
                        )
            finally:
                await watcher.stop()  # type: ignore[no-untyped-call]
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot list {BUCKET}: {exc!r}") from exc
        return out

    async def delete(self, key: str) -> None:
        """Delete an entry's record and its tick state."""
        try:
            await self._kv.delete(CONF_PREFIX + key)
            await self._kv.delete(TICK_PREFIX + key)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot delete {key} from {BUCKET}: {exc!r}") from exc

    async def watch(
        self, on_change: Callable[[str, Override | None], None], timeout: float = 10.0
    ) -> Callable[[], Any]:
        """Call ``on_change(key, record or None)`` for every record now and every change later.

        Returns once the current records were delivered; the result stops the watch. One
        ordered consumer with heartbeats, so it recovers by itself after a reconnect.
        """
        loaded = asyncio.Event()
        prefix = f"$KV.{BUCKET}.{CONF_PREFIX}"

        async def on_msg(msg: Msg) -> None:
            headers = msg.headers or {}
            deleted = headers.get("KV-Operation") in _DELETED or "Nats-Marker-Reason" in headers
            key = msg.subject[len(prefix) :]
            try:
                record = None if deleted else Override.from_dict(decode(msg.data, None))
            except (ProtocolError, AttributeError, TypeError, ValueError):
                record = None
            on_change(key, record)
            if msg.metadata.num_pending == 0:
                loaded.set()

        try:
            sub = await self._js.subscribe(
                prefix + ">",
                stream=f"KV_{BUCKET}",
                cb=on_msg,
                ordered_consumer=True,
                idle_heartbeat=2.0,
                deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                inactive_threshold=300.0,
            )
            info = await sub.consumer_info()
            if info.num_pending == 0 and sub.delivered == 0:
                loaded.set()
            await asyncio.wait_for(loaded.wait(), timeout)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot watch {BUCKET}: {exc!r}") from exc

        async def stop() -> None:
            with contextlib.suppress(*NATS_ERRORS):
                await sub.unsubscribe()

        return stop

    # -- tick states -------------------------------------------------------------------------

    async def tick_state(self, key: str) -> tuple[TickState | None, int]:
        """The tick state of an entry and its revision (None, 0 when absent or unreadable)."""
        value, revision = await self._get(TICK_PREFIX + key)
        if value is None:
            return None, revision
        try:
            return TickState.from_dict(value), revision
        except (AttributeError, TypeError, ValueError, ProtocolError):
            return None, revision

    async def put_tick_state(self, key: str, state: TickState, revision: int) -> int | None:
        """Write a tick state if the revision is still ``revision``; the new revision or None."""
        return await self._cas_revision(TICK_PREFIX + key, state.to_dict(), revision)

    # -- plumbing ----------------------------------------------------------------------------

    async def _get(self, key: str) -> tuple[Any, int]:
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None, 0
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot read {BUCKET}/{key}: {exc!r}") from exc
        try:
            return decode(entry.value or b"", None), entry.revision or 0
        except ProtocolError:
            return None, entry.revision or 0

    async def _cas(self, key: str, value: dict[str, Any], revision: int) -> bool:
        return await self._cas_revision(key, value, revision) is not None

    async def _cas_revision(self, key: str, value: dict[str, Any], revision: int) -> int | None:
        data = encode(value)
        try:
            if revision:
                return int(await self._kv.update(key, data, last=revision))
            return int(await self._kv.create(key, data))
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            return None
        except nats.js.errors.APIError as exc:
            if exc.err_code in (10071, 10164):  # wrong last sequence
                return None
            raise BrokerUnavailable(f"cannot write {BUCKET}/{key}: {exc!r}") from exc
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot write {BUCKET}/{key}: {exc!r}") from exc
