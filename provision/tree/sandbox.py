"""Running a kernel tree's own code: as whom, under one deadline, in one process group.

Evaluating Kconfig or calibrating runs the tree's make (and ``scripts/config``), code that
whoever can write the tree controls (:mod:`provision.tree.ownership` decides whose it is). It runs
(:func:`run`):

* as :class:`RunAs`: kprov itself, or, when kprov is root and the tree is another user's, that
  user with that user's groups and no others, in a clean environment (:data:`KEPT_WHEN_DROPPING`);
  in both cases with ``PR_SET_NO_NEW_PRIVS`` (no set-user-ID program gains it anything);
* in a session of its own, killed as a process group when it exits (what it left in the
  background too), when the deadline passes, on SIGINT, SIGTERM or SIGHUP to kprov (kprov then
  exits 130 with one line), and when kprov dies: make gets ``PR_SET_PDEATHSIG`` (SIGKILL), and a
  watchdog process kills the whole group once the pipe kprov holds to it closes;
* under one deadline for all the steps of an evaluation (:class:`Deadline`):
  ``KPROV_TREE_DEADLINE_S`` seconds, default 300.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import math
import os
import pwd
import re
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provision.errors import EnvironmentProblem, Interrupted, UserError, shown

DEADLINE_ENV = "KPROV_TREE_DEADLINE_S"
DEFAULT_DEADLINE_S = 300.0
MAX_DEADLINE_S = 86400.0

#: Environment variables a run as the tree's owner keeps (kprov's own settings); the rest of
#: kprov's environment stays behind.
KEPT_WHEN_DROPPING = ("PATH", "LC_ALL", "CCACHE_DISABLE", "KPROV_CCWRAP_LOG")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_TAIL_LINES = 20
_LONGEST_LINE = 64 * 1024

#: The watchdog: kills the process group $1 unless kprov said "d" (done) before its pipe closed.
_WATCHDOG = 'read -r said; [ "$said" = d ] || kill -KILL -"$1" 2>/dev/null'


class Refused(UserError):
    """kprov will not run this tree's code: bad input, one line, exit 2, nothing ran."""


class CannotRun(EnvironmentProblem):
    """The tree's code cannot run: no scratch directory for its owner."""


def deadline_seconds() -> float:
    """``KPROV_TREE_DEADLINE_S``: the seconds one evaluation of a tree may take, all steps together."""
    text = os.environ.get(DEADLINE_ENV)
    if text is None or text == "":
        return DEFAULT_DEADLINE_S
    value = float(text) if re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9})?", text, re.ASCII) else math.nan
    if not 0 < value <= MAX_DEADLINE_S:
        raise Refused(f"{DEADLINE_ENV}={shown(text)}: not a number of seconds above 0 and up to {MAX_DEADLINE_S:.0f}")
    return value


class Deadline:
    """One deadline shared by every step of a run."""

    def __init__(self, seconds: float | None = None):
        self.seconds = deadline_seconds() if seconds is None else seconds
        self.at = time.monotonic() + self.seconds

    def left(self) -> float:
        return self.at - time.monotonic()


@dataclass(frozen=True)
class RunAs:
    """Who runs a tree's code. ``drops``: kprov is root and runs it as this other user."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    name: str = ""
    home: str = "/"
    drops: bool = False

    def shown(self) -> str:
        return f"{self.name} (uid {self.uid})" if self.name and self.name != str(self.uid) else f"uid {self.uid}"

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """The environment of the run: ``env`` itself, or for another user a clean one."""
        if not self.drops:
            return dict(env)
        out = {k: env[k] for k in KEPT_WHEN_DROPPING if k in env}
        path = [p for p in out.get("PATH", DEFAULT_PATH).split(":") if p.startswith("/")]
        out["PATH"] = ":".join(path) or DEFAULT_PATH
        out.update(HOME=self.home, USER=self.name, LOGNAME=self.name, SHELL="/bin/sh")
        return out


def as_self() -> RunAs:
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return RunAs(uid=uid, gid=os.getegid(), groups=tuple(os.getgroups()), name=name, home=os.environ.get("HOME") or "/")


@dataclass(frozen=True)
class Finished:
    """How a run ended: exit code (negative: killed by that signal), wait4's rusage (the process
    and what it waited for), wall seconds, the last lines it printed, whether the deadline hit."""

    status: int
    usage: object
    seconds: float
    tail: tuple[str, ...]
    timed_out: bool = False


_prctl = None


def _libc_prctl():
    global _prctl
    if _prctl is None:
        fn = ctypes.CDLL(None, use_errno=True).prctl
        fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        fn.restype = ctypes.c_int
        _prctl = fn
    return _prctl


def _child_setup(parent: int, mask: set) -> Callable[[], None]:
    prctl = _libc_prctl()

    def setup() -> None:  # in the child, after the user and groups changed, before exec
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl failed")
        if os.getppid() != parent:  # kprov died before the line above
            os._exit(127)

    return setup


class _Stop(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _StopSignals:
    """While the tree's code runs, SIGINT, SIGTERM and SIGHUP end the run (its group is killed
    before kprov says so). Restored while those signals are blocked, so that one arriving during
    the cleanup finds kprov's own handler again."""

    def __init__(self):
        self.previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in _STOP_SIGNALS:
                old = signal.getsignal(sig)
                if old is not signal.SIG_IGN and old is not None:
                    self.previous[sig] = signal.signal(sig, self._stop)
        return self

    @staticmethod
    def _stop(signum, _frame):
        raise _Stop(signum)

    def restore(self) -> None:
        while self.previous:
            sig, old = self.previous.popitem()
            signal.signal(sig, old)

    def __exit__(self, *exc) -> None:
        self.restore()


