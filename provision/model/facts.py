"""What a host is (:class:`HostFacts`: CPUs, memory, disks, distro, zram, tree, toolchain), and
what a tree's Kconfig and a calibration say (:class:`KconfigFacts`, :class:`CalibrationProfile`,
:class:`TreeEvaluation`). Read from this host, a facts file or Ansible's setup facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from provision.model.schema import (
    ADDRESS,
    BYTES,
    CGROUP_MEMORY,
    COMPRESSOR,
    CPUS,
    FACTS_SCHEMA,
    MAX_CPUS,
    MEMORY,
    QUOTA,
    Bounds,
    Serialisable,
)


@dataclass(frozen=True)
class CpuFacts(Serialisable):
    logical: Annotated[int, CPUS]  # CPUs the kernel runs (os.cpu_count)
    usable: Annotated[int, CPUS]  # what a build can really use: affinity capped by the cgroup quota
    affinity: Annotated[int | None, CPUS] = None  # len(os.sched_getaffinity(0))
    physical_cores: Annotated[int | None, CPUS] = None
    # CPUs worth of quota (cpu.max / cfs_quota), None = unlimited
    cgroup_quota: Annotated[float | None, QUOTA] = None
    model: str = ""


@dataclass(frozen=True)
class MemoryFacts(Serialisable):
    total_bytes: Annotated[int, MEMORY]  # MemTotal
    available_bytes: Annotated[int, BYTES]  # MemAvailable
    # memory.max / memory.limit_in_bytes, None = unlimited
    cgroup_limit_bytes: Annotated[int | None, CGROUP_MEMORY] = None
    cgroup_usage_bytes: Annotated[int | None, BYTES] = None
    swap_total_bytes: Annotated[int, BYTES] = 0
    swap_free_bytes: Annotated[int, BYTES] = 0
    zram_swap_bytes: Annotated[int, BYTES] = 0  # part of swap_total that is zram
    # swap the cgroup may use: v1 memory.memsw.limit_in_bytes less memory.limit_in_bytes, v2
    # memory.swap.max; 0 = the cgroup may not swap, None = unknown or unlimited
    cgroup_swap_limit_bytes: Annotated[int | None, BYTES] = None
    # v2 memory.high (the cgroup is throttled above it), None = not set
    cgroup_high_bytes: Annotated[int | None, CGROUP_MEMORY] = None

    @property
    def cgroup_cap_bytes(self) -> int | None:
        """The cgroup's memory cap: memory.max / limit_in_bytes, or memory.high when lower."""
        caps = [c for c in (self.cgroup_limit_bytes, self.cgroup_high_bytes) if c]
        return min(caps) if caps else None

    @property
    def cgroup_may_not_swap(self) -> bool:
        """The cgroup may not swap (memsw = limit, memory.swap.max 0): no swap, zram included, holds the build."""
        return self.cgroup_swap_limit_bytes == 0

    @property
    def effective_bytes(self) -> int:
        """RAM a build may use: MemTotal, or the cgroup cap when that is smaller."""
        cap = self.cgroup_cap_bytes
        if cap and cap < self.total_bytes:
            return cap
        return self.total_bytes


@dataclass(frozen=True)
class DiskFacts(Serialisable):
    role: str  # "build" (tree / O= dir), "ccache", or "home"
    path: str  # the path that was asked about
    mount: str  # mount point of the filesystem holding it
    free_bytes: Annotated[int, BYTES]
    total_bytes: Annotated[int, BYTES]
    fstype: str = ""


@dataclass(frozen=True)
class DistroFacts(Serialisable):
    id: str  # debian, ubuntu, fedora, arch, opensuse-tumbleweed, alpine, ...
    family: str  # one of FAMILIES, or "unknown"
    version: str = ""
    codename: str = ""
    like: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class ZramFacts(Serialisable):
    compressors: tuple[Annotated[str, COMPRESSOR], ...] = ()  # what the kernel offers, in its order
    active: Annotated[str | None, COMPRESSOR] = None  # the bracketed one in comp_algorithm
    source: str = "none"  # "sysfs", "proc-crypto", "none"
    device_present: bool = False  # /dev/zram0 exists
    devices_in_use: tuple[str, ...] = ()  # zram devices already active as swap
    kprov_devices: tuple[str, ...] = ()  # those of them kprov set up (its to resize, not a user's)


@dataclass(frozen=True)
class TreeFacts(Serialisable):
    path: str
    kernel_version: str  # "6.1.0" from VERSION/PATCHLEVEL/SUBLEVEL
    has_config: bool = False
    config: dict[str, str] = field(default_factory=dict)  # the options that matter, e.g. DEBUG_INFO_BTF=y
    modules: Annotated[int, Bounds(0, 1 << 20)] = 0  # number of =m options in .config
    min_versions: dict[str, str] = field(default_factory=dict)  # tool -> minimum, from changes.rst
    # False when the source directory holds a .config or include/config: kbuild then refuses O=
    clean: bool = True


