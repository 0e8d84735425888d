"""Tasks found by ``app.autodiscover_tasks(["tests.apps.discovered_pkg"])``."""

from actors import current

app = current.current_app()


@app.actor(name="discovered.hello")
def hello(name: str) -> str:
    return f"hello {name}"
