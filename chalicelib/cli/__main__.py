"""``python -m chalicelib.cli`` runs the ``slipstream`` command."""

from chalicelib.cli.main import main

main()