@dataclass(frozen=True)
class RunningKernelFacts(Serialisable):
    """What localmodconfig needs from the running kernel: its config and its loaded modules."""

    config_path: str | None = None  # /proc/config.gz or /boot/config-<release>; None = not found
    modules_list: bool = False  # /proc/modules exists (the kernel has module support)
    loaded_modules: Annotated[int, Bounds(0, 1 << 20)] = 0
    config: dict[str, str] = field(default_factory=dict)  # the options facts.CONFIG_KEYS names
    modules: Annotated[int, Bounds(0, 1 << 20)] = 0  # =m options of that config


@dataclass(frozen=True)
class CompilerFacts(Serialisable):
    """One compiler as a kernel build records it."""

    kind: str  # gcc or clang
    version_text: str  # first line of `$CC --version`: what CONFIG_CC_VERSION_TEXT holds
    version: str = ""  # dotted, e.g. 12.2.0
    triplet: str = ""  # `$CC -dumpmachine`, e.g. x86_64-linux-gnu
    driver: str | None = None  # the versioned driver that exists: x86_64-linux-gnu-gcc-12, clang-14


@dataclass(frozen=True)
class ToolchainFacts(Serialisable):
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
class HostFacts(Serialisable):
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
    ci: bool = False  # CI=true in the environment (GitHub Actions, GitLab CI, ...): a CI runner

    def disk(self, role: str) -> DiskFacts | None:
        for d in self.disks:
            if d.role == role:
                return d
        return None

    @property
    def in_container(self) -> bool:
        return self.virtualization.startswith("container")


#: 2: one format for ``kprov calibrate`` and ``kprov build`` (source, the build's -j, base, serial
#: peaks, OOM and memory stalls); a schema-1 profile (calibrate's, before builds wrote profiles) is
#: read as schema 2 with those fields at their defaults (provision.facts.measured).
PROFILE_SCHEMA = 2
#: ``CalibrationProfile.source`` of a profile a build wrote (else "kprov calibrate").
FROM_BUILD = "kprov build"


@dataclass(frozen=True)
class KconfigFacts(Serialisable):
    """The .config the planned target really produces, evaluated in a scratch ``O=`` directory
    (provision.tree.kconfig), or the tree's own .config read as it is."""

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
class KconfigRequest(Serialisable):
    """What provision.tree.kconfig evaluates: the planned target, with the make variables that decide
    Kconfig's answers (the real build's ARCH, CROSS_COMPILE, LLVM)."""

    target: str
    make_vars: dict[str, str] = field(default_factory=dict)
    seed_config: str | None = None  # a .config to start from (olddefconfig of a build dir's .config)
    evaluable: bool = True
    why_not: str = ""  # when not evaluable: why, in one line


@dataclass(frozen=True)
class LinkMeasurement(Serialisable):
    measured: bool
    peak_bytes: Annotated[int, BYTES] = 0  # the largest process of the vmlinux step (ld, objtool, pahole)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class CalibrationProfile(Serialisable):
    """What ``kprov calibrate`` (a sample of the compile units) or ``kprov build`` (a real build,
    :data:`FROM_BUILD`) measured on one tree, config and compiler, on one host: one format for both."""

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
    # schema 2: what a real build adds (defaults for a calibration)
    source: str = "kprov calibrate"
    build_jobs: Annotated[int, Bounds(0, MAX_CPUS)] = 0  # the -j the build ran at (0: not a build)
    build_seconds: float = 0.0  # the build's wall time (cpu_seconds_total is 0 unless it built everything)
    phase_peaks: dict[str, Annotated[int, BYTES]] = field(default_factory=dict)  # build phase -> the build's peak in it
    budget_bytes: Annotated[int, BYTES] = 0  # the plan's memory budget (with zram) the build ran under
    peak_bytes: Annotated[int, BYTES] = 0  # the build's peak memory (anonymous + swap)
    stall_seconds: float = 0.0  # /proc/pressure/memory "some" during the build
    oom_jobs: Annotated[int, Bounds(0, MAX_CPUS)] = 0  # the -j of a build of this config the OOM killer hit (0: none)
    oom_phase: str = ""
    oom_date: str = ""
    oom_budget_bytes: Annotated[int, BYTES] = 0  # the plan's budget that build ran under

    @property
    def from_build(self) -> bool:
        return self.source == FROM_BUILD


@dataclass(frozen=True)
class TreeEvaluation(Serialisable):
    """What kprov learnt about a tree beyond its facts: the evaluated Kconfig, a matching
    calibration profile, and notes on what could not be used (one line each)."""

    kconfig: KconfigFacts | None = None
    profile: CalibrationProfile | None = None
    notes: tuple[str, ...] = ()
    # option -> its Kconfig dependencies as the tree's own Kconfig states them (the debug-info
    # options a plan may advise: provision.calibration.KCONFIG_DEPENDS names them); empty: not read
    depends: dict[str, str] = field(default_factory=dict)
