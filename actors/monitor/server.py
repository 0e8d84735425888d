"""Running the monitor: connect, read the events stream, serve HTTP until SIGTERM or Ctrl-C."""

from __future__ import annotations

import uvicorn

from actors.app import App
from actors.monitor.auth import MonitorSettings
from actors.monitor.data import MonitorData
from actors.monitor.feed import EventFeed
from actors.monitor.index import TaskIndex
from actors.monitor.web import create_app


async def serve(app: App, settings: MonitorSettings) -> None:
    """Serve the monitor for ``app`` (its settings name the NATS server) until stopped."""
    broker = (await app.client.connection()).broker
    index = TaskIndex(settings.max_tasks)
    feed = EventFeed(broker, index)
    feed.start()
    web = create_app(MonitorData(app, index, feed), settings)
    # uvicorn's access log would write every URL; they hold no secrets, but keep it quiet.
    config = uvicorn.Config(
        web, host=settings.address, port=settings.port, access_log=False, log_level="warning"
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await feed.stop()
        await app.client.aclose()
