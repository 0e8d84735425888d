"""Every error the library raises is an ActorsError; where Python code expects a builtin
(ValueError for a bad value, TypeError for a wrong type) it is that too."""

from __future__ import annotations

import pytest

import actors
from actors import ActorsError, App, ConfigurationError, ConfigurationTypeError
from actors.canvas import group
from actors.log import configure_logging
from schedulers import crontab
from schedulers.schedules import Interval, schedule_from_dict


def test_every_exported_exception_is_an_actors_error() -> None:
    exported = [getattr(actors, name) for name in actors.__all__]
    errors = [kind for kind in exported if isinstance(kind, type) and issubclass(kind, Exception)]
    assert len(errors) > 10
    assert all(issubclass(kind, ActorsError) for kind in errors), errors


@pytest.mark.parametrize(
    ("call", "builtin"),
    [
        (lambda: Interval(-1), ValueError),
        (lambda: Interval("soon"), TypeError),
        (lambda: crontab(minute="61"), ValueError),
        (lambda: schedule_from_dict({"type": "hourly"}), ValueError),
        (lambda: group(5), TypeError),
        (lambda: configure_logging("loud"), ValueError),
        (lambda: App("t").actor(bogus=1), ValueError),
    ],
)
def test_bad_values_raise_actors_errors_that_are_also_builtins(
    call: object, builtin: type[Exception]
) -> None:
    with pytest.raises(ActorsError) as caught:
        call()  # type: ignore[operator]
    assert isinstance(caught.value, builtin)
    assert isinstance(caught.value, ConfigurationError | ConfigurationTypeError)