class _Output:
    def __init__(self, on_line: Callable[[str], None] | None):
        self.on_line = on_line
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self.pending = b""

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        if len(self.pending) > _LONGEST_LINE:
            lines.append(self.pending)
            self.pending = b""
        for raw in lines:
            self.line(raw)

    def line(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip()
        if text.strip():
            self.tail.append(text)
        if self.on_line is not None:
            self.on_line(text)

    def close(self) -> None:
        if self.pending:
            self.line(self.pending)
            self.pending = b""


def _read_some(fd: int, out: _Output) -> bool | None:
    """Read what is there: True when something was, None when nothing is yet, False at the end."""
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        return None
    if not chunk:
        return False
    out.feed(chunk)
    return True


def _exited(pid: int) -> bool:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _follow(proc: subprocess.Popen, deadline: float | None, out: _Output) -> bool:
    """Read the output until the process exits or the deadline passes (True)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ, "out")
        if pidfd is not None:
            sel.register(pidfd, selectors.EVENT_READ, "exit")
        try:
            while not _exited(proc.pid):
                wait = 0.1 if pidfd is None else 1.0
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return True
                    wait = min(wait, left)
                for key, _ in sel.select(wait):
                    if key.data == "out" and _read_some(fd, out) is False:
                        sel.unregister(fd)
        finally:
            if pidfd is not None:
                os.close(pidfd)
    return False


def _end(proc: subprocess.Popen, out: _Output) -> tuple[int, object]:
    """Kill what is left of the group (the leader is not reaped yet, so its id cannot be reused),
    take the output still buffered, reap the leader."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.stdout is not None:
        with contextlib.suppress(OSError, ValueError):
            while _read_some(proc.stdout.fileno(), out):
                pass
        out.close()
        proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage


def _release(watchdog: subprocess.Popen | None) -> None:
    if watchdog is None:
        return
    assert watchdog.stdin is not None
    with contextlib.suppress(OSError, ValueError):
        watchdog.stdin.write(b"d\n")
        watchdog.stdin.close()
    watchdog.wait()


def run(
    argv: list[str],
    runner: RunAs,
    env: dict[str, str],
    deadline: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Finished:
    """Run ``argv`` as ``runner`` until it exits or ``deadline`` (a ``time.monotonic()``) passes.

    Raises OSError when it cannot start, :class:`Interrupted` when SIGINT, SIGTERM or SIGHUP
    stopped it. Whatever ended it, nothing of its process group is left running."""
    ids: dict = {}
    if runner.drops:
        ids = {"user": runner.uid, "group": runner.gid, "extra_groups": list(runner.groups)}
    start = time.monotonic()
    out = _Output(on_line)
    proc = watchdog = None
    timed_out = False
    stopped: int | None = None
    result: tuple[int, object] | None = None
    with _StopSignals() as stops:
        try:
            # a signal between the fork and the watchdog would leave make unwatched: held until both run
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                proc = subprocess.Popen(
                    argv, env=runner.environment(env), cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, start_new_session=True, umask=0o022,
                    preexec_fn=_child_setup(os.getpid(), mask), **ids,
                )
                watchdog = subprocess.Popen(
                    ["/bin/sh", "-c", _WATCHDOG, "kprov-watchdog", str(proc.pid)], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                )
            except subprocess.SubprocessError as exc:
                raise OSError(f"cannot start {argv[0]}: {exc}") from None
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            timed_out = _follow(proc, deadline, out)
        except _Stop as exc:
            stopped = exc.signum
        finally:
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                if proc is not None:
                    result = _end(proc, out)
                _release(watchdog)
            finally:
                stops.restore()
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if stopped is not None:
        name = "/".join(Path(argv[0]).parts[-2:]) if argv[0].endswith("/scripts/config") else Path(argv[0]).name
        raise Interrupted(f"stopped by {signal.Signals(stopped).name}: the tree's {name} was killed")
    assert result is not None
    status, usage = result
    return Finished(status, usage, time.monotonic() - start, tuple(out.tail), timed_out)
