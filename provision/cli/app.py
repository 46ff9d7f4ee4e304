"""The application class: one-line errors with their exit codes, switch values checked by type,
and output that fails as one line (a closed pipe, a full disk) instead of a traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys

from plumbum import cli
from plumbum.cli.application import ShowCompletion, ShowHelp, ShowHelpAll, ShowVersion
from plumbum.cli.switches import SwitchError

import provision
from provision.errors import EnvironmentProblem, KprovError, UserError

_BAD_ARGUMENT = re.compile(r"Argument of ([\w-]+) expected to be (.+?), not ('.*?'|\".*?\")")


def _switch_message(exc: SwitchError) -> str:
    """plumbum names the switch without its dashes ("Argument of zram-percent ..."): put them back."""
    text = " ".join(str(exc).split())
    match = _BAD_ARGUMENT.search(text)
    if match:
        name, expected, value = match.groups()
        dashes = "-" if len(name) == 1 else "--"
        return f"{dashes}{name.replace('_', '-')}: {value} is not valid (expected {expected})"
    return text


class Whole:
    """A switch's whole number: ASCII digits only, at most ``digits`` of them, in ``low..high``.

    plumbum's ``int`` and ``cli.Range`` take what Python's ``int()`` takes, which includes "٣"
    and other non-ASCII digits and numbers of any length.
    """

    def __init__(self, low: int | None = None, high: int | None = None, digits: int = 9):
        self.low, self.high, self.digits = low, high, digits

    def __call__(self, text: str) -> int:
        if not re.fullmatch(rf"[0-9]{{1,{self.digits}}}", text.strip()):
            raise ValueError(text)
        value = int(text.strip())
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(text)
        return value

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"a whole number in {self.low}..{self.high}"
        return "a whole number"


class Text:
    """A switch's text that must say something: an empty ``--facts ''`` would silently mean
    "not given" (plan this host instead of the file)."""

    def __init__(self, what: str):
        self.what = what

    def __call__(self, text: str) -> str:
        if not text.strip():
            raise ValueError(text)
        return text

    def __str__(self) -> str:
        return self.what


def emit(text: str) -> None:
    """Write ``text`` to stdout now. Characters the locale cannot encode are escaped (a host name
    "höst" under LC_ALL=C), and a write that fails (the reader went away, /dev/full) becomes an
    EnvironmentProblem."""
    out = sys.stdout
    encoding = getattr(out, "encoding", None) or "utf-8"
    text = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
    try:
        out.write(text)
        out.flush()
    except OSError as exc:
        raise _output_failed(out, exc) from None


def _output_failed(stream: object, exc: OSError) -> EnvironmentProblem:
    """The error for a failed write to ``stream``, which is pointed at /dev/null so that the
    interpreter's last flush of what it still buffers is quiet."""
    # io.UnsupportedOperation (a captured stdout without a file descriptor) is an OSError too
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # type: ignore[attr-defined]
        os.close(devnull)
    return EnvironmentProblem(f"cannot write the output: {exc.strerror or exc}")


class GuardedOutput:
    """stdout for a whole kprov run: what writes to it without :func:`emit` (plumbum's --help,
    Ansible's progress lines) fails the same way, as one line and exit 1, instead of plumbum's
    silent exit 1 on a closed pipe or a traceback on a full disk."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise _output_failed(self._stream, exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise _output_failed(self._stream, exc) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def say_line(line: str) -> None:
    """One line on stderr, if there is a stderr to write to."""
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            print(line, file=sys.stderr, flush=True)


class KprovApp(cli.Application):
    """plumbum Application that reports KprovError (and switch errors) as one line."""

    @classmethod
    def run(cls, argv=None, *, exit=True):  # noqa: A002 - plumbum's signature
        if exit and sys.stdout is None:  # started with stdout closed (kprov plan >&-)
            say_line("kprov: standard output is closed: give kprov somewhere to write (e.g. >/dev/null)")
            sys.exit(1)
        if exit and not isinstance(sys.stdout, GuardedOutput):
            with contextlib.suppress(AttributeError, ValueError):
                # what bypasses emit (Ansible's progress lines) must not die on a non-ASCII name either
                sys.stdout.reconfigure(errors="backslashreplace")
            sys.stdout = GuardedOutput(sys.stdout)
        try:
            inst, rc = super().run(argv, exit=False)
            if exit:
                emit("")  # flush what is buffered while a failure can still be reported
        except KprovError as exc:
            say_line(f"kprov: {exc.message}")
            inst, rc = None, exc.exit_code
        except KeyboardInterrupt:
            say_line("kprov: interrupted")
            inst, rc = None, 130
        if exit:
            sys.exit(rc)
        return inst, rc

    # plumbum signals --help/--version with SwitchError subclasses: let those through.
    _META = (ShowHelp, ShowHelpAll, ShowVersion, ShowCompletion)

    def _parse_args(self, argv):
        try:
            return super()._parse_args(argv)
        except SwitchError as exc:
            if isinstance(exc, self._META):
                raise
            raise UserError(f"{self.PROGNAME}: {_switch_message(exc)}") from None

    def _validate_args(self, swfuncs, tailargs):
        try:
            return super()._validate_args(swfuncs, tailargs)
        except SwitchError as exc:
            if isinstance(exc, self._META):
                raise
            raise UserError(f"{self.PROGNAME}: {_switch_message(exc)}") from None


class Kprov(KprovApp):
    """Plan and apply a Linux kernel build host: -j, zram swap, ccache, distcc, build deps."""

    PROGNAME = "kprov"
    VERSION = provision.__version__
    DESCRIPTION = (
        "Measure this host, plan the kernel build's -j, zram swap, ccache and distcc with a "
        "reason for every number, and apply the plan with Ansible"
    )

    def main(self, *args):
        if args:
            raise UserError(f"unknown command '{args[0]}' (try: kprov plan, kprov --help)")
        if not self.nested_command:
            raise UserError("no command given: kprov plan, facts, env, apply or calibrate (kprov --help tells more)")
        return 0
