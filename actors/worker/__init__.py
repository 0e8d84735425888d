"""Serving actors: the worker, execution pools, workflow continuations, chords, revocation,
rate limits and dead letters."""

from actors.worker.worker import Worker

__all__ = ["Worker"]
