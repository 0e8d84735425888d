"""countdown/eta/expires fields and where a message is published (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actors import App, ConfigurationError
from actors.signature import Hop
from actors.wire.message import TaskMessage
from actors.wire.timing import destination, time_field

NOW = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_seconds_and_datetimes_become_rfc3339_utc() -> None:
    assert time_field(1.5, NOW) == "2030-01-02T03:04:07.178000Z"
    assert time_field(10, NOW) == "2030-01-02T03:04:15.678000Z"
    assert time_field(timedelta(minutes=1), NOW) == "2030-01-02T03:05:05.678000Z"
    assert time_field(datetime(2031, 1, 1, tzinfo=UTC), NOW) == "2031-01-01T00:00:00Z"
    assert time_field(NOW, NOW) == "2030-01-02T03:04:05.678000Z"
    assert time_field("2031-01-01T00:00:00Z", NOW) == "2031-01-01T00:00:00Z"
    assert time_field(None, NOW) is None
    # A naive datetime is read in the app's time zone (UTC unless given), as Celery does.
    assert time_field(datetime(2031, 1, 1), NOW) == "2031-01-01T00:00:00Z"
    assert time_field(datetime(2031, 1, 1), NOW, "Europe/Paris") == "2030-12-31T23:00:00Z"


def test_naive_eta_and_expires_are_read_in_the_app_timezone() -> None:
    app = App("zoned", timezone="America/New_York")
    add = app.actor(name="t.add")(lambda x, y: x + y)
    message = add.message((1, 2), eta=datetime(2031, 7, 1, 12), expires=datetime(2031, 7, 2))
    assert message.eta == "2031-07-01T16:00:00Z"  # EDT is UTC-4
    assert message.expires == "2031-07-02T04:00:00Z"
    sig = add.s(1, 2).set(eta=datetime(2031, 1, 1, 12))  # EST, UTC-5
    assert sig.options["eta"] == "2031-01-01T17:00:00Z"
    sig.assign_ids()
    assert sig.messages([], [], Hop())[0].eta == "2031-01-01T17:00:00Z"


def test_countdown_wins_over_eta_and_expires_counts_from_now() -> None:
    app = App("times")
    add = app.actor(name="t.add")(lambda x, y: x + y)
    eta = datetime(2031, 1, 1, tzinfo=UTC)
    message = add.message((1, 2), countdown=timedelta(days=3650), eta=eta, expires=60)
    assert message.eta is not None and message.eta > "2035"
    assert message.expires is not None and message.expires < "2031"
    assert add.message((1, 2), eta=eta).eta == "2031-01-01T00:00:00Z"


def test_future_eta_routes_to_a_schedule_subject() -> None:
    message = TaskMessage(id="abc", task="t.add", eta="2030-01-02T03:04:06Z")
    subject, headers = destination(message, "abc", NOW)
    assert subject == "actors.sched.abc"
    assert headers["Nats-Schedule"] == "@at 2030-01-02T03:04:06Z"
    assert headers["Nats-Schedule-Target"] == "actors.due.t.add"
    assert headers["Nats-Msg-Id"] == "abc"
    retried = TaskMessage(id="abc", task="t.add", eta="2030-01-02T03:04:06Z", retries=2)
    assert destination(retried, "abc:2", NOW)[0] == "actors.sched.abc.2"


def test_past_eta_and_no_eta_go_straight_to_the_actor() -> None:
    past = TaskMessage(id="abc", task="t.add", eta="2030-01-02T03:04:05Z")
    subject, headers = destination(past, "abc", NOW)
    assert subject == "actors.task.t.add"
    assert "Nats-Schedule" not in headers
    assert destination(TaskMessage(id="x", task="t.add"), "x", NOW)[0] == "actors.task.t.add"


def test_ttl_only_when_no_result_is_stored() -> None:
    expires = "2030-01-02T03:04:15.1Z"
    stored = TaskMessage(id="a", task="t", expires=expires)
    assert "Nats-TTL" not in destination(stored, "a", NOW)[1]
    unstored = TaskMessage(id="a", task="t", expires=expires, ignore_result=True)
    assert destination(unstored, "a", NOW)[1]["Nats-TTL"] == "10s"


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
