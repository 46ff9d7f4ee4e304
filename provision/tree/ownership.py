"""Whose code a kernel tree is, and the scratch directories of a tree run as its owner.

kprov that is not root runs a tree as itself. kprov that is root looks at the tree, every file in
it and every directory above it (:func:`tree_runner`): when one of them belongs to a user other
than root, that user could change what runs, so the tree's code runs as that user
(:mod:`provision.tree.sandbox` drops to it); two such users, or a directory or file that users
other than the one it runs as can write (group or world write, or a POSIX ACL entry with write
for another user or group, except a sticky directory such as
/tmp whose entry on the path is root's or the owner's), are refused with one line before anything
runs. The check uses the tree's real path, and that is the path make runs in: a link on the way
cannot be swapped afterwards.

A tree run as its owner writes its ``O=`` in a directory of that owner (0700) inside root's own
directories (:func:`owned_dir`: ``$XDG_CACHE_HOME/kprov/owners/UID/...`` when that path is root's
alone and open to pass through, else ``/var/cache/kprov/owners/UID/...``), so the owner cannot
move it, and what kprov reads back from there is read without following a link and only when the
owner's (:func:`read_below`); kprov writes there only new files, never through a link
(:func:`write_below`).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import grp
import os
import pwd
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from provision.errors import UserError
from provision.rules.names import path_under
from provision.tree.sandbox import CannotRun, Refused, RunAs, as_self
from provision.units import MIB

#: Where the scratch directories of trees run as their owner live when kprov is root.
SYSTEM_OWNERS_ROOT = Path("/var/cache/kprov/owners")

#: The most entries the ownership check looks at (a kernel tree with its .git has ~100,000).
MAX_ENTRIES = 2_000_000


def _user(uid: int) -> RunAs:
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:  # a uid without an account (a tarball's): its own number as its group
        return RunAs(uid=uid, gid=uid, groups=(), name=str(uid), home="/", drops=True)
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return RunAs(uid=uid, gid=entry.pw_gid, groups=groups, name=entry.pw_name, home=entry.pw_dir or "/", drops=True)


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


#: The extended attribute holding a file's POSIX access ACL, and the parts of its format kprov reads
#: (linux/posix_acl_xattr.h: a version, then (tag, perm, id) entries).
ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP = 0x02, 0x04, 0x08


class _Writers:
    """Which users besides ``uid`` (and root) could write an entry, by its mode and group."""

    def __init__(self, uid: int):
        self.uid = uid
        self._groups: dict[int, bool] = {}
        self._primary: dict[int, set[int]] | None = None

    def _group_has_others(self, gid: int) -> bool:
        if gid not in self._groups:
            if self._primary is None:
                self._primary = collections.defaultdict(set)
                for entry in pwd.getpwall():
                    self._primary[entry.pw_gid].add(entry.pw_uid)
            members = set(self._primary.get(gid, ()))
            try:
                for name in grp.getgrgid(gid).gr_mem:
                    try:
                        members.add(pwd.getpwnam(name).pw_uid)
                    except KeyError:
                        members.add(-1)
            except KeyError:
                pass
            self._groups[gid] = bool(members - {0, self.uid})
        return self._groups[gid]

    def _acl_has_others(self, path: str, info: os.stat_result) -> bool:
        """Whether ``path``'s POSIX access ACL (if any) lets a user other than ``uid`` or root
        write: its group bits are then the ACL's mask, which covers named users and groups too."""
        try:
            raw = os.getxattr(path, ACL_XATTR, follow_symlinks=False)
        except OSError as exc:
            # no ACL, no ACLs on this file system, or gone; anything else: assume the worst
            return exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT)
        if len(raw) < 4 or (len(raw) - 4) % 8 or struct.unpack_from("<I", raw)[0] != _ACL_VERSION:
            return True  # not an ACL kprov can read: writable by anyone it names
        for offset in range(4, len(raw), 8):
            tag, perm, ident = struct.unpack_from("<HHI", raw, offset)
            if not perm & 0o2:
                continue
            if tag == _ACL_USER and ident not in (0, self.uid):
                return True
            if tag == _ACL_GROUP_OBJ and self._group_has_others(info.st_gid):
                return True
            if tag == _ACL_GROUP and self._group_has_others(ident):
                return True
        return False

    def others_can_write(self, info: os.stat_result, child_uid: int | None = None, path: str | None = None) -> bool:
        """Whether users besides ``uid`` and root can write the entry ``info`` (of ``path``: its
        POSIX ACL, when it has one, is looked at too; without ``path`` only the mode counts)."""
        mode = info.st_mode
        if stat.S_ISLNK(mode):
            return False
        group_writes = mode & 0o020 and (
            self._group_has_others(info.st_gid) or (path is not None and self._acl_has_others(path, info))
        )
        if not (mode & 0o002 or group_writes):
            return False
        # a sticky directory (/tmp): others can add entries, not move or delete this one
        return not (stat.S_ISDIR(mode) and mode & stat.S_ISVTX and child_uid in (0, self.uid))


