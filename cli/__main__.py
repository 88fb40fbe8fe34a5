"""``python -m yuanwen.cli``: the same as the ``yuanwen`` command."""

from yuanwen.cli import main

main()
