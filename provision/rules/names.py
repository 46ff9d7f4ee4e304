"""Names, sizes, versions and paths: account and kernel arch names, sizes with binary units,
version strings, whole numbers and flags from YAML or JSON, absolute paths in a safe character
set (and, for paths only ever handed over as an argument, a wider one), directories kprov may
hand to a group (by their path, and as the host found them), ccache sloppiness, package names
and area tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from provision.calibration import ARCH_ALIASES, KERNEL_ARCHES
from provision.errors import UserError, shown
from provision.rules.addresses import where_value
from provision.units import ccache_size_string

#: A group or user name as useradd's default NAME_REGEX allows it (plus a leading underscore).
_ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)


#: Kernel ARCH= values (arch/ directory names).
_KERNEL_ARCH = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)


#: Characters of a value that is a plain name (in shell-sourced files: nothing the shell expands).
NAME_VALUE = re.compile(r"[A-Za-z0-9._-]{1,255}", re.ASCII)


def check_account_name(name: Any, where: str) -> str:
    """A group or user name: ``[a-z_][a-z0-9_-]*``, at most 32 characters."""
    if not isinstance(name, str) or not _ACCOUNT_NAME.fullmatch(name):
        raise UserError(f"{where_value(where, name)} is not a valid group name (expected e.g. kbuild: a-z, 0-9, _ and -)")
    return name


def check_user_name(name: Any, where: str) -> str:
    """A user account name, by the rule group names follow."""
    if not isinstance(name, str) or not _ACCOUNT_NAME.fullmatch(name):
        raise UserError(f"{where_value(where, name)} is not a valid user name (expected e.g. alice: a-z, 0-9, _ and -)")
    return name


def kernel_arch(name: Any, where: str) -> str:
    """An architecture as the user names it -> the kernel's ARCH= name: a kernel name (the arch/
    directories of 6.1) or a common other name of one (``aarch64`` -> ``arm64``, ``x86_64`` -> ``x86``)."""
    if isinstance(name, str) and name in ARCH_ALIASES:
        return ARCH_ALIASES[name]
    return check_kernel_arch(name, where)


def check_kernel_arch(name: Any, where: str) -> str:
    """A kernel ARCH= name as Goals hold it; another name of one is refused with the kernel's name."""
    if isinstance(name, str) and name in ARCH_ALIASES:
        raise UserError(f"{where_value(where, name)}: the kernel calls this architecture {ARCH_ALIASES[name]}")
    if not isinstance(name, str) or not _KERNEL_ARCH.fullmatch(name) or name not in KERNEL_ARCHES:
        raise UserError(
            f"{where_value(where, name)} is not a kernel architecture (known: {', '.join(KERNEL_ARCHES)}; "
            "uname -m names such as aarch64 and x86_64 are accepted too)"
        )
    return name


_SIZE = re.compile(r"(?P<int>[0-9]{1,15})(?:\.(?P<frac>[0-9]{1,6}))?(?P<unit>[kKMGT]i?)?B?", re.ASCII)


#: Binary units whether or not the "i" is written: ``8G`` is 8 GiB. The plan hands ccache the
#: size as ``8Gi`` (model.ccache_size_string), so ccache gets exactly what kprov planned.
_UNITS = {
    "k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
    "ki": 1 << 10, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
}


#: The largest size kprov accepts for a cache: larger is a typo (``1e35T``), and ccache reads an
#: overflowing size as "no limit".
MAX_SIZE_BYTES = 64 << 40


def parse_size(text: Any, where: str = "size") -> int:
    """``8G``, ``512M``, ``1.5Gi``, ``10GiB`` -> bytes, in binary units (G and Gi are both 2^30).

    ASCII digits only, at most 64 TiB, never zero. A bare number is refused: ``10`` could mean
    bytes or gigabytes, and guessing wrong either fills a disk or makes the cache useless.
    """
    if not isinstance(text, str):
        raise UserError(f"{where_value(where, text)}: expected a size as text, such as 8G, 512M or 10Gi")
    if not text:
        raise UserError(f"{where} is empty: expected a size such as 8G, 512M or 10Gi")
    m = _SIZE.fullmatch(text)
    if not m:
        raise UserError(
            f"{where_value(where, text)}: expected a size such as 8G, 512M or 10Gi "
            "(ASCII digits, at most 15 before the point, and a unit k, M, G or T)"
        )
    if m.group("unit") is None:
        raise UserError(f"{where_value(where, text)}: give a unit, e.g. {m.group('int')}G or {m.group('int')}M")
    unit, frac = _UNITS[m.group("unit")], m.group("frac") or ""
    size = int(m.group("int")) * unit + (int(frac or "0") * unit) // 10 ** len(frac)
    if size <= 0:
        raise UserError(f"{where_value(where, text)}: must be larger than zero")
    if size > MAX_SIZE_BYTES:
        raise UserError(f"{where_value(where, text)}: more than 64 TiB is surely a typo")
    return size


