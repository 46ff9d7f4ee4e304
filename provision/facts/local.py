"""Facts about this host: the only Python in kprov that reads the local machine.

:func:`gather` measures what a kernel build can really use here (CPUs after affinity and cgroup
quota, RAM after the cgroup limit, free disk where the tree and the ccache live, what zram offers,
which tools and versions are installed) and returns a frozen :class:`~provision.model.facts.HostFacts`.
The /proc, /sys and cgroup parsers are not here: they live in the role's
``module_utils/kbuild_host_sysprobe.py``, which the role's probe module runs on managed hosts, and
this module loads that same file, so a fleet host and the local host are measured by one code.

:func:`load_facts_file` reads a ``kprov facts --json`` file instead (``--facts FILE``). Every file
kprov reads on a user's word (facts files, a tree's Makefile, .config, changes.rst) goes through
:func:`provision.facts.files.read_bounded`: a regular file only, never more than :data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import socket
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from provision.errors import UserError
from provision.facts.files import absolute_path, current_dir, parse_json, read_text
from provision.facts.tree import running_kernel_facts, tree_facts
from provision.model.facts import (
    CpuFacts,
    DiskFacts,
    DistroFacts,
    HostFacts,
    MemoryFacts,
    ToolchainFacts,
    ZramFacts,
)
from provision.paths import SHARED_CCACHE_DIR
from provision.resources import role_dir
from provision.rules.names import CCACHE_ENTRIES

_SYSPROBE: ModuleType | None = None


def sysprobe() -> ModuleType:
    """The role's ``kbuild_host_sysprobe`` module, loaded from its file (one source of truth)."""
    global _SYSPROBE
    if _SYSPROBE is None:

        path = role_dir() / "module_utils" / "kbuild_host_sysprobe.py"
        spec = importlib.util.spec_from_file_location("kprov_kbuild_host_sysprobe", path)
        if spec is None or spec.loader is None:  # pragma: no cover - the file ships with kprov
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SYSPROBE = module
    return _SYSPROBE


#: Distribution ids (os-release ID) -> kprov family. ID_LIKE decides for the ids not listed.
_FAMILY_BY_ID = {
    "debian": "debian",
    "ubuntu": "debian",
    "linuxmint": "debian",
    "raspbian": "debian",
    "pop": "debian",
    "elementary": "debian",
    "kali": "debian",
    "devuan": "debian",
    "zorin": "debian",
    "neon": "debian",
    "fedora": "redhat",
    "rhel": "redhat",
    "centos": "redhat",
    "rocky": "redhat",
    "almalinux": "redhat",
    "ol": "redhat",
    "amzn": "redhat",
    "arch": "arch",
    "archarm": "arch",
    "manjaro": "arch",
    "endeavouros": "arch",
    "garuda": "arch",
    "artix": "arch",
    "sles": "suse",
    "sled": "suse",
    "suse": "suse",
    "alpine": "alpine",
    "postmarketos": "alpine",
}


#: ID_LIKE words -> family (``ID_LIKE="rhel centos fedora"``, ``"suse opensuse"``, ...).
_FAMILY_BY_LIKE = {
    "debian": "debian",
    "ubuntu": "debian",
    "fedora": "redhat",
    "rhel": "redhat",
    "centos": "redhat",
    "arch": "arch",
    "suse": "suse",
    "opensuse": "suse",
    "alpine": "alpine",
}


def distro_family(distro_id: str, like: tuple[str, ...] | list[str] | str = ()) -> str:
    """The kprov family (one of ``model.FAMILIES``) of an os-release ID/ID_LIKE, else ``"unknown"``."""
    did = (distro_id or "").strip().lower()
    if did in _FAMILY_BY_ID:
        return _FAMILY_BY_ID[did]
    if did.startswith("opensuse"):
        return "suse"
    words = like.split() if isinstance(like, str) else list(like)
    for word in words:
        family = _FAMILY_BY_LIKE.get(word.strip().lower())
        if family:
            return family
    return "unknown"


