"""countdown/eta/expires fields and schedule routing (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actors import App, ConfigurationError
from actors.wire.message import TaskMessage
from actors.wire.timing import resolve_eta, resolve_expires, route

NOW = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_countdown_and_eta_become_rfc3339_utc() -> None:
    assert resolve_eta(1.5, None, NOW) == "2030-01-02T03:04:07.178000Z"
    assert resolve_eta(timedelta(minutes=1), None, NOW) == "2030-01-02T03:05:05.678000Z"
    eta = datetime(2031, 1, 1, tzinfo=UTC)
    assert resolve_eta(None, eta, NOW) == "2031-01-01T00:00:00Z"
    assert resolve_eta(None, None, NOW) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        resolve_eta(None, datetime(2031, 1, 1), NOW)


def test_expires_counts_from_now() -> None:
    assert resolve_expires(10, NOW) == "2030-01-02T03:04:15.678000Z"
    assert resolve_expires(NOW, NOW) == "2030-01-02T03:04:05.678000Z"
    assert resolve_expires(None, NOW) is None


def test_future_eta_routes_to_a_schedule_subject() -> None:
    message = TaskMessage(id="abc", task="t.add", eta="2030-01-02T03:04:06Z")
    subject, headers = route(message, "abc", NOW)
    assert subject == "actors.sched.abc"
    assert headers["Nats-Schedule"] == "@at 2030-01-02T03:04:06Z"
    assert headers["Nats-Schedule-Target"] == "actors.due.t.add"
    assert headers["Nats-Msg-Id"] == "abc"
    retried = TaskMessage(id="abc", task="t.add", eta="2030-01-02T03:04:06Z", retries=2)
    assert route(retried, "abc:2", NOW)[0] == "actors.sched.abc.2"


def test_past_eta_and_no_eta_go_straight_to_the_actor() -> None:
    past = TaskMessage(id="abc", task="t.add", eta="2030-01-02T03:04:05Z")
    subject, headers = route(past, "abc", NOW)
    assert subject == "actors.task.t.add"
    assert "Nats-Schedule" not in headers
    assert route(TaskMessage(id="x", task="t.add"), "x", NOW)[0] == "actors.task.t.add"


def test_ttl_only_when_no_result_is_stored() -> None:
    expires = "2030-01-02T03:04:15.1Z"
    stored = TaskMessage(id="a", task="t", expires=expires)
    assert "Nats-TTL" not in route(stored, "a", NOW)[1]
    unstored = TaskMessage(id="a", task="t", expires=expires, ignore_result=True)
    assert route(unstored, "a", NOW)[1]["Nats-TTL"] == "10s"


def test_actor_options_are_validated() -> None:
    app = App("opts")
    with pytest.raises(ConfigurationError, match="rate_limit"):
        app.actor(name="o.a", rate_limit="lots")(lambda: None)
    with pytest.raises(ConfigurationError, match="pool"):
        app.actor(name="o.b", pool="fork")(lambda: None)
    with pytest.raises(ConfigurationError, match="autoretry_for"):
        app.actor(name="o.c", autoretry_for=("KeyError",))(lambda: None)
    actor = app.actor(name="o.d", autoretry_for=KeyError, rate_limit="10/m")(lambda: None)
    assert actor.options.autoretry_for == (KeyError,)
    assert actor.options.rate_limit == "10/m"
