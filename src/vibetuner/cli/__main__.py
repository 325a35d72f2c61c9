"""``python -m vibetuner.cli`` runs the ``vibetuner`` command."""

from vibetuner.cli import main

main()
