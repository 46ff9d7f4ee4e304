"""Facts about this host: the only Python in kprov that reads the local machine.

:func:`gather` measures what a kernel build can really use here (CPUs after affinity and cgroup
quota, RAM after the cgroup limit, free disk where the tree and the ccache live, what zram offers,
which tools and versions are installed) and returns a frozen :class:`~provision.model.HostFacts`.
The /proc, /sys and cgroup parsers are not here: they live in the role's
``module_utils/kbuild_host_sysprobe.py``, which the role's probe module runs on managed hosts, and
this module loads that same file, so a fleet host and the local host are measured by one code.

:func:`load_facts_file` reads a ``kprov facts --json`` file instead (``--facts FILE``). Every file
kprov reads on a user's word (facts files, a tree's Makefile, .config, changes.rst) goes through
:func:`read_bounded`: a regular file only, never more than :data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import socket
import stat
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

from provision.errors import UserError
from provision.model import (
    MIB,
    CpuFacts,
    DiskFacts,
    DistroFacts,
    HostFacts,
    MemoryFacts,
    RunningKernelFacts,
    ToolchainFacts,
    TreeFacts,
    ZramFacts,
)

# --------------------------------------------------------------------------- bounded reads

#: The most kprov reads from one file a user names: a facts file is a few KiB, Ansible's setup
#: facts of a big host ~200 KiB, an allyesconfig .config ~300 KiB.
MAX_FILE_BYTES = 16 * MIB

#: Digits an integer in a facts file may have: 2^63 has 19. Python's json would otherwise build
#: 4,000-digit integers (and refuse beyond 4,300 with a ValueError of its own).
MAX_JSON_DIGITS = 20


def read_bounded(path: str | os.PathLike, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``; UserError naming ``what`` for anything else.

    A FIFO, a device (``/dev/zero``), a directory or a socket is refused before it is read: the
    type is checked with stat before opening (opening some devices has effects), and the open
    uses O_NONBLOCK so a file swapped for a FIFO in between cannot block; fstat then decides.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UserError(f"{what}: not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(f"{what}: cannot read it ({exc.strerror or exc})") from None
    except ValueError:  # a NUL byte in the path
        raise UserError(f"{what}: not a valid path") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{what}: not a regular file")
        size_text = f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"
        too_big = UserError(f"{what}: larger than {size_text}, not a file kprov reads")
        if info.st_size > limit:
            raise too_big
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew while being read
                raise too_big
        return b"".join(chunks)
    except OSError as exc:
        raise UserError(f"{what}: cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike, what: str, limit: int = MAX_FILE_BYTES) -> str:
    """:func:`read_bounded` as UTF-8 text (a byte-order mark is allowed); anything else is refused."""
    data = read_bounded(path, what, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what}: not UTF-8 text (byte {exc.start})") from None


def _json_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_DIGITS:
        raise UserError(f"a {digits}-digit integer (at most {MAX_JSON_DIGITS} digits)")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UserError(f"{text[:20]} is out of range for a number")
    return value


def _json_constant(name: str) -> float:
    raise UserError(f"{name} is not a number JSON allows")


def parse_json(text: str, what: str) -> object:
    """JSON text -> data, refusing what Python's json accepts but a facts file must not contain:
    NaN and Infinity, numbers that overflow, integers of more than :data:`MAX_JSON_DIGITS` digits,
    and nesting deeper than the interpreter's stack."""
    try:
        return json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except json.JSONDecodeError as exc:
        raise UserError(f"{what}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except UserError as exc:
        raise UserError(f"{what}: {exc.message}") from None
    except RecursionError:
        raise UserError(f"{what}: nested too deeply to be facts") from None
    except ValueError as exc:  # what json raises past the checks above, e.g. a lone surrogate
        raise UserError(f"{what}: not JSON ({exc})") from None


def _cwd() -> str:
    try:
        return os.getcwd()
    except FileNotFoundError:
        raise UserError(
            "the current directory no longer exists: cd to a directory that does and run kprov again"
        ) from None


def _absolute(path: str | os.PathLike) -> Path:
    """``path`` (``~`` expanded) made absolute without touching the file system beyond the cwd."""
    expanded = Path(os.path.expanduser(str(path)))
    return expanded if expanded.is_absolute() else Path(_cwd()) / expanded


# --------------------------------------------------------------------------- the shared probe

_SYSPROBE: ModuleType | None = None


def sysprobe() -> ModuleType:
    """The role's ``kbuild_host_sysprobe`` module, loaded from its file (one source of truth)."""
    global _SYSPROBE
    if _SYSPROBE is None:
        from provision.resources import role_dir

        path = role_dir() / "module_utils" / "kbuild_host_sysprobe.py"
        spec = importlib.util.spec_from_file_location("kprov_kbuild_host_sysprobe", path)
        if spec is None or spec.loader is None:  # pragma: no cover - the file ships with kprov
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SYSPROBE = module
    return _SYSPROBE


# --------------------------------------------------------------------------- distro family

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


# --------------------------------------------------------------------------- toolchain

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


# --------------------------------------------------------------------------- disks


def _existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing ancestor: a build dir may not exist yet."""
    p = path
    while not os.path.exists(p) and p != p.parent:  # os.path.exists: False on EACCES too
        p = p.parent
    return p


def disk_facts(role: str, path: str | os.PathLike, partitions: list | None = None) -> DiskFacts:
    """Free and total space of the filesystem that holds (or will hold) ``path``."""
    import psutil

    asked = _absolute(path)
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
    if os.path.isdir("/var/cache/ccache"):
        return "/var/cache/ccache"
    legacy = Path.home() / ".ccache"  # ccache 4 keeps using an existing ~/.ccache
    if legacy.is_dir():
        return str(legacy)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(xdg) / "ccache")


# --------------------------------------------------------------------------- kernel tree

#: .config options the planner looks at (exact names, or prefixes ending in ``*``).
CONFIG_KEYS = (
    "DEBUG_INFO*",
    "RANDSTRUCT*",  # the layout seed must be hashed for a shared cache (provision/cache.py)
    "GCC_PLUGIN_RANDSTRUCT",
    "LTO*",
    "GCC_PLUGINS",
    "MODULES",
    "MODULE_SIG*",
    "CC_IS_CLANG",
    "CC_IS_GCC",
    "SYSTEM_TRUSTED_KEYS",
    "SYSTEM_REVOCATION_KEYS",
    "RUST",
    "KALLSYMS_ALL",
    "KASAN*",
    "UBSAN*",
    "KCOV*",
    "GCOV*",
    "X86_KERNEL_IBT",
    "NOINSTR_VALIDATION",
    "CC_VERSION_TEXT",
    "PAHOLE_VERSION",
    "LD_IS_LLD",
    "HAS_LTO_CLANG",
)

#: Program names in changes.rst's "Current Minimal Requirements" table -> kprov tool names.
CHANGES_PROGRAMS = {
    "gnu c": "gcc",
    "clang/llvm": "clang",
    "rust": "rustc",
    "bindgen": "bindgen",
    "gnu make": "make",
    "bash": "bash",
    "binutils": "ld",
    "flex": "flex",
    "bison": "bison",
    "pahole": "pahole",
    "openssl & libcrypto": "openssl",
    "bc": "bc",
    "python": "python3",
    "gnu tar": "tar",
    "kmod": "kmod",
    "perl": "perl",
    "cpio": "cpio",
    "gdb": "gdb",
}


def parse_makefile_version(text: str) -> str | None:
    """``VERSION = 6`` / ``PATCHLEVEL = 1`` / ``SUBLEVEL = 0`` -> ``"6.1.0"``; None if not a kernel's."""
    values = {}
    for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL"):
        m = re.search(rf"^{key}\s*=\s*(\d+)\s*$", text, re.MULTILINE)
        if m:
            values[key] = m.group(1)
    if "VERSION" not in values or "PATCHLEVEL" not in values:
        return None
    return f"{values['VERSION']}.{values['PATCHLEVEL']}.{values.get('SUBLEVEL', '0')}"


def _wanted(name: str) -> bool:
    for key in CONFIG_KEYS:
        if key.endswith("*") and name.startswith(key[:-1]) or name == key:
            return True
    return False


def parse_kconfig(text: str) -> tuple[dict[str, str], int]:
    """A .config -> (the options of :data:`CONFIG_KEYS` without ``CONFIG_``, number of ``=m``).

    Values: ``y``/``m``, strings unquoted, and ``n`` for ``# CONFIG_X is not set``.
    """
    config: dict[str, str] = {}
    modules = 0
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"^CONFIG_(\w+)=(.*)$", line)
        if m:
            name, value = m.group(1), m.group(2)
            if value == "m":
                modules += 1
            if _wanted(name):
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                config[name] = value
            continue
        m = re.match(r"^# CONFIG_(\w+) is not set$", line)
        if m and _wanted(m.group(1)):
            config[m.group(1)] = "n"
    return config, modules


