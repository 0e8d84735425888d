"""Registering actors: naming rules, options, local calls; the sync facade's guard rails."""

from __future__ import annotations

import asyncio
import types

import pytest

from actors import ActorsError, App, ConfigurationError, TaskNotRegistered


def add(x: int, y: int) -> int:
    return x + y


def test_default_name_is_module_and_function() -> None:
    app = App("a", nats_url="nats://127.0.0.1:1")
    registered = app.actor(add)
    assert registered.name == "tests.unit.test_app.add"
    assert app.registry[registered.name] is registered
    assert app.actor(add) is not registered  # re-registering the same function is allowed


def test_task_alias_and_options() -> None:
    app = App("a")

    @app.task(name="custom.name", ignore_result=True)
    async def work() -> None:
        return None

    assert work.name == "custom.name"
    assert work.is_async and work.ignore_result


def test_main_module_tasks_are_prefixed_with_the_app_name() -> None:
    app = App("billing")
    module = types.ModuleType("__main__")
    exec("def charge(x):\n    return x\n", module.__dict__)
    registered = app.actor(module.charge)
    assert registered.name == "billing.charge"


def test_two_functions_under_one_name_is_an_error() -> None:
    app = App("a")
    app.actor(name="dup.x")(lambda: 1)
    with pytest.raises(ConfigurationError, match="already registered"):

        @app.actor(name="dup.x")
        def other() -> int:
            return 2


def test_functions_in_functions_need_a_name() -> None:
    app = App("a")
    with pytest.raises(ConfigurationError, match="explicit name="):

        @app.actor
        def inner() -> None:
            return None


@pytest.mark.parametrize("name", ["has space", "dash-ed", "trailing.", "a..b", "star.*", ""])
def test_invalid_names_are_refused(name: str) -> None:
    app = App("a")
    with pytest.raises(ConfigurationError, match="invalid task name"):
        app.actor(name=name)(lambda: None)


def test_unknown_option_is_refused() -> None:
    app = App("a")
    with pytest.raises(ConfigurationError, match="unknown actor option"):
        app.actor(name="x.y", bogus=True)(lambda: None)


def test_local_call_runs_the_function_with_self_when_bound() -> None:
    app = App("a")

    @app.actor(name="t.bound", bind=True)
    def bound(self: object, x: int) -> tuple[object, int]:
        return self, x

    assert bound(3) == (bound, 3)


def test_get_actor_raises_for_unknown_names() -> None:
    with pytest.raises(TaskNotRegistered, match="'nope' is not registered"):
        App("a").get_actor("nope")


async def test_blocking_calls_inside_the_loop_they_wait_on_are_refused() -> None:
    app = App("a", nats_url="nats://127.0.0.1:1")
    from actors.client.background_loop import BackgroundLoop

    app.client._background = BackgroundLoop(asyncio.get_running_loop())
    with pytest.raises(ActorsError, match="use the async twin"):
        app.AsyncResult("x").get(timeout=0.1)


def test_task_ids_are_unique_version_4_uuids() -> None:
    import uuid

    from actors.wire.ids import new_task_id

    ids = {new_task_id() for _ in range(2000)}
    assert len(ids) == 2000
    for task_id in list(ids)[:200]:
        parsed = uuid.UUID(task_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == task_id


def test_argument_check_fast_path_agrees_with_inspect() -> None:
    app = App("a")

    @app.actor(name="t.plain")
    def plain(a: int, b: int) -> int:
        return a + b

    @app.actor(name="t.defaults")
    def defaults(a: int, b: int = 1) -> int:
        return a + b

    plain.check_arguments([1, 2], {})
    plain.check_arguments([1], {"b": 2})
    for bad_args, bad_kwargs in [([1], {}), ([1, 2, 3], {}), ([1, 2], {"b": 3})]:
        with pytest.raises(TypeError):
            plain.check_arguments(bad_args, bad_kwargs)
    defaults.check_arguments([1], {})
    with pytest.raises(TypeError):
        defaults.check_arguments([], {})


def test_send_kwargs_name_exactly_the_send_options() -> None:
    # SendKwargs types **options of apply_async; SendOptions carries them: one list of names.
    from typing import get_type_hints

    from actors.options import SEND_OPTION_NAMES, SendKwargs

    assert tuple(get_type_hints(SendKwargs)) == SEND_OPTION_NAMES
