"""What the command line prints besides logs: error exits and tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

_PIPE_WIDTH = 100_000
"""Columns a table may use when printed to a pipe or a file: each row stays on one line."""


def fail(message: object, code: int = 2) -> NoReturn:
    """Print ``error: <message>`` to stderr and exit with ``code`` (2: bad input or setup)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code) from None


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print ``rows`` in aligned columns under ``headers``, one line per row.

    On a terminal a long cell wraps within its column to fit the screen; into a pipe or a file
    each row stays on one line, for grep and awk. Cells are shown as plain text: text from
    messages may hold brackets, which must not be read as rich markup.
    """
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=_PIPE_WIDTH)
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        typer.echo(line.rstrip())