def parse_min_versions(text: str) -> dict[str, str]:
    """The "Current Minimal Requirements" table of ``Documentation/process/changes.rst``.

    Returns kprov tool name -> minimal version, for the programs of :data:`CHANGES_PROGRAMS`.
    Rows are split on runs of two or more blanks (some rows use tabs, so columns do not line up).
    """
    start = text.find("Current Minimal Requirements")
    if start < 0:
        return {}
    lines = text[start:].splitlines()
    result: dict[str, str] = {}
    rules = 0
    for line in lines:
        if re.match(r"^=+(\s+=+)+\s*$", line):
            rules += 1
            if rules == 3:  # top rule, rule under the header, closing rule
                break
            continue
        if rules < 2 or not line.strip():
            continue
        cells = re.split(r"\s{2,}|\t+", line.strip())
        if len(cells) < 2:
            continue
        program = re.sub(r"\\?\s*\[#\w+\]_", "", cells[0])  # Sphinx footnote marks
        program = re.sub(r"\(optional\)", "", program, flags=re.I).strip().lower()
        tool = CHANGES_PROGRAMS.get(program)
        version = re.sub(r"\.x$", "", cells[1].strip())
        if tool and re.match(r"^\d+(\.\d+)*[a-z]?$", version):
            result[tool] = version
    return result


