"""Setting an App up the way a Celery project does: ``config_from_object`` and
``autodiscover_tasks`` (Celery's names; the settings are translated in actors/config.py)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Sequence
from typing import Any, Protocol

from actors.config import Settings
from actors.errors import ConfigurationError

TASK_DEFAULTS = ("acks_late", "max_retries", "default_retry_delay")
"""Settings that are defaults of actor options, applied when an actor is registered."""
_CELERY_TASK_DEFAULTS = ("task_acks_late", "task_max_retries", "task_default_retry_delay")


class _App(Protocol):
    @property
    def conf(self) -> Settings: ...

    @property
    def registry(self) -> dict[str, Any]: ...


def task_defaults(settings: Settings) -> dict[str, Any]:
    """The actor options an actor gets from the app's settings unless given explicitly."""
    return {name: getattr(settings, name) for name in TASK_DEFAULTS}


def config_from_object(app: _App, obj: Any, namespace: str | None = None) -> None:
    """Set ``app.conf`` from the public attributes of ``obj``: a module, a module's name, or
    any object (a class, an instance).

    Imported modules, classes and functions in it are skipped; every other attribute must be a
    setting (ours or Celery's), else ConfigurationError. With ``namespace="CELERY"`` only
    ``CELERY_*`` attributes are read, without the prefix and lowercased (Django settings).
    """
    if isinstance(obj, str):
        module_name, _, attribute = obj.partition(":")
        try:
            obj = importlib.import_module(module_name)
        except ImportError as exc:
            problem = f"cannot import settings module {module_name!r}: {exc}"
            raise ConfigurationError(problem) from None
        if attribute:
            if not hasattr(obj, attribute):
                raise ConfigurationError(f"settings module {module_name!r} has no {attribute!r}")
            obj = getattr(obj, attribute)
    values: dict[str, Any] = {}
    for name in dir(obj):
        value = getattr(obj, name)
        skipped = inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value)
        if name.startswith("_") or skipped:
            continue
        if namespace is not None:
            prefix = f"{namespace}_"
            if not name.startswith(prefix):
                continue
            name = name[len(prefix) :].lower()
        values[name] = value
    late = sorted(set(values) & {*TASK_DEFAULTS, *_CELERY_TASK_DEFAULTS})
    if late and app.registry:
        raise ConfigurationError(
            f"{', '.join(late)} are defaults of actors, applied when an actor is registered: "
            "call config_from_object before the tasks are defined"
        )
    app.conf.update(values)


def autodiscover_tasks(packages: Sequence[str], related_name: str = "tasks") -> None:
    """Import ``<package>.<related_name>`` for each package that has that module.

    Unlike Celery's, this imports at once (not lazily): the actors are registered on return.
    A package that does not exist is a ConfigurationError; one without the module is skipped.
    """
    if isinstance(packages, str):
        raise ConfigurationError("autodiscover_tasks takes a list of package names")
    for package in packages:
        if importlib.util.find_spec(package) is None:
            raise ConfigurationError(f"autodiscover_tasks: no package {package!r}")
        name = f"{package}.{related_name}"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
