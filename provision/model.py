"""The data kprov passes along its one direction of flow: HostFacts + Goals -> Plan.

Everything here is a frozen dataclass with ``to_dict()``/``from_dict()``. Dicts carry a ``schema``
number at the top level; :func:`from_dict` refuses a dict of another schema or of the wrong shape
with a :class:`UserError` that names the field, so a bad ``--facts`` file is one clear line.
Fields whose type is ``Annotated[..., Bounds(...)]`` or ``Annotated[..., Check(...)]`` are also
refused outside their sane range (memory 0, a negative CPU count, a 400-digit integer, an address
that is not one), so the planner only ever sees values it can compute with.

This module does no I/O and imports nothing that does: the planner depends on it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from provision.errors import UserError, shown

FACTS_SCHEMA = 1
PLAN_SCHEMA = 1

GIB = 1 << 30
MIB = 1 << 20


def human_bytes(n: float | None) -> str:
    """kprov's one byte formatter: binary units as free(1), ccache and zramctl print them
    (``1.5 GiB``, ``512 MiB``, ``0 MiB``; below 1 MiB in KiB)."""
    if n is None:
        return "-"
    if abs(n) >= GIB:
        return f"{n / GIB:.1f} GiB"
    if abs(n) >= MIB or n == 0:
        return f"{n / MIB:.0f} MiB"
    return f"{n / 1024:.0f} KiB"

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


# --------------------------------------------------------------------------- field constraints


@dataclass(frozen=True)
class Bounds:
    """``Annotated[int, Bounds(1, 4096)]``: the value must lie in ``low..high`` (inclusive)."""

    low: float
    high: float
    expected: str = ""  # how the message states the range, when the numbers read badly

    def __call__(self, value: Any, where: str) -> Any:
        if not self.low <= value <= self.high:
            expected = self.expected or f"{self.low}..{self.high}"
            raise UserError(f"{where}: {shown(value)} is out of range (expected {expected})")
        return value


@dataclass(frozen=True)
class Check:
    """``Annotated[str, Check(fn)]``: ``fn(value, where)`` returns the value (normalised) or raises UserError."""

    fn: Callable[[Any, str], Any]

    def __call__(self, value: Any, where: str) -> Any:
        return self.fn(value, where)


def _address(value: str, where: str) -> str:
    from provision.validate import parse_ip  # validate imports this module: import it late

    return parse_ip(value, where)


def _compressor(value: str, where: str) -> str:
    from provision.validate import check_zram_algorithm

    return check_zram_algorithm(value, where)


#: Linux's NR_CPUS tops out at 8,192 today; 65,536 leaves room and still refuses nonsense.
MAX_CPUS = 1 << 16
#: The kernel's own "no limit" for memory and disk sizes is just below 2^63.
MAX_BYTES = (1 << 63) - 1
#: Less RAM than this is not a Linux host that builds anything.
MIN_MEMORY_BYTES = 16 * MIB

CPUS = Bounds(1, MAX_CPUS)
BYTES = Bounds(0, MAX_BYTES, "a byte count from 0 to 2^63-1")
MEMORY = Bounds(MIN_MEMORY_BYTES, MAX_BYTES, "bytes, at least 16 MiB and below 2^63")
CGROUP_MEMORY = Bounds(MIB, MAX_BYTES, "bytes, at least 1 MiB and below 2^63, or null for no limit")
#: CPUs worth of cgroup quota: the kernel's smallest quota is 1 ms per 1 s period.
QUOTA = Bounds(0.001, float(MAX_CPUS), "0.001..65536 CPUs, or null for no quota")
ADDRESS = Check(_address)
#: A zram compressor name: the planner may write one into /etc/default/zramswap.
COMPRESSOR = Check(_compressor)


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
    if origin is Annotated:
        value = _convert(args[0], value, where)
        if value is not None:
            for constraint in tp.__metadata__:
                if isinstance(constraint, (Bounds, Check)):
                    value = constraint(value, where)
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
            raise UserError(f"{where}: expected true/false, got {shown(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where}: expected an integer, got {shown(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: expected a number, got {shown(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise UserError(f"{where}: {shown(value)} is out of range") from None
        if not math.isfinite(number):
            raise UserError(f"{where}: expected a finite number, got {shown(value)}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"{where}: expected a string, got {shown(value)}")
        return value
    return value


def _at(where: str) -> str:
    return f"{where}: " if where else ""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _from_plain(cls: type, data: dict, where: str) -> Any:
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}" if where else f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{_at(where)}missing field '{f.name}'")
    return cls(**kwargs)


class _Serialisable:
    def to_dict(self) -> dict:
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None):
        """``data`` as this class; errors name the field as ``where.field`` (just ``field`` when
        ``where`` is "", for a caller that names the file itself)."""
        where = cls.__name__ if where is None else where
        if not isinstance(data, dict):
            raise UserError(f"{_at(where)}expected an object, got {type(data).__name__}")
        schema = getattr(cls, "SCHEMA", None)
        if schema is not None and data.get("schema", schema) != schema:
            raise UserError(f"{_at(where)}schema {shown(data.get('schema'))} is not supported (expected {schema})")
        return _from_plain(cls, data, where)

    def checked(self, where: str | None = None):
        """This object again, through :meth:`from_dict`'s checks: for one built in code from foreign data."""
        return type(self).from_dict(self.to_dict(), where)


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class CpuFacts(_Serialisable):
    logical: Annotated[int, CPUS]  # CPUs the kernel runs (os.cpu_count)
    usable: Annotated[int, CPUS]  # what a build can really use: affinity capped by the cgroup quota
    affinity: Annotated[int | None, CPUS] = None  # len(os.sched_getaffinity(0))
    physical_cores: Annotated[int | None, CPUS] = None
    # CPUs worth of quota (cpu.max / cfs_quota), None = unlimited
    cgroup_quota: Annotated[float | None, QUOTA] = None
    model: str = ""


