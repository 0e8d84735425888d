"""Actors used by the bench scripts (``bench.tasks:app``)."""

from actors import App

app = App("bench")


@app.actor(name="bench.add")
def add(x: int, y: int) -> int:
    return x + y


@app.actor(name="bench.aadd")
async def aadd(x: int, y: int) -> int:
    return x + y


@app.actor(name="bench.tsum")
def tsum(numbers: list[int]) -> int:
    return sum(numbers)


@app.actor(name="bench.noop", ignore_result=True)
async def noop(x: int) -> None:
    return None
