"""``python -m actors`` runs the CLI."""

from actors.cli.main import main

main()