def check_size_bytes(value: Any, where: str) -> int:
    """A size already in bytes (from a goals file): 1 byte .. 64 TiB."""
    return check_int(value, where, 1, MAX_SIZE_BYTES)


def ccache_size(text: Any, where: str) -> str:
    """A size for ccache.conf, in ccache's binary-unit syntax (``2048Mi``, ``8Gi``)."""
    return ccache_size_string(parse_size(text, where))


_VERSION = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,9}))?(?:\.([0-9]{1,9}))?", re.ASCII)


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """First ``X[.Y[.Z]]`` in ``text`` as a 3-tuple, or None when there is none."""
    if not text:
        return None
    m = _VERSION.search(str(text))
    if not m:
        return None
    return tuple(int(g or 0) for g in m.groups())  # type: ignore[return-value]


def version_below(have: str | None, minimum: str | None) -> bool:
    """True only when both versions parse and ``have`` is older than ``minimum``."""
    h, m = parse_version(have), parse_version(minimum)
    return h is not None and m is not None and h < m


_INT_TEXT = re.compile(r"-?[0-9]{1,12}", re.ASCII)


def check_int(value: Any, where: str, low: int, high: int, why: str = "") -> int:
    """A whole number in ``low..high``; ASCII digit strings are accepted (Ansible's k=v vars are text)."""
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{where_value(where, value)}: expected a whole number in {low}..{high}")
    if not low <= value <= high:
        raise UserError(f"{where_value(where, value)}: must be within {low}..{high}" + (f" ({why})" if why else ""))
    return value


_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})


_FALSE = frozenset({"n", "no", "off", "0", "false", "f", ""})


def check_flag(value: Any, where: str) -> bool:
    """A boolean as Ansible's ``bool`` filter reads it; anything else is an error, not false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UserError(f"{where_value(where, value)}: expected true or false")


#: Characters of a path kprov writes into ccache.conf and shell-sourced files: nothing a shell
#: expands or splits ($ ` ' " spaces * ? [ ~ :), nothing ccache expands ($), no Jinja braces.
_PATH = re.compile(r"[A-Za-z0-9._+@/-]+", re.ASCII)


PATH_MAX = 4095


#: The role makes the ccache directory root:GROUP mode 2775: never one of these trees or a directory
#: in them (the system's programs, configuration, kernel interfaces, logs, spools and mail, package
#: managers' databases).
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
               "/sbin", "/sys", "/usr", "/var/lock", "/var/log", "/var/mail", "/var/run", "/var/spool",
               "/var/cache/apt", "/var/cache/debconf", "/var/lib/apk", "/var/lib/apt", "/var/lib/dnf", "/var/lib/dpkg",
               "/var/lib/pacman", "/var/lib/rpm", "/var/lib/yum", "/var/lib/zypp")


#: ... nor one of these directories themselves (a directory of its own below them is fine, such as
#: /var/cache/ccache or /home/alice/ccache). One level (``/home``, ``/root``, ``/var``, ``/tmp``) is
#: refused anyway; a user's home directory itself is refused from the host's account database
#: (:func:`check_found_dir`).
SYSTEM_ROOTS = ("/var/backups", "/var/cache", "/var/crash", "/var/empty", "/var/lib", "/var/local", "/var/opt",
                "/var/tmp", "/var/www")


#: A path through one of these names is someone's keys, never a cache.
_KEY_DIRS = (".ssh", ".gnupg")


def _absolute_text(text: Any, where: str) -> None:
    """What every path kprov takes must be: text, not empty, at most PATH_MAX, absolute."""
    if not isinstance(text, str):
        raise UserError(f"{where_value(where, text)}: expected an absolute path as text")
    if not text:
        raise UserError(f"{where} is empty: expected an absolute path")
    if len(text) > PATH_MAX:
        raise UserError(f"{where}: a path of {len(text)} characters is longer than PATH_MAX ({PATH_MAX})")
    if not text.startswith("/"):
        raise UserError(f"{where_value(where, text)}: expected an absolute path (starting with /)")


def check_path(text: Any, where: str) -> str:
    """An absolute path in a safe character set, without ``.``/``..``; returned normalised."""
    _absolute_text(text, where)
    if not _PATH.fullmatch(text):
        raise UserError(
            f"{where_value(where, text)}: a path may only contain ASCII letters, digits and . _ + @ - / "
            "(no spaces, quotes, $, braces or control characters)"
        )
    parts = [p for p in text.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise UserError(f"{where_value(where, text)}: '.' and '..' are not allowed in the path")
    if any(len(p) > 255 for p in parts):
        raise UserError(f"{where_value(where, text)}: a path component is longer than 255 characters")
    return "/" + "/".join(parts)


def path_under(path: str, base: str) -> bool:
    """``path`` is ``base`` or below it, compared by their components (absolute paths; repeated and
    trailing slashes do not count): ``/home2`` is not under ``/home``."""
    parts, top = [p for p in path.split("/") if p], [p for p in base.split("/") if p]
    return parts[: len(top)] == top


#: Where the compiler's own headers live: a ccache base_dir that holds them would make their paths
#: relative too, differently from every build directory (ccache's manual: "Don't use / as the base
#: directory").
COMPILER_HEADER_DIRS = ("/usr/include", "/usr/lib", "/usr/local/include", "/usr/local/lib")


def check_source_root(text: Any, where: str) -> str:
    """The common parent of a host's kernel trees, ccache's base_dir for every user: an absolute
    path (:func:`check_path`) that holds none of the compiler's header directories."""
    path = check_path(text, where)
    if any(path_under(d, path) for d in COMPILER_HEADER_DIRS):
        raise UserError(
            f"{where_value(where, text)}: holds the compiler's own headers, whose paths ccache would then rewrite "
            "as well; give the directory that holds the trees (e.g. /home, /srv/src)"
        )
    return path


