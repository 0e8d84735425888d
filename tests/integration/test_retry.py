"""Retries: self.retry, max_retries, autoretry_for with backoff, throws."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from actors import App, MaxRetriesExceeded
from actors.wire.record import FAILURE, RETRY, SUCCESS, ResultRecord
from tests.apps.basic import CustomError
from tests.apps.semantics import register
from tests.helpers import aeventually


async def record_of(app: App, task_id: str) -> ResultRecord | None:
    connection = await app.client.connection()
    return await connection.results.fetch(task_id)


async def test_retry_runs_again_with_same_id_and_incremented_retries(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["flaky"].aapply_async((3,), task_id="flaky-1")
    assert await result.aget(timeout=15) == 3
    record = await record_of(app, "flaky-1")
    assert record is not None and record.status == SUCCESS and record.retries == 3


async def test_state_is_retry_while_the_next_attempt_waits(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["later"].adelay(30)
    await aeventually(result.astate, until=lambda state: state == RETRY, what="state RETRY")
    record = await record_of(app, result.id)
    assert record is not None and record.status == RETRY and record.retries == 1
    assert record.result and "eta" in record.result


async def test_retry_survives_a_worker_restart(app: App, worker) -> None:
    tasks = register(app)
    first = await worker(app)
    result = await tasks["later"].adelay(1.5)
    await aeventually(result.astate, until=lambda state: state == RETRY, what="state RETRY")
    await first.stop()
    await worker(app)
    assert await result.aget(timeout=15) == 1


async def test_retry_can_replace_the_arguments(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    assert await (await tasks["newargs"].adelay(0)).aget(timeout=10) == 3


async def test_past_max_retries_raises_max_retries_exceeded(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["forever"].adelay(False)
    with pytest.raises(MaxRetriesExceeded, match="max_retries=2"):
        await result.aget(timeout=10)
    record = await record_of(app, result.id)
    assert record is not None and record.status == FAILURE and record.retries == 2


async def test_past_max_retries_reraises_the_given_exception(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    with pytest.raises(CustomError, match="gave up"):
        await (await tasks["forever"].adelay(True)).aget(timeout=10)


async def test_autoretry_for_retries_with_backoff_until_success(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    with capture_logs() as logs:
        assert await (await tasks["auto"].adelay(2)).aget(timeout=10) == 2
    retries = [e for e in logs if e["event"] == "task.retry"]
    assert len(retries) == 2
    assert "KeyError" in retries[0]["error"]


async def test_autoretry_gives_up_with_the_original_error(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["auto"].adelay(99)
    with pytest.raises(KeyError, match="attempt 3"):
        await result.aget(timeout=10)
    record = await record_of(app, result.id)
    assert record is not None and record.retries == 3  # retry_kwargs max_retries=3


async def test_throws_are_failures_logged_without_traceback(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    with capture_logs() as logs:
        with pytest.raises(CustomError):
            await (await tasks["expected"].adelay()).aget(timeout=10)
        with pytest.raises(CustomError):
            await (await tasks["pboom"].adelay()).aget(timeout=20)
    failed = [e for e in logs if e["event"] == "task.failed"]
    assert failed[0]["log_level"] == "info" and "exc_info" not in failed[0]
    assert failed[1]["log_level"] == "error" and "exc_info" in failed[1]