def _chain(real: str) -> list[str]:
    """``/``, then every directory down to ``real``."""
    out = [real]
    while out[-1] != "/":
        out.append(os.path.dirname(out[-1]))
    return out[::-1]


def _walk(top: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``top`` with its lstat, links not followed."""
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield entry.path, info
            if stat.S_ISDIR(info.st_mode):
                stack.append(entry.path)


def _path_checks(real: str) -> list[tuple[str, os.stat_result, int | None]]:
    """(directory, lstat, owner of its entry on the path) from ``/`` down to ``real``."""
    infos = []
    for path in _chain(real):
        try:
            infos.append((path, os.lstat(path)))
        except FileNotFoundError:
            break
    return [(p, info, infos[i + 1][1].st_uid if i + 1 < len(infos) else None) for i, (p, info) in enumerate(infos)]


def tree_runner(tree: str, switch: str = "--tree") -> tuple[RunAs, str]:
    """Who runs ``tree``'s code, and the tree's real path (the one to run: no link on it can be
    swapped by someone else). Refused when kprov cannot tell one user whose code it is."""
    real = os.path.realpath(tree)
    if os.geteuid() != 0:
        return as_self(), real
    owners: dict[int, str] = {}

    def owned(found: list[tuple[str, os.stat_result, int | None]]) -> list[tuple[str, os.stat_result, int | None]]:
        for path, info, _child in found:
            if info.st_uid != 0:
                owners.setdefault(info.st_uid, path)
        if len(owners) > 1:
            (a, pa), (b, pb) = list(owners.items())[:2]
            raise Refused(
                f"{switch} {tree}: {pa} belongs to {_name(a)} and {pb} to {_name(b)}: kprov runs a tree's code "
                "as the one user who owns it, and will not choose"
            )
        return found

    try:
        checks = owned(_path_checks(real))
        walked: list[str] = []
        todo = [real]
        while todo:  # the tree, and what its links name outside it (the code behind them runs too)
            top = todo.pop()
            if any(path_under(top, done) for done in walked):
                continue
            walked.append(top)
            for path, info in _walk(top):
                checks += owned([(path, info, None)])
                if len(checks) > MAX_ENTRIES:
                    raise Refused(f"{switch} {tree}: more than {MAX_ENTRIES} files to look at: not a kernel tree")
                if stat.S_ISLNK(info.st_mode):
                    target = os.path.realpath(path)
                    if not any(path_under(target, done) for done in walked):
                        checks += owned(_path_checks(target))
                        if os.path.isdir(target):
                            todo.append(target)
    except OSError as exc:
        raise Refused(f"{switch} {tree}: cannot inspect it ({exc.strerror or exc})") from None
    uid = next(iter(owners), 0)
    writers = _Writers(uid)
    who = "root" if uid == 0 else _name(uid)
    for path, info, child_uid in checks:
        if writers.others_can_write(info, child_uid, path):
            raise Refused(
                f"{switch} {tree}: {path} can be written by users other than {who} (mode "
                f"{stat.S_IMODE(info.st_mode):04o}, group {info.st_gid}, or its ACL): they could change the code "
                "kprov runs from the tree; make it writable by its owner only (chmod go-w, setfacl -b)"
            )
    return (_user(uid) if uid != 0 else as_self()), real


# --------------------------------------------------------------------------- scratch directories


def _owners_roots() -> list[Path]:
    roots = []
    base = os.environ.get("XDG_CACHE_HOME")
    if base and os.path.isabs(base):
        roots.append(Path(base) / "kprov" / "owners")
    return roots + [SYSTEM_OWNERS_ROOT]


def _root_chain_usable(path: Path) -> bool:
    """Every existing directory of ``path`` is root's, writable by root alone (or sticky, with
    the next entry root's) and open to everyone to pass through."""
    real = os.path.realpath(path)
    writers = _Writers(0)
    parts = _chain(real)
    infos = []
    for part in parts:
        try:
            infos.append(os.lstat(part))
        except FileNotFoundError:
            break
    for i, info in enumerate(infos):
        child = infos[i + 1].st_uid if i + 1 < len(infos) else 0
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or writers.others_can_write(info, child, parts[i]):
            return False
        if not info.st_mode & 0o001:
            return False
    return True


def _make_root_dirs(path: Path) -> Path:
    real = Path(os.path.realpath(path))
    for part in _chain(str(real))[1:]:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o755)
            os.chmod(part, 0o755)
    return real


