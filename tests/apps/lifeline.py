"""A test app whose actor breaks its worker's own connection (``tests.apps.lifeline:app``)."""

from __future__ import annotations

from actors import App

app = App("lifeline")


@app.actor(name="lifeline.oversize")
async def oversize() -> None:
    """Publish past our size check what the server must refuse: it closes the connection."""
    nc = (await app.client.connection()).broker.nc
    body = b"x" * (nc.max_payload - 10)  # nats-py checks the body only
    await nc.publish("lifeline.void", body, headers={"Padding": "p" * 100})
    await nc.flush(timeout=5)


@app.actor(name="lifeline.ping")
def ping() -> str:
    return "pong"
