"""One ``kprov apply`` at a time, and an ``ansible-playbook`` that never outlives kprov.

Two locks under ``/run/kprov`` (root's, so only root applies take them; a non-root run can only be
``--check``, which changes nothing):

* ``apply.lock`` is held by kprov itself for the whole run, planning included. A second apply
  fails at once with one line naming the holder's pid.
* ``playbook.lock`` is held by the run's ``ansible-playbook`` and inherited by its workers. kprov
  starts ansible-playbook through a wrapper (first on its PATH) that asks the kernel to send it
  SIGTERM when kprov dies - even by SIGKILL, which kprov cannot catch (``setpriv --pdeathsig``) -
  and takes this lock (``flock --no-fork``). ansible-playbook passes SIGTERM on to its workers and
  their modules; the lock is free once the last of them has exited. A new apply waits for it, so
  it never runs beside what is left of a killed one.

Both paths are opened with ``O_NOFOLLOW`` in a directory that must be root's and not a symlink.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shlex
import shutil
import stat
import time
from pathlib import Path

from provision.errors import EnvironmentProblem

LOCK_DIR = Path("/run/kprov")


APPLY_LOCK = "apply.lock"


PLAYBOOK_LOCK = "playbook.lock"


#: How long a new run waits for the ansible-playbook of a killed run to finish its SIGTERM cleanup.
PLAYBOOK_WAIT_SECONDS = 60


def _lock_dir(directory: Path) -> Path:
    """``directory``, created 0755 if missing; refused when it is a symlink or not root's."""
    try:
        os.mkdir(directory, 0o755)
    except FileExistsError:
        pass
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {directory}: {exc.strerror}") from None
    st = os.lstat(directory)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise EnvironmentProblem(f"{directory} is not a directory (a symlink?): refusing to take kprov's lock there")
    if st.st_uid != 0 or st.st_mode & 0o022:
        raise EnvironmentProblem(f"{directory} must be root's and writable by root only: refusing to take kprov's lock there")
    return directory


def _open_lock(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise EnvironmentProblem(f"{path} is a symlink: refusing to use it as kprov's lock") from None
        raise EnvironmentProblem(f"cannot open {path}: {exc.strerror}") from None


class ApplyLock:
    """``with ApplyLock():`` - this process is the only kprov apply until the block ends."""

    def __init__(self, directory: Path = LOCK_DIR, wait_seconds: float = PLAYBOOK_WAIT_SECONDS, note=None):
        self.directory = directory
        self.wait_seconds = wait_seconds
        self.note = note or (lambda text: None)
        self.fd: int | None = None

    @property
    def playbook_lock(self) -> Path:
        return self.directory / PLAYBOOK_LOCK

    def __enter__(self) -> ApplyLock:
        path = _lock_dir(self.directory) / APPLY_LOCK
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise EnvironmentProblem(
                f"another kprov apply is running (pid {holder}): wait for it to finish, or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        try:
            self._wait_for_playbook()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_for_playbook(self) -> None:
        """Wait until no ansible-playbook (or worker) of an earlier, killed run holds its lock."""
        fd = _open_lock(self.playbook_lock)
        try:
            deadline = time.monotonic() + self.wait_seconds
            noted = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise EnvironmentProblem(
                            f"the ansible-playbook of an earlier kprov apply still holds {self.playbook_lock} "
                            f"after {self.wait_seconds:g} s: find it with 'fuser -v {self.playbook_lock}'"
                        ) from None
                    if not noted:
                        self.note("kprov: waiting for the ansible-playbook of an earlier, stopped kprov apply to exit")
                        noted = True
                    time.sleep(0.2)
        finally:
            os.close(fd)

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None


def playbook_wrapper(directory: Path, ansible_playbook: str, lock: Path | None) -> Path:
    """Write ``directory/ansible-playbook``: the real one, SIGTERMed when kprov dies, holding ``lock``.

    Without setpriv (util-linux) the wrapper runs ansible-playbook plainly; without flock it
    holds no lock. Both are part of util-linux, present wherever kprov applies (Debian: essential).
    """
    directory.mkdir(parents=True, exist_ok=True)
    argv: list[str] = []
    setpriv = shutil.which("setpriv")
    flock = shutil.which("flock")
    if setpriv:
        argv += [setpriv, "--pdeathsig", "TERM", "--"]
    if flock and lock is not None:
        argv += [flock, "--no-fork", "--exclusive", "--wait", str(PLAYBOOK_WAIT_SECONDS), str(lock)]
    argv.append(ansible_playbook)
    wrapper = directory / "ansible-playbook"
    wrapper.write_text(
        "#!/bin/sh\n"
        "# ansible-playbook for one kprov run (see provision/apply/locking.py)\n"
        f"exec {shlex.join(argv)} \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return wrapper