@dataclass(frozen=True)
class MemoryFacts(_Serialisable):
    total_bytes: Annotated[int, MEMORY]  # MemTotal
    available_bytes: Annotated[int, BYTES]  # MemAvailable
    # memory.max / memory.limit_in_bytes, None = unlimited
    cgroup_limit_bytes: Annotated[int | None, CGROUP_MEMORY] = None
    cgroup_usage_bytes: Annotated[int | None, BYTES] = None
    swap_total_bytes: Annotated[int, BYTES] = 0
    swap_free_bytes: Annotated[int, BYTES] = 0
    zram_swap_bytes: Annotated[int, BYTES] = 0  # part of swap_total that is zram

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
    free_bytes: Annotated[int, BYTES]
    total_bytes: Annotated[int, BYTES]
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
    compressors: tuple[Annotated[str, COMPRESSOR], ...] = ()  # what the kernel offers, in its order
    active: Annotated[str | None, COMPRESSOR] = None  # the bracketed one in comp_algorithm
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
    modules: Annotated[int, Bounds(0, 1 << 20)] = 0  # number of =m options in .config
    min_versions: dict[str, str] = field(default_factory=dict)  # tool -> minimum, from changes.rst
    # False when the source directory holds a .config or include/config: kbuild then refuses O=
    clean: bool = True


@dataclass(frozen=True)
class RunningKernelFacts(_Serialisable):
    """What localmodconfig needs from the running kernel: its config and its loaded modules."""

    config_path: str | None = None  # /proc/config.gz or /boot/config-<release>; None = not found
    modules_list: bool = False  # /proc/modules exists (the kernel has module support)
    loaded_modules: Annotated[int, Bounds(0, 1 << 20)] = 0
    config: dict[str, str] = field(default_factory=dict)  # the options facts.CONFIG_KEYS names
    modules: Annotated[int, Bounds(0, 1 << 20)] = 0  # =m options of that config


@dataclass(frozen=True)
class CompilerFacts(_Serialisable):
    """One compiler as a kernel build records it."""

    kind: str  # gcc or clang
    version_text: str  # first line of `$CC --version`: what CONFIG_CC_VERSION_TEXT holds
    version: str = ""  # dotted, e.g. 12.2.0
    triplet: str = ""  # `$CC -dumpmachine`, e.g. x86_64-linux-gnu
    driver: str | None = None  # the versioned driver that exists: x86_64-linux-gnu-gcc-12, clang-14


