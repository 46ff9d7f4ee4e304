"""kprov's exceptions: one base, two kinds.

The CLI catches only :class:`KprovError`, prints ``kprov: <message>`` on one line and exits with
the error's ``exit_code``: 2 for bad input (the user can fix the command line or a file), 1 for an
environment or run failure (the host or Ansible said no).

Messages quote untrusted text (file names, values from facts files): :func:`escaped` makes control
characters visible as escapes, so a message is one line and never drives the terminal.
"""

from __future__ import annotations

import unicodedata
from typing import Any

#: Unicode categories that do something other than show a glyph: C0/C1 controls (newline, ESC),
#: format characters (bidirectional overrides, zero-width joiners), line/paragraph separators and
#: the lone surrogates that ``os.fsdecode`` makes of undecodable bytes.
_ACTIVE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escaped(text: Any) -> str:
    """``text`` with every control or format character written as an escape (``\\x1b``, ``\\n``)."""
    text = str(text)
    if text.isprintable():  # the common case, and it answers in C
        return text
    return "".join(
        _escape(c) if c != " " and unicodedata.category(c) in _ACTIVE_CATEGORIES else c for c in text
    )


def shown(value: Any, limit: int = 60) -> str:
    """A bad value as an error message quotes it: short, one line, and never a failure itself.

    A 5,000-digit integer cannot even be turned into text (Python refuses int -> str beyond 4,300
    digits) and a 16 MiB string would bury the message, so both are described, not printed.
    """
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value) if -(10**30) < value < 10**30 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        text = escaped(repr(value[: limit + 1]))
        return text if len(value) <= limit else text[:-1] + "..." + text[-1]
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


class KprovError(Exception):
    """Base of every error kprov reports to a user."""

    exit_code = 1

    #: A message longer than this is cut: one that quotes a whole file is no longer one line.
    MAX_CHARS = 1000

    def __init__(self, message: str):
        # One line, always: a multi-line message would read like a traceback, and a control
        # character quoted from a file could rewrite what the terminal shows.
        text = escaped(" ".join(str(message).split()))
        if len(text) > self.MAX_CHARS:
            text = text[: self.MAX_CHARS - 3] + "..."
        super().__init__(text)

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


class Interrupted(EnvironmentProblem):
    """A run stopped by SIGINT, SIGTERM or SIGHUP, after its ansible-playbook had stopped."""

    exit_code = 130
