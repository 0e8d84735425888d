"""The monitor's pure parts: the task index, the credential checks, input checks, drawings."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import ConfigurationError
from actors.monitor import checks, drawing
from actors.monitor.auth import MonitorSettings
from actors.monitor.checks import BadInput
from actors.monitor.index import STATES, TaskFilter, TaskIndex
from actors.wire import events

KINDS = [k for k in events.KINDS if k.startswith("task-")]


def event(kind: str, task_id: str, stamp: float, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "uuid": task_id, "timestamp": stamp, "hostname": "1@h", **fields}


def test_a_late_event_does_not_turn_a_finished_task_back() -> None:
    index = TaskIndex()
    index.add(event(events.TASK_SUCCEEDED, "a", 10.0, name="t.add", runtime=0.5, result="3"))
    index.add(event(events.TASK_RECEIVED, "a", 9.0, name="t.add", args="(1, 2)"))
    index.add(event(events.TASK_STARTED, "a", 9.5))
    task = index.get("a")
    assert task is not None
    assert (task.state, task.args, task.result, task.runtime) == ("SUCCESS", "(1, 2)", "3", 0.5)
    assert [s["type"] for s in task.timeline] == [
        events.TASK_RECEIVED,
        events.TASK_STARTED,
        events.TASK_SUCCEEDED,
    ]
    assert index.states()["SUCCESS"] == 1


def test_a_late_task_sent_from_a_client_with_a_fast_clock_changes_nothing() -> None:
    index = TaskIndex()
    index.add(event(events.TASK_RECEIVED, "a", 10.0))
    index.add(event(events.TASK_SUCCEEDED, "a", 10.1))
    index.add(event(events.TASK_SENT, "a", 10.2))
    task = index.get("a")
    assert task is not None and task.state == "SUCCESS"
    assert task.timeline[0]["type"] == events.TASK_SENT
    index.add(event(events.TASK_SENT, "b", 10.0))
    index.add(event(events.TASK_RETRIED, "b", 9.0))
    index.add(event(events.TASK_RECEIVED, "b", 9.5))
    assert index.get("b").state == "RECEIVED"  # type: ignore[union-attr]


def test_the_index_forgets_the_oldest_tasks_beyond_its_bound() -> None:
    index = TaskIndex(max_tasks=3)
    for n in range(5):
        index.add(event(events.TASK_FAILED, f"t{n}", float(n), name="t.x"))
    assert list(index.tasks) == ["t2", "t3", "t4"]
    assert index.states()["FAILURE"] == 3
    assert index.forgotten == 2


def test_pages_and_filters_newest_first() -> None:
    index = TaskIndex()
    for n in range(10):
        kind = events.TASK_FAILED if n % 2 else events.TASK_SUCCEEDED
        index.add(event(kind, f"id{n}", 100.0 + n, name="t.odd" if n % 2 else "t.even"))
    found, total = index.page(TaskFilter(state="FAILURE"), 1, 2)
    assert total == 5
    assert [t.id for t in found] == ["id7", "id5"]
    found, total = index.page(TaskFilter(name="even", since=104.0), 0, 10)
    assert [t.id for t in found] == ["id8", "id6", "id4"]
    assert index.page(TaskFilter(search="id3"), 0, 10)[1] == 1


def test_outcomes_are_counted_per_minute() -> None:
    index = TaskIndex()
    index.add(event(events.TASK_SUCCEEDED, "a", 600.0, name="t.x"))
    index.add(event(events.TASK_FAILED, "b", 610.0, name="t.x"))
    index.add(event(events.TASK_RETRIED, "c", 670.0, name="t.y"))
    rows = index.outcomes(now=700.0, minutes=3)
    assert [(r["minute"], r["succeeded"], r["failed"], r["retried"]) for r in rows] == [
        (540, 0, 0, 0),
        (600, 1, 1, 0),
        (660, 0, 0, 1),
    ]


def test_a_chord_body_shows_its_members() -> None:
    index = TaskIndex()
    for n in range(3):
        index.add(event(events.TASK_RECEIVED, f"m{n}", 1.0, name="t.add", chord="c1"))
    index.add(event(events.TASK_RECEIVED, "body", 2.0, name="t.sum", parent_id="m2", root_id="m2"))
    body = index.get("body")
    assert body is not None
    flow = [
        t.summary() | {"parent_id": t.parent_id, "chord": t.chord} for t in index.workflow(body)
    ]
    assert {t["id"] for t in flow} == {"m0", "m1", "m2", "body"}
    graph = drawing.workflow_graph(flow, "body")
    assert len(graph["edges"]) == 3 and all(e["dashed"] for e in graph["edges"])


@given(
    st.lists(
        st.tuples(st.sampled_from(KINDS), st.sampled_from("abcde"), st.floats(0, 100)),
        max_size=60,
    )
)
def test_state_counts_always_add_up(steps: list[tuple[str, str, float]]) -> None:
    index = TaskIndex(max_tasks=3)
    for kind, task_id, stamp in steps:
        index.add(event(kind, task_id, stamp))
    assert sum(index.states().values()) == len(index) <= 3
    assert set(index.states()) == set(STATES)


def test_no_credentials_means_loopback_only() -> None:
    with pytest.raises(ConfigurationError, match="without authentication"):
        MonitorSettings.build("0.0.0.0", env={})
    assert not MonitorSettings.build("127.0.0.1", env={}).auth_enabled
    assert MonitorSettings.build("0.0.0.0", env={"ACTORS_MONITOR_TOKEN": "t"}).auth_enabled
    with pytest.raises(ConfigurationError, match="both"):
        MonitorSettings.build(env={"ACTORS_MONITOR_USER": "u"})


def test_credentials_and_csrf_token() -> None:
    env = {
        "ACTORS_MONITOR_USER": "u",
        "ACTORS_MONITOR_PASSWORD": "pw-secret",
        "ACTORS_MONITOR_TOKEN": "tok-secret",
    }
    settings = MonitorSettings.build(env=env)
    good = "Basic " + base64.b64encode(b"u:pw-secret").decode()
    assert settings.check(good) == "basic"
    assert settings.check("Bearer tok-secret") == "bearer"
    for bad in (None, "", "Bearer x", "Basic " + base64.b64encode(b"u:x").decode(), "Basic !!"):
        assert settings.check(bad) is None
    assert settings.csrf_ok(settings.csrf_token())
    assert not settings.csrf_ok("x") and not settings.csrf_ok(None)
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    "params",
    [
        {"state": "BOGUS"},
        {"page": "-1"},
        {"per_page": "5000"},
        {"name": "<script>"},
        {"q": "a b"},
        {"since": "yesterday"},
        {"last": "1e9"},
    ],
)
def test_hostile_query_parameters_are_refused(params: dict[str, str]) -> None:
    with pytest.raises(BadInput):
        checks.task_filter(params, 0.0)
        checks.number(params, "page", 1, 1, 10)
        checks.number(params, "per_page", 50, 1, checks.MAX_PER_PAGE)


def test_rates_and_flags() -> None:
    assert checks.rate("10/s") == "10/s"
    assert checks.rate("none") is None
    for bad in ("10", "x/s", "10/s;x"):
        with pytest.raises(BadInput):
            checks.rate(bad)
    with pytest.raises(BadInput):
        checks.task_name("no spaces")
