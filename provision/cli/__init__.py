"""The ``kprov`` command line: plan, facts, env, apply, calibrate, cache status, collection.

Every error kprov knows about is a :class:`KprovError`; the application catches only that, prints
``kprov: <one line>`` on stderr and exits 2 (bad input) or 1 (the host or Ansible said no). Bad
switches from plumbum itself become the same one-line error instead of a help dump. Input is
checked before anything is measured or planned: switch values by their types here (ASCII whole
numbers in range, no empty text), goals by the validators, then facts, then the plan. Output goes
through :func:`emit`: a closed pipe or a full disk on stdout is one line on stderr and exit 1.

``kprov plan`` must stay fast and never import ansible_runner: the runner and the inventory code
are imported inside the subcommands that need them.

The package is the top layer: it may import every other part of kprov. ``app`` is the application
class and its one-line errors, ``switches`` the switches the planning commands share, ``commands``
and ``tools`` the subcommands (importing them registers them with :class:`Kprov`). An import of
another kprov module inside a command's function keeps ``kprov plan`` from loading what it does
not use (ansible-runner, the fleet, calibration).
"""

from __future__ import annotations

from provision.cli import build, commands, tools  # noqa: F401 - registers the subcommands
from provision.cli.app import Kprov

__all__ = ["Kprov", "main"]


def main() -> None:
    Kprov.run()


if __name__ == "__main__":
    main()
