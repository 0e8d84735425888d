"""``actors monitor``: a web dashboard that reads everything from NATS (docs/monitor.md).

Needs the ``monitor`` extra (Starlette, uvicorn, Jinja2). Nothing here is imported by the rest
of actors: the command line imports it when ``actors monitor`` runs.
"""
