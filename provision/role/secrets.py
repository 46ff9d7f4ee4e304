"""The shared compile cache's secret files: read one (a regular file of the caller's, 0600, one
token line), make the missing ones (0600 in a 0700 directory, never overwritten), or, for a check
run, only say which are missing.

The planner and the fleet only name these files; the commands and the role's controller-side
filter make them. A secret is a password whoever wrote the file chose: every directory kprov
keeps secrets in, and every secret file, must be the running user's own, and is reached without
following a link. The directories are walked with a descriptor from kprov's own top one down
(``<inventory dir>/kprov-secrets`` for a fleet, else the secrets directory itself): each
component is opened ``O_NOFOLLOW`` relative to the one above it, so a link or a directory swapped
in on the way is refused, never followed. Nothing is chmod-ed but a directory kprov has just made.
"""

from __future__ import annotations

import errno
import os
import pwd
import secrets
import stat
from collections.abc import Iterable

from provision.errors import EnvironmentProblem, UserError
from provision.rules.names import check_arg_path
from provision.rules.store import check_secret_text

#: A secret file is one short line; anything longer is not one of kprov's.
MAX_SECRET_FILE_BYTES = 4096


#: Where a fleet's secrets live, below the inventory's directory: ``kprov-secrets/ccache``.
FLEET_SECRETS = ("kprov-secrets", "ccache")


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _check_own(st: os.stat_result, path: str, what: str) -> None:
    """``st`` is the running user's, and nobody else may read or write it (0700 / 0600)."""
    me = os.geteuid()
    if st.st_uid != me:
        raise UserError(
            f"{path}: owned by {_owner(st.st_uid)}, not by you ({_owner(me)}): a {what} kprov keeps secrets in must be "
            "your own, or its password is one another user chose"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        want = "0700" if what == "directory" else "0600"
        raise UserError(f"{path}: mode {mode:04o} lets others in (expected {want}: chmod {want[1:]} {path})")


def secrets_top(directory: str) -> str:
    """The topmost directory of ``directory`` that is kprov's own: ``<inventory dir>/kprov-secrets``
    for a fleet's secrets directory (``.../kprov-secrets/ccache``), else ``directory`` itself."""
    parts = directory.rstrip("/").split("/")
    if len(parts) > len(FLEET_SECRETS) + 1 and tuple(parts[-len(FLEET_SECRETS):]) == FLEET_SECRETS:
        return "/".join(parts[:-len(FLEET_SECRETS) + 1])
    return directory


def _open_secrets_dir(directory: str, create: bool) -> int | None:
    """A descriptor of the secrets directory ``directory``, opened from kprov's own top down
    without following a link, each component checked (the running user's, 0700); a missing one
    is made 0700 when ``create``, else None is returned. The directory above the top is the
    inventory's (or /etc/kprov's), opened as named."""
    top = secrets_top(directory)
    parent, first = os.path.split(top)
    if not first:
        raise UserError(f"{directory}: secrets need a directory of their own, not /")
    names = [first] + [p for p in directory[len(top):].split("/") if p]
    if create:
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot create {parent}: {exc.strerror}") from None
    try:
        fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if create:
            raise EnvironmentProblem(f"cannot open {parent}: it vanished") from None
        return None
    except OSError as exc:
        raise UserError(f"{parent}: cannot open it ({exc.strerror})") from None
    at = parent
    try:
        for name in names:
            at = os.path.join(at, name)
            made = False
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    return None
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                    made = True
                except FileExistsError:  # made meanwhile: opened and checked as found
                    pass
                except OSError as exc:
                    raise EnvironmentProblem(f"cannot create {at}: {exc.strerror}") from None
                child = _open_dir_at(fd, name, at)
            except OSError as exc:
                raise _dir_error(at, exc) from None
            os.close(fd)
            fd = child
            if made:
                os.fchmod(fd, 0o700)  # the umask may have taken bits; this one kprov has just made
            _check_own(os.fstat(fd), at, "directory")
        opened, fd = fd, -1
        return opened
    finally:
        if fd >= 0:
            os.close(fd)


def _made_secrets_dir(directory: str) -> int:
    fd = _open_secrets_dir(directory, create=True)
    if fd is None:  # pragma: no cover - create never leaves a component missing
        raise EnvironmentProblem(f"cannot create {directory}")
    return fd


def _open_dir_at(fd: int, name: str, path: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        raise _dir_error(path, exc) from None


def _dir_error(path: str, exc: OSError) -> UserError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return UserError(f"{path}: a symbolic link or not a directory; secrets need a directory of their own (never followed)")
    return UserError(f"{path}: cannot open it ({exc.strerror})")


def _read_at(dir_fd: int, name: str, path: str, where: str) -> str:
    """The secret in ``name`` of the directory ``dir_fd``: a regular file (not a symlink, FIFO or
    device) of the running user's, not readable by group or others, one line of the token
    charset. Looked at before it is opened, opened without following a link or blocking."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise UserError(f"{where} {path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{where} {path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise UserError(f"{where} {path}: is a symbolic link (expected the secret file itself)")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{where} {path}: not a regular file (a FIFO, device or directory)")
    try:
        _check_own(st, path, "file")
    except UserError as exc:
        raise UserError(f"{where} {exc}") from None
    if st.st_size > MAX_SECRET_FILE_BYTES:
        raise UserError(f"{where} {path}: {st.st_size} bytes is not one secret line")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise UserError(f"{where} {path}: cannot read it ({exc.strerror})") from None
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
            raise UserError(f"{where} {path}: replaced while kprov read it")
        data = os.read(fd, MAX_SECRET_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = None
    return check_secret_text(text, f"{where} {path}")


def _others_can_replace(directory: str) -> str | None:
    """Why another user could swap the files of ``directory``: a directory on the way (or it) that
    is not root's or the running user's, or that its group or everyone may write without the
    sticky bit; a link on the way that is not root's or the running user's. None when nobody can."""
    me = os.geteuid()

    def judge(path: str, st: os.stat_result) -> str | None:
        if st.st_uid not in (0, me):
            return f"{path} belongs to {_owner(st.st_uid)}, who could replace the secret file"
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return f"{path} may be written by its group or everyone, who could replace the secret file"
        return None

    current, parts, hops = "/", [p for p in directory.split("/") if p], 0
    reason = judge("/", os.stat("/"))
    while parts and reason is None:
        candidate = os.path.join(current, parts.pop(0))
        try:
            st = os.lstat(candidate)
        except OSError as exc:
            return f"{candidate}: cannot be checked ({exc.strerror})"
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in (0, me):
                return f"{candidate} is a symbolic link of {_owner(st.st_uid)}, who could point it elsewhere"
            hops += 1
            if hops > 40:
                return f"{directory}: too many levels of symbolic links"
            target = os.readlink(candidate)
            resolved = target if target.startswith("/") else os.path.join(current, target)
            parts = [p for p in os.path.normpath(resolved).split("/") if p] + parts
            current = "/"
            continue
        if not stat.S_ISDIR(st.st_mode):
            return f"{candidate}: not a directory"
        reason = judge(candidate, st)
        current = candidate
    return reason


def read_secret_file(path: str, where: str) -> str:
    """The secret in ``path`` (a file a user names, such as ``--ccache-remote-secret``): a regular
    file of the running user's, 0600, one token line, in a directory no other user could swap it
    in (see :func:`_others_can_replace`)."""
    path = check_arg_path(path, where)
    directory, name = os.path.split(path)
    why = _others_can_replace(directory)
    if why:
        raise UserError(f"{where} {path}: {why}")
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(f"{where} {path}: cannot read it ({exc.strerror})") from None
    try:
        return _read_at(dir_fd, name, path, where)
    finally:
        os.close(dir_fd)


def check_secret_file(path: str, where: str) -> str:
    """``path`` checked as :func:`read_secret_file` does; the path is returned, never the secret."""
    read_secret_file(path, where)
    return check_arg_path(path, where)


def _by_directory(files: Iterable[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """``(path, store user)`` pairs, checked, by their directory."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path, user in files:
        where = f"the secret of store user {user}"
        path = check_arg_path(path, where)
        out.setdefault(os.path.dirname(path), []).append((path, where))
    return out


def _make_at(dir_fd: int, path: str, where: str) -> bool:
    """``path`` (0600) with a new secret in ``dir_fd`` unless it exists (then checked); True when made."""
    name = os.path.basename(path)
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        _read_at(dir_fd, name, path, where)
        return False
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secrets.token_urlsafe(32) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def ensure_secret_file(path: str, where: str = "secret file") -> bool:
    """Make ``path`` (0600) with a new secret, its directory 0700, unless it exists; True when made.
    An existing file is checked, never overwritten; an existing directory is checked, never
    chmod-ed."""
    path = check_arg_path(path, where)
    fd = _made_secrets_dir(os.path.dirname(path))
    try:
        return _make_at(fd, path, where)
    finally:
        os.close(fd)


def ensure_secret_files(files: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """:func:`ensure_secret_file` for every ``(path, store user)`` a plan names; the paths made."""
    made: list[str] = []
    for directory, paths in _by_directory(files).items():
        fd = _made_secrets_dir(directory)
        try:
            made += [path for path, where in paths if _make_at(fd, path, where)]
        finally:
            os.close(fd)
    return tuple(made)


def missing_secret_files(files: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The secret files of ``(path, store user)`` that :func:`ensure_secret_files` would make,
    making nothing: what exists is checked as it would be (a link, another user's directory or
    file, a mode that lets others in: one line), what is missing is listed."""
    missing: list[str] = []
    for directory, paths in _by_directory(files).items():
        fd = _open_secrets_dir(directory, create=False)
        if fd is None:
            missing += [path for path, _ in paths]
            continue
        try:
            for path, where in paths:
                name = os.path.basename(path)
                try:
                    os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    missing.append(path)
                    continue
                _read_at(fd, name, path, where)
        finally:
            os.close(fd)
    return tuple(dict.fromkeys(missing))


def fleet_secrets_dir(inventory: str) -> str:
    """``<inventory dir>/kprov-secrets/ccache``: the controller keeps a fleet's secrets next to it.
    Only ever opened by kprov and handed to Ansible as a marked-unsafe value and a file lookup's
    argument, so any printable path will do (rules.names.check_arg_path)."""
    base = inventory if os.path.isdir(inventory) else os.path.dirname(os.path.abspath(inventory))
    return check_arg_path(os.path.join(os.path.abspath(base), *FLEET_SECRETS), "the fleet's secrets directory")
