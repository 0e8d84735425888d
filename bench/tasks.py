"""Actors used by the bench scripts (``bench.tasks:app``)."""

from actors import App

app = App("bench")


@app.actor(name="bench.add")
def add(x: int, y: int) -> int:
    return x + y


@app.actor(name="bench.aadd")
async def aadd(x: int, y: int) -> int:
    return x + y


@app.actor(name="bench.noop", ignore_result=True)
async def noop(x: int) -> None:
    return None