@dataclass(frozen=True)
class ToolchainFacts(_Serialisable):
    """What decides whether two hosts build the same objects (autoconf.h records the compiler's
    version line and the assembler, linker and pahole versions), and what distccd may run."""

    compilers: tuple[CompilerFacts, ...] = ()
    drivers: dict[str, str] = field(default_factory=dict)  # versioned driver -> its version line
    assembler: str | None = None  # first line of `as --version`
    linker: str | None = None  # first line of `ld --version`
    lld: str | None = None  # first line of `ld.lld --version`
    pahole: str | None = None  # `pahole --version`, None = not installed
    distcc_links: tuple[str, ...] | None = None  # names in /usr/lib/distcc; None = no such directory

    def compiler(self, kind: str) -> CompilerFacts | None:
        return next((c for c in self.compilers if c.kind == kind), None)


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
    running_kernel: RunningKernelFacts | None = None  # None: the facts do not say (not probed)
    virtualization: str = "none"  # "none", "vm", "container" (with the technology after a colon)
    default_ipv4: Annotated[str | None, ADDRESS] = None
    source: str = "local"  # "local", "json", "ansible"
    schema: int = FACTS_SCHEMA
    toolchain_facts: ToolchainFacts | None = None  # None: not probed
    ccache_group_members: tuple[str, ...] | None = None  # the ccache group's members; None: unknown
    service_manager: str = ""  # "systemd", else PID 1's name; "" = unknown

    def disk(self, role: str) -> DiskFacts | None:
        for d in self.disks:
            if d.role == role:
                return d
        return None

    @property
    def in_container(self) -> bool:
        return self.virtualization.startswith("container")


# --------------------------------------------------------------------------- a tree's own figures

PROFILE_SCHEMA = 1


@dataclass(frozen=True)
class KconfigFacts(_Serialisable):
    """The .config the planned target really produces, evaluated in a scratch ``O=`` directory
    (provision.kconfig), or the tree's own .config read as it is."""

    target: str
    arch: str  # SRCARCH from the .config header ("x86"), "" when unknown
    kernel_version: str  # from the .config header ("6.1.192")
    debug_info: str  # none, dwarf, btf (the plan's words)
    lto: str = "none"  # none, thin, full
    debug_flags: tuple[str, ...] = ()  # DWARF4/DWARF5/REDUCED/SPLIT/COMPRESSED/BTF_MODULES as set
    sanitizers: tuple[str, ...] = ()  # KASAN, UBSAN_SANITIZE_ALL, KCOV_INSTRUMENT_ALL, GCOV_KERNEL, ...
    objtool_vmlinux: bool = False  # objtool runs once over the whole vmlinux.o (IBT, noinstr, LTO)
    modules: Annotated[int, Bounds(0, 1 << 20)] = 0  # =m options
    builtins: Annotated[int, Bounds(0, 1 << 20)] = 0  # =y options
    compiler: str = ""  # CONFIG_CC_VERSION_TEXT
    config_hash: str = ""  # sha256 of the sorted CONFIG_ lines: a calibration profile's key
    commands: tuple[str, ...] = ()  # what ran, in order
    seconds: float = 0.0
    refused: tuple[str, ...] = ()  # options the plan asked for that Kconfig did not set
    source: str = "evaluated"  # "evaluated" (scratch O=) or "tree" (the tree's .config, as it is)
    config: dict[str, str] = field(default_factory=dict)  # the options facts.CONFIG_KEYS names
    script_args: tuple[str, ...] = ()  # the scripts/config arguments applied after the target
    base: KconfigFacts | None = None  # the .config right after the target, before those arguments


@dataclass(frozen=True)
class KconfigRequest(_Serialisable):
    """What provision.kconfig evaluates: the planned target, with the make variables that decide
    Kconfig's answers (the real build's ARCH, CROSS_COMPILE, LLVM)."""

    target: str
    make_vars: dict[str, str] = field(default_factory=dict)
    seed_config: str | None = None  # a .config to start from (olddefconfig of a build dir's .config)
    evaluable: bool = True
    why_not: str = ""  # when not evaluable: why, in one line


