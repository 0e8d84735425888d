"""Celery parity without a server: settings names, config_from_object, app.tasks,
autodiscover_tasks, the current App, clone(args=...), unknown send options."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Iterator

import pytest

from actors import App, ConfigurationError, celery_settings, current, signature
from actors.signature import Hop
from actors.worker.recycling import Recycler, resident_kib
from tests.conftest import ROOT


@pytest.fixture
def no_current(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever a test sets as the current App is forgotten afterwards."""
    monkeypatch.setattr(current, "_current", None)
    yield


def test_broker_is_an_alias_of_nats_url() -> None:
    assert App("b", broker="nats://10.0.0.1:4222").conf.nats_url == "nats://10.0.0.1:4222"
    with pytest.raises(ConfigurationError, match="not both"):
        App("b", nats_url="nats://a:1", broker="nats://b:1")
    with pytest.raises(ConfigurationError, match="redis:// is not NATS"):
        App("b", broker_url="redis://localhost:6379/0")


def test_celery_setting_names_map_to_ours() -> None:
    app = App("c", nats_url="nats://127.0.0.1:1")
    app.config_from_object("tests.apps.celeryconfig")
    conf = app.conf
    assert conf.nats_url == "nats://127.0.0.1:4999"
    assert conf.result_ttl == 7200.0
    assert (conf.acks_late, conf.ignore_result, conf.track_started) == (False, True, True)
    assert (conf.time_limit, conf.soft_time_limit) == (30, 20)
    assert (conf.default_retry_delay, conf.max_retries) == (5, 7)
    assert (conf.timezone, conf.concurrency, conf.prefetch_multiplier) == ("Europe/Paris", 8, 4)
    assert conf.beat_schedule == {"tick": {"task": "tasks.tick", "schedule": 10.0}}

    @app.actor(name="c.work")
    def work() -> None: ...

    assert (work.options.acks_late, work.options.max_retries) == (False, 7)
    assert work.options.default_retry_delay == 5
    explicit = app.actor(name="c.other", max_retries=1)(lambda: None)
    assert explicit.options.max_retries == 1
    assert app.tasks == {"c.work": work, "c.other": explicit}
    with pytest.raises(ConfigurationError, match="before the tasks are defined"):
        app.config_from_object(types.SimpleNamespace(task_acks_late=True))


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("task_serializer", "pickle", "never uses pickle"),
        ("accept_content", ["json", "pickle"], "never uses pickle"),
        ("result_serializer", "yaml", "never uses pickle"),
        ("enable_utc", False, "always UTC on the wire"),
        ("result_backend", "redis://", "actors_results"),
        ("task_always_eager", True, "call the task"),
        ("worker_prefetch_multiplier", 0, "at least 1"),
        ("result_expires", None, "TTL"),
        ("timezone", "Mars/Olympus", "IANA"),
        ("task_acks_lat", True, "did you mean"),
    ],
)
def test_settings_that_cannot_apply_are_refused_with_the_reason(
    name: str, value: object, reason: str
) -> None:
    app = App("r", nats_url="nats://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match=reason):
        app.conf.update({name: value})


def test_config_from_object_reads_a_django_namespace_and_skips_imports() -> None:
    settings = types.SimpleNamespace(
        CELERY_BROKER_URL="nats://h:4222", CELERY_TASK_TIME_LIMIT=9, DEBUG=True, os=types
    )
    app = App("d", nats_url="nats://127.0.0.1:1")
    app.config_from_object(settings, namespace="CELERY")
    assert (app.conf.nats_url, app.conf.time_limit) == ("nats://h:4222", 9)
    with pytest.raises(ConfigurationError, match="unknown setting 'debug'"):
        app.config_from_object(types.SimpleNamespace(debug=True))
    with pytest.raises(ConfigurationError, match="cannot import"):
        app.config_from_object("no_such_celeryconfig")


def test_autodiscover_tasks_imports_each_packages_tasks(no_current: None) -> None:
    app = App("auto", nats_url="nats://127.0.0.1:1")
    app.set_current()
    app.autodiscover_tasks(["tests.apps.discovered_pkg", "tests.unit"])  # tests.unit: none
    assert app.tasks["discovered.hello"]("you") == "hello you"
    with pytest.raises(ConfigurationError, match="no package"):
        app.autodiscover_tasks(["no_such_package_here"])


def test_a_signature_by_name_uses_the_current_app(no_current: None) -> None:
    alive = [App(name, nats_url="nats://127.0.0.1:1") for name in ("one", "two")]
    sig = signature("tasks.add", args=(2, 2))
    with pytest.raises(ConfigurationError, match=r"Apps exist.*set_current"):
        sig.bound_app()
    assert alive
    chosen = App("three", nats_url="nats://127.0.0.1:1")
    chosen.set_current()
    assert sig.bound_app() is chosen


def test_the_only_app_alive_is_current() -> None:
    code = (
        "from actors import App, signature\n"
        "app = App('only', nats_url='nats://127.0.0.1:1')\n"
        "assert signature('tasks.add', args=(2, 2)).bound_app() is app\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_clone_prepends_args_and_merges_kwargs_as_celery_does() -> None:
    app = App("cl", nats_url="nats://127.0.0.1:1")
    sig = signature("t.f", args=(3,), kwargs={"a": 1}, app=app)
    twin = sig.clone(args=(1, 2), kwargs={"b": 2}, countdown=5)
    assert (twin.args, twin.kwargs, twin.options) == ((1, 2, 3), {"a": 1, "b": 2}, {"countdown": 5})
    assert (sig.args, sig.kwargs, sig.options) == ((3,), {"a": 1}, {})
    twin.assign_ids()
    message = twin.messages([], [], Hop())[0]
    assert (message.args, message.kwargs) == ([1, 2, 3], {"a": 1, "b": 2})


def test_on_error_adds_an_errback() -> None:
    app = App("oe", nats_url="nats://127.0.0.1:1")
    sig = signature("t.f", app=app)
    errback = signature("t.on_fail", app=app)
    assert sig.on_error(errback) is errback
    assert sig.options["link_error"] == [errback.to_wire()]


def test_unknown_send_options_raise() -> None:
    app = App("so", nats_url="nats://127.0.0.1:1")
    add = app.actor(name="so.add")(lambda x, y: x + y)
    for bad in ({"routing_key": "x"}, {"countdwn": 5}):
        with pytest.raises(ConfigurationError, match="unknown send option"):
            add.s(1, 2).set(**bad)
        with pytest.raises(ConfigurationError, match="unknown send option"):
            add.message((1, 2), **bad)  # type: ignore[call-arg]
        with pytest.raises(ConfigurationError, match="unknown send option"):
            add.signature((1, 2), **bad)
        with pytest.raises(ConfigurationError, match="unknown send option"):
            signature("so.add", app=app, **bad)
        with pytest.raises(ConfigurationError, match="unknown send option"):
            add.s(1, 2).clone(**bad)
        with pytest.raises(ConfigurationError, match="unknown send option"):
            app.send_task("so.add", (1, 2), **bad)


def test_recycling_limits() -> None:
    assert not Recycler(None, None).enabled
    assert Recycler(3, None).check(2) is None
    assert Recycler(3, None).check(3) == "ran 3 tasks (max_tasks_per_child=3)"
    used = resident_kib()
    assert 1000 < used < 10_000_000  # a Python process holds some MiB
    assert Recycler(None, used * 4).check(1) is None
    reason = Recycler(None, 1).check(1)
    assert reason is not None and "max_memory_per_child=1" in reason


def test_every_celery_setting_name_is_in_the_migration_guide() -> None:
    guide = (ROOT / "docs" / "celery.md").read_text()
    for name in [*celery_settings.RENAMED, *celery_settings.REFUSED]:
        assert f"`{name}`" in guide, name
    app = App("refused", nats_url="nats://127.0.0.1:1")
    for name in celery_settings.REFUSED:
        with pytest.raises(ConfigurationError, match="has no equivalent: "):
            app.conf.update({name: None})


def test_worker_prefetch_multiplier_sets_what_each_consumer_holds() -> None:
    from actors.worker import Worker

    app = App("prefetch", nats_url="nats://127.0.0.1:1", worker_prefetch_multiplier=3)
    app.actor(name="prefetch.f")(lambda: None)
    worker = Worker(app, concurrency=4)
    assert worker.prefetch == 12