def _distro_facts() -> DistroFacts:
    import distro

    # os-release and the distro's release file only: the default also runs `lsb_release -a` and
    # `uname`, two processes (~100 ms) that add nothing os-release does not say on any distro
    # kprov supports.
    info = distro.LinuxDistribution(include_lsb=False, include_uname=False)
    did = info.id() or "linux"
    like = tuple(info.like().split())
    return DistroFacts(
        id=did,
        family=distro_family(did, like),
        version=info.version(best=False) or "",
        codename=info.codename() or "",
        like=like,
        name=info.name() or did,
    )


#: tool -> command line that prints its version (the probe module runs the same list remotely).
TOOLS: dict[str, tuple[str, ...]] = dict(sysprobe().TOOLS)


#: Seconds one ``--version`` may take before the tool counts as absent (a hung wrapper).
TOOL_TIMEOUT_S = 5.0


def parse_tool_version(output: str) -> str | None:
    """See ``kbuild_host_sysprobe.parse_tool_version`` (one parser for local and remote hosts)."""
    return sysprobe().parse_tool_version(output)


def _tool_version(argv: tuple[str, ...]) -> str | None:
    path = shutil.which(argv[0])
    if path is None:
        return None
    from plumbum import local
    from plumbum.commands.processes import ProcessTimedOut

    try:
        cmd = local[path][argv[1:]].with_env(**sysprobe().TOOL_ENV)
        _rc, out, err = cmd.run(retcode=None, timeout=TOOL_TIMEOUT_S)
    except (OSError, ProcessTimedOut):
        return None
    return parse_tool_version(out) or parse_tool_version(err)


def _run_output(argv: tuple[str, ...]) -> str | None:
    """A tool's standard output, or None when it is absent, fails or hangs."""
    path = shutil.which(argv[0])
    if path is None:
        return None
    from plumbum import local
    from plumbum.commands.processes import ProcessTimedOut

    try:
        rc, out, _err = local[path][argv[1:]].with_env(**sysprobe().TOOL_ENV).run(retcode=None, timeout=TOOL_TIMEOUT_S)
    except (OSError, ProcessTimedOut):
        return None
    return out if rc == 0 else None


def toolchain_facts() -> ToolchainFacts:
    """The compilers, assembler, linker and pahole as a kernel build records them, the versioned
    drivers installed, and distccd's compiler links (``kbuild_host_sysprobe.toolchain_facts``)."""
    data = sysprobe().toolchain_facts(_run_output, sysprobe().list_names)
    return ToolchainFacts.from_dict(data, "toolchain_facts")


def ccache_group_members(group: str = "kbuild") -> tuple[str, ...] | None:
    """Members of the ccache group in the local account files, None when the group does not exist."""
    members = sysprobe().group_members(group)
    return None if members is None else tuple(members)


def toolchain_versions(executor: ThreadPoolExecutor | None = None) -> dict[str, str | None]:
    """Every tool of :data:`TOOLS` -> version, or None when absent; the tools run concurrently."""
    own = executor is None
    pool = executor or ThreadPoolExecutor(max_workers=len(TOOLS))
    try:
        futures = {name: pool.submit(_tool_version, argv) for name, argv in TOOLS.items()}
        return {name: fut.result() for name, fut in futures.items()}
    finally:
        if own:
            pool.shutdown()