@dataclass(frozen=True)
class LinkMeasurement(_Serialisable):
    measured: bool
    peak_bytes: Annotated[int, BYTES] = 0  # the largest process of the vmlinux step (ld, objtool, pahole)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class CalibrationProfile(_Serialisable):
    """What ``kprov calibrate`` measured on one tree, config and compiler, on one host."""

    SCHEMA = PROFILE_SCHEMA

    method: str
    date: str
    kernel_version: str
    tree: str
    target: str
    arch: str
    config_hash: str
    compiler: str
    host: str
    cpu_model: str = ""
    usable_cpus: Annotated[int, CPUS] = 1
    objects_total: Annotated[int, Bounds(0, 1 << 24)] = 0  # compile units of the whole build
    objects_sampled: Annotated[int, Bounds(0, 1 << 24)] = 0
    rss_mean_bytes: Annotated[int, BYTES] = 0
    rss_p50_bytes: Annotated[int, BYTES] = 0
    rss_p90_bytes: Annotated[int, BYTES] = 0
    rss_p99_bytes: Annotated[int, BYTES] = 0
    rss_max_bytes: Annotated[int, BYTES] = 0
    rss_max_object: str = ""
    cpu_seconds_per_object: float = 0.0  # stratified mean over the whole build
    cpu_seconds_total: float = 0.0  # every compile unit, estimated from the sample
    object_bytes_total: Annotated[int, BYTES] = 0  # .o bytes of the whole build, estimated
    prepare_cpu_seconds: float = 0.0  # make prepare: headers, host tools, objtool
    prepare_seconds: float = 0.0
    link: LinkMeasurement = field(default_factory=lambda: LinkMeasurement(measured=False))
    parallel_peak_bytes: Annotated[int, BYTES] = 0  # one batch at -j usable CPUs, cgroup peak (0: not measured)
    parallel_jobs: Annotated[int, Bounds(0, MAX_CPUS)] = 0
    seconds_spent: float = 0.0
    path: str = ""  # where the profile was read from (not stored in the file)
    schema: int = PROFILE_SCHEMA


@dataclass(frozen=True)
class TreeEvaluation(_Serialisable):
    """What kprov learnt about a tree beyond its facts: the evaluated Kconfig, a matching
    calibration profile, and notes on what could not be used (one line each)."""

    kconfig: KconfigFacts | None = None
    profile: CalibrationProfile | None = None
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- goals


@dataclass(frozen=True)
class CacheUser(_Serialisable):
    """One credential of a compile-cache store: a host, whether it writes, where its secret is."""

    name: str
    write: bool
    secret_file: str  # a path on the controller (or this host); never the secret itself


@dataclass(frozen=True)
class CacheRemoteGoal(_Serialisable):
    """A store this host uses (``--ccache-remote``): the URL carries no user or password."""

    url: str
    user: str
    secret_file: str
    write: bool = False
    only: bool = False


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
    load: float | None = None  # make -l N, only when asked (--load N)
    # distcc
    distcc_server: bool = False
    allow: tuple[str, ...] = ()
    allow_public: bool = False
    listen: str | None = None
    distcc_hosts: tuple[str, ...] = ()
    host_entries: tuple[HostEntry, ...] = ()
    # a distcc farm (provision.fleet): servers allow their clients' subnets instead of each address
    farm_allow_subnets: bool = False
    # set by the farm (provision.farm): servers left out of DISTCC_HOSTS, each "NAME: why"; the
    # packages a server installs so that it compiles what its clients compile
    distcc_excluded: tuple[str, ...] = ()
    distcc_server_packages: tuple[str, ...] = ()
    # the shared ccache: users to add to its group (nobody unless asked); or no shared cache at all
    ccache_group_add: tuple[str, ...] = ()
    ccache_private: bool = False
    # the shared compile cache (provision.cache): run a store, use one, or both
    ccache_server: bool = False
    ccache_backend: str | None = None  # redis | http; None = the planner chooses
    ccache_port: int | None = None
    ccache_listen: str | None = None  # the store's own address and allow list (a fleet: not distccd's);
    ccache_allow: tuple[str, ...] = ()  # None/() = --listen/--allow
    ccache_users: tuple[CacheUser, ...] = ()  # the store's users (secret files: paths only)
    ccache_remote: CacheRemoteGoal | None = None
    ccache_toolchains: int = 1  # distinct toolchains among the store's clients (a fleet knows)
    ccache_fleet_role: str = ""  # fleet: store, writer, reader, or "excluded: why"
    ccache_fleet_notes: tuple[str, ...] = ()  # fleet: why the cache is partitioned, and by what


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
    load: float | None  # make -l; None: not set (the default)
    reason: str
    limited_by: str  # "cpus", "memory", "override", "distcc"
    per_job_bytes: int = 0
    budget_bytes: int = 0  # RAM budget plus the zram counted for the compile phase
    link_peak_bytes: int = 0  # the largest serial phase's own peak (beside the build's base)
    overridden: bool = False
    base_bytes: int = 0  # make, shells and kbuild scripts, independent of -j
    average_job_bytes: int = 0  # each job beyond the first adds this on average (per_job_bytes: one at its p99)
    load_reason: str = ""


@dataclass(frozen=True)
class PhasePlan(_Serialisable):
    """One phase of the build: the parallel compile, or a serial step (link, objtool, BTF, LTO)."""

    name: str
    peak_bytes: int  # what the phase needs at its peak, the build's base included
    fits: str  # "ram", "swap" (fits with the planned zram / the swap), "short"
    seconds: float  # estimated wall time
    reason: str


