"""Progress: custom states a running task stores (``update_state``), and following them.

A task stores ``{"status": "PROGRESS", "result": meta}`` under its id like any record
(docs/protocol.md, "Custom states"); the final record replaces it. Waiters follow the updates
on the connection's one KV watch (:meth:`ResultWaiter.listen`): no polling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.client.connection import Connection
from actors.client.result_waiter import ResultWaiter
from actors.nats.bucket import Bucket
from actors.wire import topology
from actors.wire.record import ResultRecord, check_custom_state

OnMessage = Callable[[dict[str, Any]], Any]
"""``get(on_message=...)``'s callback: gets Celery's meta map of each update."""


async def store_state(
    connection: Connection,
    task_id: str,
    task: str | None,
    state: str,
    meta: Any,
    retries: int = 0,
) -> None:
    """Store ``state`` (a custom state such as PROGRESS) with ``meta`` as the task's record.

    Raises ValueError for a state name that is not an uppercase token or is reserved, and
    TypeError when ``meta`` cannot be encoded.
    """
    record = ResultRecord(
        id=task_id, task=task, status=check_custom_state(state), result=meta, retries=retries
    )
    await Bucket(connection.broker, topology.RESULTS_BUCKET).put(task_id, record.to_bytes())


def meta(record: ResultRecord) -> dict[str, Any]:
    """Celery's meta map of a record: task_id, status, result, traceback, date_done, children."""
    return {
        "task_id": record.id,
        "status": record.status,
        "result": record.result if record.error is None else record.error,
        "traceback": record.traceback,
        "date_done": record.date_done,
        "children": list(record.children),
    }


async def follow(
    results: ResultWaiter, task_id: str, timeout: float | None, on_message: OnMessage
) -> ResultRecord:
    """Wait for ``task_id``'s final record, calling ``on_message`` with each update seen
    (the current one first, then each change, the final one last), once per update."""
    told: list[tuple[str, Any]] = []

    def tell(record: ResultRecord) -> None:
        key = (record.status, record.to_bytes())
        if told and told[-1] == key:
            return  # the same record, seen by the read and by the watch
        told.append(key)
        on_message(meta(record))

    stop = results.listen(task_id, tell)
    try:
        await results.start_watch(timeout)  # live before the read: no update falls between
        current = await results.fetch(task_id)
        if current is not None and not current.ready:
            tell(current)
        final = await results.wait(task_id, timeout)
        tell(final)  # once: a no-op when the watch already told it
        return final
    finally:
        stop()
