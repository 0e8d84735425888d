"""``python -m actors`` runs the CLI."""

from actors.cli import main

main()
