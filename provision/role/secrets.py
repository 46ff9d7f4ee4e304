"""The shared compile cache's secret files: read one (a regular file of the caller's, 0600, one
token line), make the missing ones (0600 in a 0700 directory, never overwritten).

The planner and the fleet only name these files; the commands and the role's controller-side
filter make them."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable

from provision.errors import EnvironmentProblem, UserError
from provision.rules.names import check_path
from provision.rules.store import check_secret_text

#: A secret file is one short line; anything longer is not one of kprov's.
MAX_SECRET_FILE_BYTES = 4096


def read_secret_file(path: str, where: str) -> str:
    """The secret in ``path`` after the checks a password file needs: a regular file (not a
    symlink, FIFO or device), not readable by group or others, one line of the token charset.
    Opened without following a symlink and without blocking on a FIFO."""
    check_path(path, where)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UserError(f"{where} {path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{where} {path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise UserError(f"{where} {path}: is a symbolic link (expected the secret file itself)")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{where} {path}: not a regular file (a FIFO, device or directory)")
    if st.st_mode & 0o077:
        raise UserError(
            f"{where} {path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read it (expected 0600: chmod 600 {path})"
        )
    if st.st_size > MAX_SECRET_FILE_BYTES:
        raise UserError(f"{where} {path}: {st.st_size} bytes is not one secret line")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(f"{where} {path}: cannot read it ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"{where} {path}: not a regular file")
        data = os.read(fd, MAX_SECRET_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = None
    return check_secret_text(text, f"{where} {path}")


def check_secret_file(path: str, where: str) -> str:
    """``path`` checked as :func:`read_secret_file` does; the path is returned, never the secret."""
    read_secret_file(path, where)
    return check_path(path, where)


def ensure_secret_file(path: str, where: str = "secret file") -> bool:
    """Make ``path`` (0600) with a new secret, its directory 0700, unless it exists; True when made.
    An existing file is checked, never overwritten."""
    path = check_path(path, where)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {directory}: {exc.strerror}") from None
    dst = os.lstat(directory)
    if stat.S_ISLNK(dst.st_mode) or not stat.S_ISDIR(dst.st_mode):
        raise UserError(f"{directory}: not a directory (a symbolic link or a file); secrets need a directory of their own")
    if stat.S_IMODE(dst.st_mode) & 0o077:
        os.chmod(directory, 0o700)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        check_secret_file(path, where)
        return False
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def fleet_secrets_dir(inventory: str) -> str:
    """``<inventory dir>/kprov-secrets/ccache``: the controller keeps a fleet's secrets next to it."""
    base = inventory if os.path.isdir(inventory) else os.path.dirname(os.path.abspath(inventory))
    return check_path(os.path.join(os.path.abspath(base), "kprov-secrets", "ccache"), "the fleet's secrets directory")


def ensure_secret_files(files: Iterable[tuple[str, str]]) -> None:
    """:func:`ensure_secret_file` for every ``(path, store user)`` a plan names."""
    for path, user in files:
        ensure_secret_file(path, f"the secret of store user {user}")
