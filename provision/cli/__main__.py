"""``python -m provision.cli``: the kprov command."""

from provision.cli import main

main()
