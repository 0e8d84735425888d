"""Every primitive and nesting case served by two worker processes (``actors run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors import ChordError, chain, chord, group, signature
from tests.apps.canvas import register


def test_every_primitive_across_two_worker_processes(
    worker_process: Any, make_app: Any, tmp_path: Path
) -> None:
    first = worker_process("tests.apps.canvas:app", "--concurrency", "2")
    second = worker_process("tests.apps.canvas:app", "--concurrency", "2")
    app = make_app("client")
    tasks = register(app)
    add, mul, tsum, div = tasks["add"], tasks["mul"], tasks["tsum"], tasks["div"]
    marker = tmp_path / "errbacks"

    linked = add.apply_async((2, 2), link=add.s(8).set(task_id="proc-link"))
    assert linked.get(timeout=20) == 4
    assert app.AsyncResult("proc-link").get(timeout=20) == 12
    failing = div.apply_async((1, 0), link_error=tasks["errback"].s(marker=str(marker)))
    with pytest.raises(ZeroDivisionError):
        failing.get(timeout=20)

    assert (add.s(2, 2) | mul.s(8) | add.s(1)).delay().get(timeout=20) == 33
    stopped = chain(add.s(1, 1), div.s(0), add.s(1)).apply_async()
    with pytest.raises(ZeroDivisionError):
        stopped.get(timeout=20)

    assert group(add.s(i, i) for i in range(20)).delay().get(timeout=20) == [
        2 * i for i in range(20)
    ]
    assert chord((add.s(i, i) for i in range(20)), tsum.s()).delay().get(timeout=20) == 380
    assert chord(add.s(i, i) for i in range(5))(tsum.s()).get(timeout=20) == 20
    broken = chord([add.s(1, 1), div.s(1, 0)], tsum.s()).delay()
    with pytest.raises(ChordError):
        broken.get(timeout=20)

    assert tsum.map([[1], [2, 3]]).delay().get(timeout=20) == [1, 5]
    assert add.starmap([(1, 1), (2, 2)]).delay().get(timeout=20) == [2, 4]
    assert add.chunks([(i, i) for i in range(7)], 3).delay().get(timeout=20) == [
        [0, 2, 4],
        [6, 8, 10],
        [12],
    ]

    nested = chain(add.s(1, 1), group(add.s(1), add.s(2)), tsum.s(), group(mul.s(2), mul.s(3)))
    assert nested.delay().get(timeout=20) == [14, 21]
    assert group(add.s(i, i) | mul.s(10) for i in range(3)).delay().get(timeout=20) == [0, 20, 40]
    inner = add.s(1, 1) | chord([add.s(1), add.s(2)], tsum.s()) | add.s(100)
    assert inner.delay().get(timeout=20) == 107
    header = [add.s(1, 1) | mul.s(10), add.s(5, 5)]
    assert chord(header, tsum.s()).delay().get(timeout=20) == 30
    by_name = signature("canvas.add", args=(1, 2), app=app) | signature("canvas.mul", (3,), app=app)
    assert by_name.delay().get(timeout=20) == 9

    assert marker.read_text().count("ZeroDivisionError") == 1
    assert first.count("task.succeeded") > 0 and second.count("task.succeeded") > 0


def test_chord_bodies_run_exactly_once_with_three_worker_processes(
    worker_process: Any, make_app: Any, tmp_path: Path
) -> None:
    for _ in range(3):
        worker_process("tests.apps.canvas:app", "--concurrency", "8")
    app = make_app("client")
    tasks = register(app)
    add, record = tasks["add"], tasks["record"]
    marker = tmp_path / "bodies"
    results = [
        chord((add.s(i, k) for i in range(100)), record.s(str(marker), f"chord{k}")).delay()
        for k in range(5)
    ]
    for k, result in enumerate(results):
        assert result.get(timeout=30) == [i + k for i in range(100)]
    ran = [line.split()[0] for line in marker.read_text().splitlines()]
    assert sorted(ran) == [f"chord{k}" for k in range(5)]