@dataclass(frozen=True)
class EstimatePlan(_Serialisable):
    """How long the planned build takes, from CPU-seconds over the jobs plus the serial phases."""

    seconds: float
    cpu_seconds: float
    reason: str
    measured: tuple[str, ...] = ()  # figures measured on this tree (a calibration profile)
    estimated: tuple[str, ...] = ()  # figures from the table (estimate: run kprov calibrate)


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
class CacheStorePlan(_Serialisable):
    """The compile-cache store this host runs (role variable ``kbuild_host_ccache_store``)."""

    backend: str  # redis | http
    listen: str
    port: int
    allow: tuple[str, ...]
    max_size_bytes: int  # redis maxmemory / the http store's trim size
    max_object_bytes: int  # nginx client_max_body_size
    dir: str  # http: the WebDAV root
    users: tuple[CacheUser, ...]
    reason: str = ""
    reasons: dict[str, str] = field(default_factory=dict)

    def to_role_var(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "listen": self.listen,
            "port": self.port,
            "allow": list(self.allow),
            "max_size_bytes": self.max_size_bytes,
            "max_object_bytes": self.max_object_bytes,
            "dir": self.dir,
            "users": [{"name": u.name, "write": u.write, "secret_file": u.secret_file} for u in self.users],
        }


@dataclass(frozen=True)
class CacheRemotePlan(_Serialisable):
    """The store this host's ccache uses behind its local cache (``kbuild_host_ccache_remote``)."""

    url: str  # no userinfo: the secret stays in its file
    user: str
    secret_file: str
    write: bool
    only: bool
    connect_timeout_ms: int
    operation_timeout_ms: int
    reason: str = ""
    reasons: dict[str, str] = field(default_factory=dict)

    def to_role_var(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "user": self.user,
            "secret_file": self.secret_file,
            "write": self.write,
            "only": self.only,
            "connect_timeout_ms": self.connect_timeout_ms,
            "operation_timeout_ms": self.operation_timeout_ms,
        }


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
    private: bool = False  # no shared directory: every user keeps ccache's own default
    group_add: tuple[str, ...] = ()  # users the apply adds to the cache's group
    compiler: str = ""  # a shared cache: the versioned driver every sharing host names in CC
    store: CacheStorePlan | None = None  # this host runs the fleet's compile-cache store
    remote: CacheRemotePlan | None = None  # this host uses a store behind its local cache
    compiler_check: str = "mtime"
    extra_files: tuple[str, ...] = ()  # extra_files_to_hash (absolute paths)
    sharing: tuple[str, ...] = ()  # where hits can and cannot cross hosts, one line each
    fleet_role: str = ""  # fleet: store, writer, reader, or "excluded: why"


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
    compiler: str = ""  # the compiler name a client hands distcc (a versioned triplet driver)
    excluded: tuple[str, ...] = ()  # farm servers left out of DISTCC_HOSTS, each "NAME: why"
    server_packages: tuple[str, ...] = ()  # compilers a server installs for its clients


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
    # where the config facts come from: "evaluated" (scratch O=), "tree" (its .config), "table"
    source: str = "table"
    kconfig: KconfigFacts | None = None
    sanitizers: tuple[str, ...] = ()


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
    phases: tuple[PhasePlan, ...] = ()
    estimate: EstimatePlan | None = None

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
            "kbuild_host_ccache_store": c.store.to_role_var() if c.enabled and c.store else {},
            "kbuild_host_ccache_remote": c.remote.to_role_var() if c.enabled and c.remote else {},
            "kbuild_host_ccache_compiler_check": c.compiler_check,
            "kbuild_host_ccache_extra_files": list(c.extra_files),
            "kbuild_host_ccache_group_members": list(c.group_add),
            "kbuild_host_ccache_private": c.private,
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
    redis: tuple[str, ...] = ()  # a compile cache store on Redis
    nginx: tuple[str, ...] = ()  # a compile cache store on nginx WebDAV
    cron: tuple[str, ...] = ()  # the WebDAV store's trim where systemd does not run (no timers)


@dataclass(frozen=True)
class PackageCatalog(_Serialisable):
    """family (one of FAMILIES) -> PackageSet. Loaded by provision.catalog, passed to the planner."""

    families: dict[str, PackageSet] = field(default_factory=dict)

    def for_family(self, family: str) -> PackageSet | None:
        return self.families.get(family)