def _tree_file(path: Path, switch: str) -> str | None:
    """A file of the tree or build dir as text, None when it does not exist; a FIFO, a device, a
    link to ``/dev/zero`` or a file beyond :data:`MAX_FILE_BYTES` is refused, never read."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        pass  # read_bounded names the problem
    except ValueError:
        raise UserError(f"{switch} {path}: not a valid path") from None
    return read_bounded(path, f"{switch} {path}").decode("utf-8", errors="replace")


def tree_facts(tree: str | os.PathLike, build_dir: str | os.PathLike | None = None) -> TreeFacts:
    """Validate a kernel source tree and read its version, .config and minimum tool versions."""
    root = _absolute(tree)
    makefile = _tree_file(root / "Makefile", "--tree")
    version = parse_makefile_version(makefile) if makefile is not None else None
    if version is None or not (root / "Kconfig").is_file() or not (root / "scripts").is_dir():
        raise UserError(
            f"--tree {tree}: not a Linux kernel source tree (no top-level Makefile with VERSION/PATCHLEVEL)"
        )
    config_dir = _absolute(build_dir) if build_dir else root
    config, modules, has_config = {}, 0, False
    dot_config = _tree_file(config_dir / ".config", "--build-dir" if build_dir else "--tree")
    if dot_config is not None:
        config, modules = parse_kconfig(dot_config)
        has_config = True
    changes = _tree_file(root / "Documentation" / "process" / "changes.rst", "--tree")
    minimums = parse_min_versions(changes) if changes is not None else {}
    # kbuild refuses O= for a source directory that was configured or built in place
    clean = not (os.path.lexists(root / ".config") or os.path.lexists(root / "include" / "config"))
    return TreeFacts(
        path=str(root),
        kernel_version=version,
        has_config=has_config,
        config=config,
        modules=modules,
        min_versions=minimums,
        clean=clean,
    )


# --------------------------------------------------------------------------- the running kernel

#: The most a running kernel's config may decompress to (a distro config is ~250 KiB).
MAX_KERNEL_CONFIG_BYTES = 4 * MIB


def _gunzip_bounded(data: bytes, what: str, limit: int = MAX_KERNEL_CONFIG_BYTES) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise UserError(f"{what}: not gzip data ({exc})") from None
    if len(out) > limit:
        raise UserError(f"{what}: decompresses to more than {limit // MIB} MiB, not a kernel config")
    return out


def running_kernel_facts(release: str | None = None, proc: str = "/proc", boot: str = "/boot") -> RunningKernelFacts:
    """Whether localmodconfig can work here: the running kernel's config (``/proc/config.gz``, else
    ``/boot/config-<release>``) and its loaded-module list (``/proc/modules``). A file that cannot be
    read counts as absent; what it holds is parsed like a tree's .config."""
    release = platform.release() if release is None else release
    config_path, text = None, None
    candidates = [(Path(proc) / "config.gz", True)]
    if release and "/" not in release:
        candidates.append((Path(boot) / f"config-{release}", False))
    for path, gz in candidates:
        if not path.is_file():
            continue
        try:
            raw = read_bounded(path, str(path))
            text = (_gunzip_bounded(raw, str(path)) if gz else raw).decode("utf-8", errors="replace")
        except UserError:
            continue
        config_path = str(path)
        break
    config, modules = parse_kconfig(text) if text is not None else ({}, 0)
    modules_file = Path(proc) / "modules"
    loaded = 0
    listed = modules_file.is_file()
    if listed:
        try:
            loaded = sum(1 for line in read_bounded(modules_file, str(modules_file)).splitlines() if line.strip())
        except UserError:
            listed = False
    return RunningKernelFacts(
        config_path=config_path, modules_list=listed, loaded_modules=loaded, config=config, modules=modules
    )


# --------------------------------------------------------------------------- network


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


# --------------------------------------------------------------------------- gather


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

    cwd = _cwd()  # a deleted cwd: one clear line now, not tools that silently "vanish" later
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
    )


# --------------------------------------------------------------------------- facts files


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
