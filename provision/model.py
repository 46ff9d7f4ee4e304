"""The data kprov passes along its one direction of flow: HostFacts + Goals -> Plan.

Everything here is a frozen dataclass with ``to_dict()``/``from_dict()``. Dicts carry a ``schema``
number at the top level; :func:`from_dict` refuses a dict of another schema or of the wrong shape
with a :class:`UserError` that names the field, so a bad ``--facts`` file is one clear line.

This module does no I/O and imports nothing that does: the planner depends on it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from provision.errors import UserError

FACTS_SCHEMA = 1
PLAN_SCHEMA = 1

GIB = 1 << 30
MIB = 1 << 20

#: Config targets kprov knows how to plan for (``make <target>``).
TARGETS = (
    "defconfig",
    "localmodconfig",
    "olddefconfig",
    "tinyconfig",
    "allnoconfig",
    "allmodconfig",
    "allyesconfig",
)
COMPILERS = ("auto", "gcc", "clang")
DEBUG_INFO = ("auto", "none", "dwarf", "btf")
LTO = ("auto", "none", "thin", "full")
#: Distro families kprov has package lists and zram tooling for.
FAMILIES = ("debian", "redhat", "arch", "suse", "alpine")


# --------------------------------------------------------------------------- generic (de)serialise


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Convert plain JSON data ``value`` to type ``tp``; raise UserError naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except UserError as exc:
                errors.append(exc)
        raise errors[0] if errors else UserError(f"{where}: unexpected null")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected an object, got {type(value).__name__}")
        return _from_plain(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {type(value).__name__}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected an object, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _from_plain(cls: type, data: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{where}: missing field '{f.name}'")
    return cls(**kwargs)


class _Serialisable:
    def to_dict(self) -> dict:
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None):
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise UserError(f"{where}: expected an object, got {type(data).__name__}")
        schema = getattr(cls, "SCHEMA", None)
        if schema is not None and data.get("schema", schema) != schema:
            raise UserError(f"{where}: schema {data.get('schema')!r} is not supported (expected {schema})")
        return _from_plain(cls, data, where)


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class CpuFacts(_Serialisable):
    logical: int  # CPUs the kernel runs (os.cpu_count)
    usable: int  # what a build can really use: affinity capped by the cgroup quota
    affinity: int | None = None  # len(os.sched_getaffinity(0))
    physical_cores: int | None = None
    cgroup_quota: float | None = None  # CPUs worth of quota (cpu.max / cfs_quota), None = unlimited
    model: str = ""


@dataclass(frozen=True)
class MemoryFacts(_Serialisable):
    total_bytes: int  # MemTotal
    available_bytes: int  # MemAvailable
    cgroup_limit_bytes: int | None = None  # memory.max / memory.limit_in_bytes, None = unlimited
    cgroup_usage_bytes: int | None = None
    swap_total_bytes: int = 0
    swap_free_bytes: int = 0
    zram_swap_bytes: int = 0  # part of swap_total that is zram

    @property
    def effective_bytes(self) -> int:
        """RAM a build may use: MemTotal, or the cgroup limit when that is smaller."""
        if self.cgroup_limit_bytes and self.cgroup_limit_bytes < self.total_bytes:
            return self.cgroup_limit_bytes
        return self.total_bytes


@dataclass(frozen=True)
class DiskFacts(_Serialisable):
    role: str  # "build" (tree / O= dir), "ccache", or "home"
    path: str  # the path that was asked about
    mount: str  # mount point of the filesystem holding it
    free_bytes: int
    total_bytes: int
    fstype: str = ""


@dataclass(frozen=True)
class DistroFacts(_Serialisable):
    id: str  # debian, ubuntu, fedora, arch, opensuse-tumbleweed, alpine, ...
    family: str  # one of FAMILIES, or "unknown"
    version: str = ""
    codename: str = ""
    like: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class ZramFacts(_Serialisable):
    compressors: tuple[str, ...] = ()  # what the kernel offers, in its order
    active: str | None = None  # the bracketed one in comp_algorithm
    source: str = "none"  # "sysfs", "proc-crypto", "none"
    device_present: bool = False  # /dev/zram0 exists
    devices_in_use: tuple[str, ...] = ()  # zram devices already active as swap
    kprov_devices: tuple[str, ...] = ()  # those of them kprov set up (its to resize, not a user's)


@dataclass(frozen=True)
class TreeFacts(_Serialisable):
    path: str
    kernel_version: str  # "6.1.0" from VERSION/PATCHLEVEL/SUBLEVEL
    has_config: bool = False
    config: dict[str, str] = field(default_factory=dict)  # the options that matter, e.g. DEBUG_INFO_BTF=y
    modules: int = 0  # number of =m options in .config
    min_versions: dict[str, str] = field(default_factory=dict)  # tool -> minimum, from changes.rst


@dataclass(frozen=True)
class HostFacts(_Serialisable):
    SCHEMA = FACTS_SCHEMA

    hostname: str
    arch: str
    cpu: CpuFacts
    memory: MemoryFacts
    distro: DistroFacts
    disks: tuple[DiskFacts, ...] = ()
    zram: ZramFacts = field(default_factory=ZramFacts)
    toolchain: dict[str, str | None] = field(default_factory=dict)  # tool -> version, None = absent
    tree: TreeFacts | None = None
    kernel_release: str = ""
    virtualization: str = "none"  # "none", "vm", "container" (with the technology after a colon)
    default_ipv4: str | None = None
    source: str = "local"  # "local", "json", "ansible"
    schema: int = FACTS_SCHEMA

    def disk(self, role: str) -> DiskFacts | None:
        for d in self.disks:
            if d.role == role:
                return d
        return None

    @property
    def in_container(self) -> bool:
        return self.virtualization.startswith("container")


# --------------------------------------------------------------------------- goals


@dataclass(frozen=True)
class HostEntry(_Serialisable):
    address: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Goals(_Serialisable):
    """What the user asked for. ``None`` means "let the planner decide"."""

    target: str | None = None
    compiler: str = "auto"
    debug_info: str = "auto"
    lto: str = "auto"
    arch: str | None = None  # cross-build target ARCH=, None = native
    for_this_machine: bool = True  # the kernel will boot on the host that builds it
    build_dir: str | None = None
    # overrides, each forces one decision
    jobs: int | None = None
    zram: bool | None = None
    zram_percent: int | None = None
    zram_algorithm: str | None = None
    ccache: bool | None = None
    ccache_size_bytes: int | None = None
    ccache_dir: str | None = None
    ccache_shared: bool = False  # several trees / machines share the cache
    builds_to_keep: int = 2
    # distcc
    distcc_server: bool = False
    allow: tuple[str, ...] = ()
    allow_public: bool = False
    listen: str | None = None
    distcc_hosts: tuple[str, ...] = ()
    host_entries: tuple[HostEntry, ...] = ()
    # a distcc farm (provision.fleet): servers allow their clients' subnets instead of each address
    farm_allow_subnets: bool = False


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class PlanHost(_Serialisable):
    hostname: str
    arch: str
    usable_cpus: int
    memory_bytes: int  # effective: min(MemTotal, cgroup limit)
    distro: str
    family: str
    virtualization: str
    zram_compressors: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobsPlan(_Serialisable):
    value: int  # make -j
    load: float  # make -l
    reason: str
    limited_by: str  # "cpus", "memory", "override", "distcc"
    per_job_bytes: int = 0
    budget_bytes: int = 0
    link_peak_bytes: int = 0
    overridden: bool = False


@dataclass(frozen=True)
class ZramPlan(_Serialisable):
    enabled: bool
    reason: str
    algorithm: str | None = None
    percent: int | None = None
    priority: int = 100
    size_bytes: int = 0
    tool: str = "zram-tools"  # "zram-tools" (Debian family) or "zram-generator"
    sysctls: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # per field
    overridden: tuple[str, ...] = ()


@dataclass(frozen=True)
class CcachePlan(_Serialisable):
    enabled: bool
    reason: str
    max_size_bytes: int = 0
    dir: str = "/var/cache/ccache"
    compression: bool = True
    sloppiness: tuple[str, ...] = ()
    hash_dir: bool = True
    base_dir: str | None = None
    reasons: dict[str, str] = field(default_factory=dict)
    overridden: tuple[str, ...] = ()


@dataclass(frozen=True)
class DistccPlan(_Serialisable):
    enabled: bool
    reason: str
    server: bool = False
    allow: tuple[str, ...] = ()
    allow_public: bool = False  # the user explicitly allowed public ranges
    listen: str | None = None
    server_jobs: int = 0
    client: bool = False
    hosts: tuple[str, ...] = ()  # DISTCC_HOSTS entries, e.g. "build2/8", "localhost/2"
    total_jobs: int = 0  # -j for a distributed build
    host_entries: tuple[HostEntry, ...] = ()  # /etc/hosts lines (marked block)
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigPlan(_Serialisable):
    target: str
    compiler: str  # gcc or clang
    debug_info: str  # none, dwarf, btf
    lto: str  # none, thin, full
    build_dir: str | None
    make_command: str
    make_vars: dict[str, str] = field(default_factory=dict)  # LLVM=1, CC="ccache gcc", O=...
    kbuild_env: dict[str, str] = field(default_factory=dict)  # KBUILD_BUILD_* for reproducibility
    config_commands: tuple[str, ...] = ()  # scripts/config ... lines
    reasons: dict[str, str] = field(default_factory=dict)
    advice: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan(_Serialisable):
    SCHEMA = PLAN_SCHEMA

    host: PlanHost
    jobs: JobsPlan
    zram: ZramPlan
    ccache: CcachePlan
    distcc: DistccPlan
    config: ConfigPlan
    packages: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # what `kprov env` exports
    warnings: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()  # names of values the user forced
    schema: int = PLAN_SCHEMA

    def to_role_vars(self) -> dict[str, Any]:
        """The ``kbuild_host_*`` variables the role takes (see its meta/argument_specs.yml)."""
        z, c, d = self.zram, self.ccache, self.distcc
        return {
            "kbuild_host_packages_enabled": True,
            "kbuild_host_packages": list(self.packages),
            "kbuild_host_zram_enabled": z.enabled,
            "kbuild_host_zram_algorithm": z.algorithm or "lz4",
            "kbuild_host_zram_percent": z.percent or 50,
            "kbuild_host_zram_priority": z.priority,
            "kbuild_host_zram_sysctls": dict(z.sysctls),
            "kbuild_host_ccache_enabled": c.enabled,
            "kbuild_host_ccache_max_size": ccache_size_string(c.max_size_bytes),
            "kbuild_host_ccache_dir": c.dir,
            "kbuild_host_ccache_compression": c.compression,
            "kbuild_host_ccache_sloppiness": list(c.sloppiness),
            "kbuild_host_ccache_hash_dir": c.hash_dir,
            "kbuild_host_ccache_base_dir": c.base_dir or "",
            "kbuild_host_distcc_enabled": d.enabled,
            "kbuild_host_distcc_server": d.server,
            "kbuild_host_distcc_allow": list(d.allow),
            "kbuild_host_distcc_allow_public": d.allow_public,
            "kbuild_host_distcc_listen": d.listen or "",
            "kbuild_host_distcc_jobs": d.server_jobs,
            "kbuild_host_distcc_client": d.client,
            "kbuild_host_distcc_hosts": list(d.hosts),
            "kbuild_host_hosts_enabled": bool(d.host_entries),
            "kbuild_host_hosts_entries": [
                {"address": e.address, "names": list(e.names)} for e in d.host_entries
            ],
            "kbuild_host_buildenv_enabled": True,
            "kbuild_host_buildenv": {k: v for k, v in self.env.items() if k not in PER_USER_ENV},
            "kbuild_host_plan": self.to_dict(),
        }


#: `kprov env` exports that belong to one user's build, not to /etc/profile.d for everybody: the
#: O= directory the plan chose lives under the planning user's home or tree.
PER_USER_ENV = frozenset({"KBUILD_OUTPUT"})


def ccache_size_string(size_bytes: int) -> str:
    """ccache's own size syntax, in binary units so ``ccache -p`` shows what was planned."""
    if size_bytes <= 0:
        return "0"
    mib = max(1, round(size_bytes / MIB))
    if mib % 1024 == 0:
        return f"{mib // 1024}Gi"
    return f"{mib}Mi"


# --------------------------------------------------------------------------- package catalog


@dataclass(frozen=True)
class PackageSet(_Serialisable):
    """One distro family's packages, as the role's vars/<os_family>.yml lists them."""

    build: tuple[str, ...] = ()
    zram: tuple[str, ...] = ()
    ccache: tuple[str, ...] = ()
    distcc: tuple[str, ...] = ()
    clang: tuple[str, ...] = ()
    zram_tool: str = "none"  # zram-tools, zram-generator, zram-init, none


@dataclass(frozen=True)
class PackageCatalog(_Serialisable):
    """family (one of FAMILIES) -> PackageSet. Loaded by provision.catalog, passed to the planner."""

    families: dict[str, PackageSet] = field(default_factory=dict)

    def for_family(self, family: str) -> PackageSet | None:
        return self.families.get(family)
