"""Actors for the Celery parity tests (``tests.apps.parity:app``): replace, argument types,
signatures as arguments."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from actors import App, chain, group, signature


def register(app: App) -> dict[str, Any]:
    """Register the parity actors on ``app``; return them by short name."""

    @app.actor(name="parity.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.actor(name="parity.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    @app.actor(name="parity.tsum")
    def tsum(numbers: list[int]) -> int:
        return sum(numbers)

    @app.actor(name="parity.replaced", bind=True)
    def replaced(self: Any, x: int, y: int) -> int:
        self.replace(add.s(x, y))  # the result becomes add's
        raise AssertionError("replace returns only by raising")

    @app.actor(name="parity.replaced_twice", bind=True)
    def replaced_twice(self: Any, x: int) -> int:
        if x < 3:
            self.replace(replaced_twice.s(x + 1))  # a task may replace itself step by step
        return x

    @app.actor(name="parity.replaced_by_chain", bind=True)
    def replaced_by_chain(self: Any, x: int) -> int:
        self.replace(chain(add.s(x, 1), mul.s(10)))
        raise AssertionError("unreachable")

    @app.actor(name="parity.replaced_in_process", bind=True, pool="process")
    def replaced_in_process(self: Any, x: int, y: int) -> int:
        self.replace(add.s(x, y))
        raise AssertionError("unreachable")

    @app.actor(name="parity.replaced_by_group", bind=True)
    def replaced_by_group(self: Any) -> None:
        self.replace(group(add.s(1, 1), add.s(2, 2)))

    @app.actor(name="parity.shift")
    def shift(when: datetime, day: date, at: time, key: UUID, amount: Decimal) -> list[Any]:
        assert isinstance(when, datetime) and isinstance(amount, Decimal), (when, amount)
        return [when + timedelta(days=1), day, at, key, amount * 2, (1, 2)]

    @app.actor(name="parity.run_signature")
    def run_signature(sig: dict[str, Any]) -> str:
        assert isinstance(sig, dict), type(sig)
        return signature(sig, app=app).delay().id

    return {
        "add": add,
        "mul": mul,
        "tsum": tsum,
        "replaced": replaced,
        "replaced_by_chain": replaced_by_chain,
        "replaced_twice": replaced_twice,
        "replaced_in_process": replaced_in_process,
        "replaced_by_group": replaced_by_group,
        "shift": shift,
        "run_signature": run_signature,
    }


app = App("parity")
register(app)
