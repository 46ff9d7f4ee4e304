"""kprov's exceptions: one base, two kinds.

The CLI catches only :class:`KprovError`, prints ``kprov: <message>`` on one line and exits with
the error's ``exit_code``: 2 for bad input (the user can fix the command line or a file), 1 for an
environment or run failure (the host or Ansible said no).
"""

from __future__ import annotations


class KprovError(Exception):
    """Base of every error kprov reports to a user."""

    exit_code = 1

    def __init__(self, message: str):
        # One line, always: a multi-line message would read like a traceback.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class UserError(KprovError):
    """Bad input: an option, a value, or a file the user named. Exit 2."""

    exit_code = 2


class EnvironmentProblem(KprovError):
    """The host cannot do what was asked (not root, tool missing, apply failed). Exit 1."""

    exit_code = 1


class ApplyFailed(EnvironmentProblem):
    """An Ansible run finished with failed or unreachable hosts."""
