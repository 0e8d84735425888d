"""The beat KV bucket: stored entries and switches (``conf.<key>``) and tick states
(``tick.<key>``), with compare-and-set writes and one watch per beat.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from actors.app import App
from actors.errors import BrokerUnavailable, ProtocolError
from actors.nats.bucket import Bucket
from actors.nats.events import stream_exists
from actors.wire.message import decode, encode
from schedulers.entries import Override
from schedulers.policy import TickState

BUCKET = "actors_beat"
CONF_PREFIX = "conf."
TICK_PREFIX = "tick."

_LOAD_TIMEOUT = 10.0  # seconds to wait for the stored records when a watch starts


class BeatBucket:
    """Reads and writes of the beat bucket over the app's connection for this event loop."""

    def __init__(self, bucket: Bucket) -> None:
        self._bucket = bucket

    @classmethod
    async def open(cls, app: App) -> BeatBucket:
        """Connect (if needed) and create the bucket if it does not exist."""
        broker = (await app.client.connection()).broker
        await broker.streams.ensure_bucket(BUCKET)
        return cls(Bucket(broker, BUCKET))

    @classmethod
    async def find(cls, app: App) -> BeatBucket | None:
        """Connect (if needed) and look the bucket up, without creating it: None when no
        beat ever ran (for readers that may not create streams, such as a monitor)."""
        broker = (await app.client.connection()).broker
        bucket = Bucket(broker, BUCKET)
        return cls(bucket) if await stream_exists(broker, bucket.stream) else None

    # -- conf records ------------------------------------------------------------------------

    async def override(self, key: str) -> tuple[Override | None, int]:
        """The record under ``conf.<key>`` and its revision (0 when absent)."""
        value, revision = await self._get(CONF_PREFIX + key)
        return (Override.from_dict(value) if value is not None else None), revision

    async def put_override(self, key: str, override: Override, revision: int) -> bool:
        """Write ``conf.<key>`` if its revision is still ``revision`` (0: if absent)."""
        return await self._cas(CONF_PREFIX + key, override.to_dict(), revision) is not None

    async def overrides(self) -> dict[str, Override]:
        """Every record under ``conf.``, by key."""
        stored: dict[str, bytes | None] = {}

        async def collect(key: str, value: bytes | None) -> None:
            stored[key[len(CONF_PREFIX) :]] = value

        watch = await self._bucket.watch(
            collect, prefix=CONF_PREFIX[:-1], initial=True, timeout=_LOAD_TIMEOUT
        )
        await watch.stop()
        if not watch.loaded:
            raise BrokerUnavailable(
                f"cannot list {BUCKET}: records not loaded in {_LOAD_TIMEOUT:g}s"
            )
        return {
            key: Override.from_dict(decode(value, None)) for key, value in stored.items() if value
        }

    async def delete(self, key: str) -> None:
        """Delete an entry's record and its tick state."""
        await self._bucket.delete(CONF_PREFIX + key)
        await self._bucket.delete(TICK_PREFIX + key)

    async def watch(
        self, on_change: Callable[[str, Override | None], None], timeout: float = _LOAD_TIMEOUT
    ) -> Callable[[], Awaitable[None]]:
        """Call ``on_change(key, record or None)`` for every record now and every change later.

        Returns once the current records were delivered; the result stops the watch. One
        ordered consumer with heartbeats, so it recovers by itself after a reconnect.
        """

        async def on_value(key: str, value: bytes | None) -> None:
            try:
                record = None if value is None else Override.from_dict(decode(value, None))
            except (ProtocolError, AttributeError, TypeError, ValueError):
                record = None
            on_change(key[len(CONF_PREFIX) :], record)

        watch = await self._bucket.watch(
            on_value, prefix=CONF_PREFIX[:-1], initial=True, timeout=timeout
        )
        if not watch.loaded:
            await watch.stop()
            raise BrokerUnavailable(f"cannot watch {BUCKET}: records not loaded in {timeout:g}s")
        return watch.stop

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
        return await self._cas(TICK_PREFIX + key, state.to_dict(), revision)

    # -- plumbing ----------------------------------------------------------------------------

    async def _get(self, key: str) -> tuple[Any, int]:
        entry = await self._bucket.entry(key)
        if entry is None:
            return None, 0
        try:
            return decode(entry.value, None), entry.revision
        except ProtocolError:
            return None, entry.revision

    async def _cas(self, key: str, value: dict[str, Any], revision: int) -> int | None:
        data = encode(value)
        if revision:
            return await self._bucket.update(key, data, revision)
        return await self._bucket.create(key, data)
