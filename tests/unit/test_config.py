"""Settings from arguments and ACTORS_* environment variables."""

from __future__ import annotations

from datetime import timedelta

import pytest

from actors import ConfigurationError
from actors.config import DEFAULT_NATS_URL, Settings, redact_url


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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://alice:pw1@host:4222", "nats://alice:***@host:4222"),
        ("nats://s3cret@host:4222", "nats://***@host:4222"),
        ("tls://a:b@h1:1,nats://h2:2", "tls://a:***@h1:1,nats://h2:2"),
        ("a:p%40ss@host", "a:***@host"),
        ("nats://host:4222/x@y", "nats://host:4222/x@y"),
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
    ],
)
def test_redact_url_hides_passwords_and_tokens(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_settings_repr_and_redact_hide_every_secret() -> None:
    settings = Settings.build(
        {"nats_url": "nats://alice:p%40ss@h:1,nats://tok3n@h:2", "nats_password": "pw-9"},
        environ={"ACTORS_NATS_TOKEN": "tk-7"},
    )
    for text in (repr(settings), settings.redact("p%40ss p@ss tok3n pw-9 tk-7")):
        for secret in ("p%40ss", "p@ss", "tok3n", "pw-9", "tk-7"):
            assert secret not in text
