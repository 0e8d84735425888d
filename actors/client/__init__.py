"""Sending tasks and reading results: the Client, AsyncResult and GroupResult, the result
waiter and remote control."""