def check_owned_dir(text: Any, where: str) -> str:
    """A directory the role creates and hands to a group: a path at least two levels deep that is
    not a system directory or inside one (:data:`SYSTEM_DIRS`, :data:`SYSTEM_ROOTS`), nor a path
    through a ``.ssh`` or ``.gnupg`` directory. What only the host can tell (the directory holds
    other files, everyone may write it, it is a user's home) is :func:`check_found_dir`'s."""
    path = check_path(text, where)
    if path.count("/") < 2:
        raise UserError(f"{where_value(where, text)}: give a directory of its own, at least two levels deep (e.g. /var/cache/ccache)")
    if any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS) or path in SYSTEM_ROOTS:
        raise UserError(f"{where_value(where, text)}: a system directory; give a directory of its own (e.g. /var/cache/ccache)")
    if any(part in _KEY_DIRS for part in path.split("/")):
        raise UserError(f"{where_value(where, text)}: a directory of keys; give a directory of its own (e.g. /var/cache/ccache)")
    return path


#: What kprov found at a directory it would hand to a group (facts.local.found_dir): nothing,
#: an empty directory, a ccache cache (nothing but ccache's own entries), a directory already as
#: the role leaves it (root:kbuild 2775: handing it over again changes nothing), a directory
#: holding anything else, something that is not a directory, or a symbolic link.
FOUND_DIR_KINDS = ("missing", "empty", "ccache", "shared", "other", "not_a_directory", "symlink")


#: The entries of a ccache cache directory (ccache 3 and 4): the sixteen first-level
#: subdirectories, its temporary and lock directories, its configuration, stats and tag files.
CCACHE_ENTRIES = frozenset("0123456789abcdef") | {"tmp", "lock", "ccache.conf", "stats", "CACHEDIR.TAG"}


def check_found_dir(path: str, kind: str, world_writable: bool, home_of: str, where: str) -> str:
    """The directory kprov would make root:GROUP 2775, as the host showed it: refused when it is
    no directory, a user's home directory, writable by everyone (``/var/tmp``: it would lose its
    sticky bit) or already holding files that are not a ccache cache (a database, a spool,
    someone's files: they would become the group's to rewrite), unless it is root:GROUP 2775
    already. A symbolic link is the root-safety check's to refuse (every path kprov writes as
    root: apply.checks and the role's kbuild_host_paths), before anything is written. The role's
    kbuild_host_paths module judges a managed host the same way."""
    at = f"{where} {shown(path, PATH_MAX)}"  # a path that passed check_owned_dir: shown whole
    if kind not in FOUND_DIR_KINDS:
        raise UserError(f"{at}: found {shown(kind)}, expected one of {', '.join(FOUND_DIR_KINDS)}")
    if kind == "symlink":
        return path
    if kind == "not_a_directory":
        raise UserError(f"{at}: exists and is not a directory")
    if home_of:
        raise UserError(f"{at}: the home directory of {shown(home_of)}; give a directory of its own (e.g. /var/cache/ccache)")
    if world_writable:
        raise UserError(
            f"{at}: writable by everyone; kprov would make it root:kbuild 2775 (and drop a sticky bit): "
            "give a directory of its own (e.g. /var/cache/ccache)"
        )
    if kind == "other":
        raise UserError(
            f"{at}: already holds files that are not a ccache cache; the group would be able to rewrite them: "
            "give an empty or new directory (e.g. /var/cache/ccache)"
        )
    return path