def _existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing ancestor: a build dir may not exist yet."""
    p = path
    while not os.path.exists(p) and p != p.parent:  # os.path.exists: False on EACCES too
        p = p.parent
    return p


def disk_facts(role: str, path: str | os.PathLike, partitions: list | None = None) -> DiskFacts:
    """Free and total space of the filesystem that holds (or will hold) ``path``."""
    import psutil

    asked = absolute_path(path)
    existing = _existing_parent(asked).resolve()
    while True:
        try:
            usage = psutil.disk_usage(str(existing))
            break
        except OSError:
            if existing == existing.parent:
                raise
            existing = existing.parent
    if partitions is None:
        partitions = psutil.disk_partitions(all=True)
    mount, fstype = "/", ""
    best = -1
    target = str(existing)
    for part in partitions:
        mp = part.mountpoint
        inside = target == mp or target.startswith(mp.rstrip("/") + "/") or mp == "/"
        if inside and len(mp) > best:
            mount, fstype, best = mp, part.fstype, len(mp)
    return DiskFacts(
        role=role,
        path=str(asked),
        mount=mount,
        free_bytes=int(usage.free),
        total_bytes=int(usage.total),
        fstype=fstype,
    )


def default_ccache_dir() -> str:
    """Where ccache 4 keeps its cache for this user: $CCACHE_DIR, else its default location."""
    env = os.environ.get("CCACHE_DIR")
    if env:
        return env
    if os.path.isdir(SHARED_CCACHE_DIR):
        return SHARED_CCACHE_DIR
    legacy = Path.home() / ".ccache"  # ccache 4 keeps using an existing ~/.ccache
    if legacy.is_dir():
        return str(legacy)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(xdg) / "ccache")


#: The group the role hands the shared ccache directory to (its kbuild_host_ccache_group default).
CCACHE_GROUP = "kbuild"


class FoundDir(NamedTuple):
    """A directory as this host has it now (what rules.names.check_found_dir judges)."""

    path: str
    kind: str  # one of rules.names.FOUND_DIR_KINDS
    world_writable: bool = False  # mode o+w (such as /var/tmp)
    home_of: str = ""  # the account whose home directory it is, "" for none


def found_dir(path: str | os.PathLike) -> FoundDir | None:
    """What ``path`` is now: missing, a symbolic link, not a directory, empty, a ccache cache
    (nothing but ccache's own entries), already root:kbuild 2775 as the role leaves it, or a
    directory holding other files; whether everyone may write it; whose home directory it is in
    the account database. None when it cannot be read (the role's kbuild_host_paths looks again
    on the host, as root)."""
    text = os.path.normpath(absolute_path(path))
    try:
        st = os.lstat(text)
    except (FileNotFoundError, NotADirectoryError):
        return FoundDir(text, "missing", home_of=sysprobe().home_of(text))
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return FoundDir(text, "symlink")
    if not stat.S_ISDIR(st.st_mode):
        return FoundDir(text, "not_a_directory")
    try:
        with os.scandir(text) as entries:  # stops at the first foreign entry: never lists a huge tree
            found = [_ccache_entry_ok(e) for e, _ in zip(entries, range(len(CCACHE_ENTRIES) + 1))]
    except OSError:
        return None
    if not found:
        kind = "empty"
    elif all(found):
        kind = "ccache"
    elif st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o2775 and sysprobe().group_name(st.st_gid) == CCACHE_GROUP:
        kind = "shared"  # as the role leaves it: handing it over again changes nothing
    else:
        kind = "other"
    return FoundDir(text, kind, bool(st.st_mode & 0o002), sysprobe().home_of(text))


def _ccache_entry_ok(entry: os.DirEntry) -> bool:
    try:
        return sysprobe().ccache_entry_ok(entry.name, entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return False


def default_ipv4() -> str | None:
    """The IPv4 address of the interface that holds the default route (from /proc/net/route)."""
    try:
        with open("/proc/net/route") as handle:
            rows = handle.read().splitlines()[1:]
    except OSError:
        return None
    iface = None
    for row in rows:
        fields = row.split()
        if len(fields) > 3 and fields[1] == "00000000" and int(fields[3], 16) & 0x2:  # RTF_GATEWAY
            iface = fields[0]
            break
    if iface is None:
        return None
    import psutil

    for addr in psutil.net_if_addrs().get(iface, ()):
        if addr.family == socket.AF_INET:
            return addr.address
    return None


def _cpu_facts(probe: dict) -> CpuFacts:
    cpu = probe["cpu"]
    return CpuFacts(
        logical=int(cpu["logical"]),
        usable=int(cpu["usable"]),
        affinity=cpu["affinity"],
        physical_cores=cpu["physical_cores"],
        cgroup_quota=cpu["cgroup_quota"],
        model=cpu["model"] or platform.processor() or "",
    )


def _zram_facts(probe: dict) -> ZramFacts:
    z = probe["zram"]
    return ZramFacts(
        compressors=tuple(z["compressors"]),
        active=z["active"],
        source=z["source"],
        device_present=bool(z["device_present"]),
        devices_in_use=tuple(z["devices_in_use"]),
        kprov_devices=tuple(z.get("kprov_devices", ())),
    )


def gather(
    tree: str | os.PathLike | None = None,
    build_dir: str | os.PathLike | None = None,
    ccache_dir: str | os.PathLike | None = None,
) -> HostFacts:
    """Measure this host. Tool versions run in a thread pool while the rest is read."""
    import psutil

    cwd = current_dir()  # a deleted cwd: one clear line now, not tools that silently "vanish" later
    tree_info = tree_facts(tree, build_dir) if tree else None  # fail fast on a bad --tree
    with ThreadPoolExecutor(max_workers=len(TOOLS)) as pool:
        tools = {name: pool.submit(_tool_version, argv) for name, argv in TOOLS.items()}
        detail = pool.submit(toolchain_facts)
        probe = sysprobe().probe("/")
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
        partitions = psutil.disk_partitions(all=True)
        build_path = build_dir or tree or cwd
        disks = (
            disk_facts("build", build_path, partitions),
            disk_facts("ccache", ccache_dir or default_ccache_dir(), partitions),
            disk_facts("home", Path.home(), partitions),
        )
        distro_info = _distro_facts()
        address = default_ipv4()
        running = running_kernel_facts()
        toolchain = {name: fut.result() for name, fut in tools.items()}
        toolchain_detail = detail.result()

    memory = MemoryFacts(
        total_bytes=int(vm.total),
        available_bytes=int(vm.available),
        cgroup_limit_bytes=probe["memory"]["cgroup_limit_bytes"],
        cgroup_usage_bytes=probe["memory"]["cgroup_usage_bytes"],
        swap_total_bytes=int(sw.total),
        swap_free_bytes=int(sw.free),
        zram_swap_bytes=int(probe["zram"]["swap_bytes"]),
        cgroup_swap_limit_bytes=probe["memory"]["cgroup_swap_limit_bytes"],
        cgroup_high_bytes=probe["memory"]["cgroup_high_bytes"],
    )
    return HostFacts(
        hostname=socket.gethostname(),
        arch=platform.machine(),
        cpu=_cpu_facts(probe),
        memory=memory,
        distro=distro_info,
        disks=disks,
        zram=_zram_facts(probe),
        toolchain=toolchain,
        tree=tree_info,
        kernel_release=platform.release(),
        running_kernel=running,
        virtualization=probe["virtualization"],
        default_ipv4=address,
        source="local",
        toolchain_facts=toolchain_detail,
        ccache_group_members=ccache_group_members(),
        service_manager=str(probe.get("service_manager") or ""),
        ci=os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"),
    )


def load_facts_file(path: str | os.PathLike) -> HostFacts:
    """A ``kprov facts --json`` file -> HostFacts; any problem is one UserError naming the file."""
    data = parse_json(read_text(path, f"--facts {path}"), f"--facts {path}")
    if isinstance(data, dict) and ("ansible_facts" in data or any(str(k).startswith("ansible_") for k in data)):
        raise UserError(f"--facts {path}: these are Ansible setup facts; pass them with --ansible-facts")
    try:
        facts = HostFacts.from_dict(data, where="")
    except UserError as exc:
        raise UserError(f"--facts {path}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"--facts {path}: wrong shape ({exc})") from None
    return dataclasses.replace(facts, source="json")


def dump_facts(facts: HostFacts) -> str:
    """HostFacts as the JSON that :func:`load_facts_file` reads back."""
    return json.dumps(facts.to_dict(), indent=2, sort_keys=True) + "\n"


def _main(argv: list[str]) -> int:  # pragma: no cover - a debugging aid: python -m provision.facts
    facts = gather(*(argv[1:2] or [None]))
    sys.stdout.write(dump_facts(facts))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main(sys.argv))