def owned_dir(runner: RunAs, *parts: str, owner: bool = True) -> Path:
    """``OWNERS/UID/parts...`` for a tree run as ``runner`` (which drops): every directory root's
    and open to pass through, the last one the user's own (0700), or root's (``owner=False``)."""
    for base in _owners_roots():
        if _root_chain_usable(base / str(runner.uid) / Path(*parts[:-1])):
            break
    else:
        raise CannotRun(
            f"no scratch directory for {runner.shown()}: {SYSTEM_OWNERS_ROOT} is not root's alone or not open to pass through"
        )
    try:
        parent = _make_root_dirs(base / str(runner.uid) / Path(*parts[:-1]))
        leaf = parent / parts[-1]
        try:
            os.mkdir(leaf, 0o700)
            if owner:
                os.lchown(leaf, runner.uid, runner.gid)
            else:
                os.chmod(leaf, 0o755)
        except FileExistsError:
            pass
        info = os.lstat(leaf)
    except OSError as exc:
        raise CannotRun(f"cannot make a scratch directory for {runner.shown()}: {exc.strerror or exc}") from None
    want = runner.uid if owner else 0
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != want:
        raise CannotRun(f"{leaf} is not a directory of {_name(want)}: not used")
    return leaf


@contextlib.contextmanager
def _below(base: Path, rel: str) -> Iterator[tuple[int, str]]:
    """(fd of the directory holding ``base/rel``, its last name), reached without following a
    link below ``base``."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise FileNotFoundError(f"{rel}: not a path below {base}")
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
        yield fd, parts[-1]
    finally:
        os.close(fd)


def read_below(base: Path, rel: str, what: str, owner: int | None = None, limit: int = 64 * MIB) -> bytes | None:
    """The bytes of the regular file ``base/rel`` (None when it does not exist), read without
    following a link, and only when ``owner`` (if given) owns it."""
    try:
        with _below(base, rel) as (dir_fd, name):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise UserError(f"{what}: cannot read it ({exc.strerror or exc})") from None
    with contextlib.closing(os.fdopen(fd, "rb")) as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{what}: not a regular file")
        if owner is not None and info.st_uid != owner:
            raise UserError(f"{what}: belongs to {_name(info.st_uid)}, not to {_name(owner)}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UserError(f"{what}: larger than {limit // MIB} MiB, not a file kprov reads")
    return data


def size_below(base: Path, rel: str) -> int:
    """The size of the regular file ``base/rel``, 0 for anything else."""
    try:
        with _below(base, rel) as (dir_fd, name):
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def remove_below(base: Path, rel: str) -> None:
    """Remove the file ``base/rel`` (not a directory; a link itself, never what it names)."""
    try:
        with _below(base, rel) as (dir_fd, name):
            os.unlink(name, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        pass
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # a link on the way: nothing of ours
            raise


def write_below(base: Path, rel: str, data: bytes, runner: RunAs) -> None:
    """``base/rel`` made anew with ``data``, owned by ``runner`` (never through a link)."""
    remove_below(base, rel)
    with _below(base, rel) as (dir_fd, name):
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
        with open(fd, "wb") as f:
            f.write(data)
            if runner.drops:
                os.fchown(f.fileno(), runner.uid, runner.gid)