_JINJA_START = ("{{", "{%", "{#")


def check_arg_path(text: Any, where: str) -> str:
    """An absolute path kprov only hands to programs as an argument or opens itself (a secret
    file, the fleet's secrets directory): any printable characters (spaces, parentheses, ``!``,
    single braces), but no control, format or line-separator characters, no Jinja start
    (``{{``, ``{%``, ``{#``: Ansible would run it when a fact holding the path is read again),
    no ``.``/``..``. Never for a value written into a shell-sourced file or ccache.conf:
    :func:`check_path` is for those."""
    _absolute_text(text, where)
    if not text.isprintable():
        raise UserError(f"{where_value(where, text)}: a path may not contain control characters or line breaks")
    if any(mark in text for mark in _JINJA_START):
        raise UserError(f"{where_value(where, text)}: a path may not contain {{{{, {{% or {{# (a template)")
    parts = [p for p in text.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise UserError(f"{where_value(where, text)}: '.' and '..' are not allowed in the path")
    if any(len(p.encode("utf-8")) > 255 for p in parts):
        raise UserError(f"{where_value(where, text)}: a path component is longer than 255 bytes")
    return "/" + "/".join(parts)


_SLOPPINESS = re.compile(r"[a-z_]{1,40}", re.ASCII)


def check_sloppiness(values: Any, where: str) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise UserError(f"{where_value(where, values)}: expected a list such as [time_macros]")
    for v in values:
        if not isinstance(v, str) or not _SLOPPINESS.fullmatch(v):
            raise UserError(f"{where}: {shown(v)} is not a ccache sloppiness name (expected e.g. time_macros)")
    return tuple(values)


#: A distro package name (Debian, Fedora, Arch, openSUSE, Alpine), optionally pinned to a version
#: with '='; nothing that starts like an option (``-o ...``) or carries a separator.
_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]{0,127}(=[A-Za-z0-9.+~:_-]{1,128})?", re.ASCII)


def check_packages(names: Any, where: str) -> tuple[str, ...]:
    """A list of package names the package manager is handed as they are."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise UserError(f"{where_value(where, names)}: expected a list of package names")
    out = tuple(names)
    for name in out:
        if not isinstance(name, str) or not _PACKAGE.fullmatch(name):
            raise UserError(f"{where}: {shown(name)} is not a package name (letters, digits and + . _ -, optionally =VERSION)")
    return out


#: The role's areas, in the order its tasks/main.yml runs them; each is tagged kbuild_host_<area>.
AREAS = ("packages", "zram", "ccache", "distcc", "hosts", "buildenv")


def check_area_tags(values: Sequence[str], switch: str) -> tuple[str, ...]:
    """``--tags``/``--skip-tags`` values (repeated, or comma-separated as Ansible takes them) as
    area names; anything else is one line and exit 2: a tag that matched nothing would make a run
    that silently does nothing."""
    areas: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            area = name[len("kbuild_host_"):] if name.startswith("kbuild_host_") else name
            if area not in AREAS:
                raise UserError(f"{switch} {name or repr(part)}: not an area of kprov apply (choose from {', '.join(AREAS)})")
            areas.append(area)
    return tuple(dict.fromkeys(areas))


_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}", re.ASCII)


def check_group_name(name: Any, where: str) -> str:
    """The name of an inventory group (a role variable that names a farm's or a cache's hosts)."""
    if not isinstance(name, str):
        raise UserError(f"{where} is {shown(name)}: expected the name of an inventory group, such as distcc_servers")
    if not _GROUP_NAME.fullmatch(name):
        raise UserError(
            f"{where_value(where, name)} is not an inventory group name (ASCII letters, digits and _, "
            "not starting with a digit; e.g. distcc_servers)"
        )
    return name
