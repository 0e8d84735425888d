"""Settings from arguments and ACTORS_* environment variables."""

from __future__ import annotations

from datetime import timedelta

import pytest

from actors import ConfigurationError
from actors.config import DEFAULT_NATS_URL, Settings


def test_defaults() -> None:
    settings = Settings.build({}, environ={})
    assert settings.nats_url is None
    assert settings.nats_servers == [DEFAULT_NATS_URL]
    assert settings.result_ttl == 86400.0
    assert settings.ack_wait == 30.0


def test_environment_is_parsed_by_type() -> None:
    settings = Settings.build(
        {},
        environ={
            "ACTORS_NATS_URL": "nats://a:1, nats://b:2",
            "ACTORS_RESULT_TTL": "60",
            "ACTORS_IGNORE_RESULT": "yes",
            "ACTORS_CONCURRENCY": "7",
            "ACTORS_NATS_CREDS": "/etc/x.creds",
        },
    )
    assert settings.nats_servers == ["nats://a:1", "nats://b:2"]
    assert settings.result_ttl == 60.0
    assert settings.ignore_result is True
    assert settings.concurrency == 7
    assert settings.nats_creds == "/etc/x.creds"


def test_arguments_win_over_environment() -> None:
    settings = Settings.build({"concurrency": 3}, environ={"ACTORS_CONCURRENCY": "9"})
    assert settings.concurrency == 3


def test_timedelta_becomes_seconds() -> None:
    settings = Settings.build({"result_ttl": timedelta(minutes=2)}, environ={})
    assert settings.result_ttl == 120.0


def test_unknown_setting_suggests_the_closest() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'result_ttl'"):
        Settings.build({"result_tll": 5}, environ={})
    settings = Settings.build({}, environ={})
    with pytest.raises(ConfigurationError, match="unknown setting"):
        settings.no_such_thing = 1


@pytest.mark.parametrize(
    ("name", "value"), [("ACTORS_CONCURRENCY", "many"), ("ACTORS_IGNORE_RESULT", "maybe")]
)
def test_bad_environment_values_say_what_to_fix(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.build({}, environ={name: value})


def test_update_sets_several() -> None:
    settings = Settings.build({}, environ={})
    settings.update({"ack_wait": 5}, shutdown_grace=2)
    assert (settings.ack_wait, settings.shutdown_grace) == (5, 2)
