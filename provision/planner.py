"""HostFacts + Goals -> Plan: every number with the reason it has.

This module is pure: it reads nothing and runs nothing (tests/test_purity.py enforces its imports),
so the CLI, the fleet planner and the role's filter plugin all get the same plan from the same
facts. Every constant comes from :mod:`provision.calibration`, which names its source.

The order of decisions follows their dependencies:

1. config choices (target, compiler, debug info, LTO, sanitizers): from the .config the target
   really produces when kprov evaluated it in a scratch ``O=`` (a :class:`TreeEvaluation` from
   provision.kconfig), else from the tree's .config, else from the table of what each target
   produces per architecture and kernel version;
2. the build directory (``O=`` on tmpfs takes RAM) and the memory model by phase: the parallel
   compile phase needs ``base + N x per-job`` within the budget; the serial phases (vmlinux link,
   objtool over vmlinux.o, BTF, LTO link) each need their own peak, within the budget plus swap;
3. zram: when memory (not CPUs) limits ``-j``, when a serial phase does not fit, or on a small host;
   its capacity is counted (conservatively) at its measured compression ratio;
4. ``-j`` from the compile phase only (a serial phase that does not fit gets zram, swap or config
   advice, never a lower ``-j``); ``-l`` only when asked; ccache; distcc;
5. the make command line, the environment ``kprov env`` exports, time estimates, the packages.

Figures come from a calibration profile of this tree (``kprov calibrate``) when one matches the
evaluated config and compiler, else from :mod:`provision.calibration`; every reason says which.

Why ``CC`` goes on the make command line and never in the environment: the kernel's top Makefile
assigns ``CC = $(CROSS_COMPILE)gcc`` (or clang with ``LLVM=1``), and a Makefile assignment beats an
environment variable, while a command-line variable beats both. ``kprov env`` therefore exports the
make variables as ``KPROV_MAKE_ARGS`` (use ``eval make $KPROV_MAKE_ARGS ...``) and exports only the
variables the kernel or the tools really read from the environment (``MAKEFLAGS``,
``KBUILD_BUILD_*``, ``KBUILD_OUTPUT``, ``CCACHE_*``, ``DISTCC_HOSTS``).
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass, field

from provision import cache as cache_rules
from provision import calibration as cal
from provision.errors import UserError
from provision.model import (
    COMPILERS,
    DEBUG_INFO,
    GIB,
    LTO,
    MIB,
    TARGETS,
    CalibrationProfile,
    CcachePlan,
    CompilerFacts,
    ConfigPlan,
    DiskFacts,
    DistccPlan,
    EstimatePlan,
    Goals,
    HostEntry,
    HostFacts,
    JobsPlan,
    KconfigFacts,
    KconfigRequest,
    PackageCatalog,
    PackageSet,
    PhasePlan,
    Plan,
    PlanHost,
    TreeEvaluation,
    ZramPlan,
    human_bytes,
)
from provision.validate import (
    address_in,
    check_distcc_hosts,
    check_host_entries,
    check_kernel_arch,
    check_listen,
    check_owned_dir,
    check_packages,
    check_path,
    check_size_bytes,
    check_sysctls,
    check_user_name,
    check_zram_algorithm,
    check_zram_percent,
    loopback_for,
    parse_allow,
    parse_ip,
    parse_version,
    version_below,
)

# --------------------------------------------------------------------------- formatting


gib = human_bytes


#: The largest -l kprov passes on: far above any host's CPUs, low enough to be a typo's bound.
MAX_LOAD = 65536


def _load_str(load: float) -> str:
    return f"{load:g}"


# --------------------------------------------------------------------------- collected state


@dataclass
class _Notes:
    """Warnings and overrides collected while planning (the Plan gets them as tuples)."""

    warnings: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def forced(self, name: str) -> None:
        if name not in self.overrides:
            self.overrides.append(name)


@dataclass(frozen=True)
class _Traits:
    """What a .config holds that the plan depends on."""

    debug_info: str  # none, dwarf, btf
    why: str  # where this comes from, for the reasons ("the tree's .config", "evaluated: ...")
    flags: tuple[str, ...] = ()  # REDUCED, SPLIT, COMPRESSED, DWARF4, DWARF5, BTF_MODULES
    lto: str = "none"
    sanitizers: tuple[str, ...] = ()
    objtool: bool = False  # objtool runs over the whole vmlinux.o
    lto_blocked: tuple[str, ...] = ()  # options set that keep Kconfig from offering clang LTO
    modules: int | None = None
    trusted_keys: tuple[str, ...] = ()  # SYSTEM_*_KEYS options that name certificate files
    source: str = "table"  # evaluated, tree, running, table


@dataclass(frozen=True)
class _Config:
    """The config choices that the memory model depends on."""

    target: str
    target_class: str
    compiler: str
    debug_info: str
    lto: str
    reasons: dict[str, str]
    advice: tuple[str, ...]
    commands: tuple[str, ...]  # scripts/config arguments, without the command itself
    thinlto_jobs: int = 0
    flags: tuple[str, ...] = ()
    sanitizers: tuple[str, ...] = ()
    objtool: bool = False
    modules: int | None = None
    version: tuple[int, ...] | None = None  # the kernel's version, when known
    source: str = "table"
    kconfig: KconfigFacts | None = None

    @property
    def heavy_sanitizers(self) -> bool:
        return any(s in _HEAVY_SANITIZERS for s in self.sanitizers)

    @property
    def debug_variant(self) -> str:
        for flag, variant in (("SPLIT", "split"), ("REDUCED", "reduced"), ("COMPRESSED", "compressed")):
            if flag in self.flags:
                return variant
        return ""


@dataclass(frozen=True)
class _Serial:
    """A serial phase: its own peak (beside the build's base and modfinal jobs) and its source."""

    name: str
    peak: int
    source: str
    modfinal: bool = True  # modfinal (.mod.o compiles, .ko links) may run beside it


@dataclass(frozen=True)
class _Memory:
    """The compile phase needs ``base + per_job + (N - 1) x average``: one job at its p99 (the
    largest unit that may be compiling) and the others at the measured average growth per job.
    N jobs are never all at their peak together: -j20 peaked at 1.5 GiB where 20 x p99 is 3.5 GiB."""

    ram_budget: int  # bytes the build may use from RAM
    budget_reason: str
    per_job: int  # one job at its p99
    per_job_source: str
    base: int
    average: int = 0  # each further job, on average
    serial: tuple[_Serial, ...] = ()
    measured: bool = False  # per-job figures from a calibration profile of this tree
    headroom: int = 0  # the part of a cgroup limit held back for the page cache (not in ram_budget)

    @property
    def link_peak(self) -> int:
        """The largest serial phase's own peak."""
        return max((s.peak for s in self.serial), default=0)

    def fit(self, extra: int = 0) -> int:
        """Compile jobs that fit in the RAM budget plus ``extra`` (counted zram), 0 when not even one.
        Serial phases never run beside the compile phase: they do not take room here."""
        room = self.ram_budget + extra - self.base - self.per_job
        if room < 0:
            return 0
        return 1 + math.floor(room / max(1, self.average or self.per_job))

    def need(self, jobs: int) -> int:
        """The compile phase at ``jobs``."""
        return self.base + self.per_job + max(0, jobs - 1) * (self.average or self.per_job)

    def arithmetic(self, jobs: int) -> str:
        if jobs <= 1:
            return f"{gib(self.base)} base + one job at {gib(self.per_job)}"
        return (
            f"{gib(self.base)} base + one job at its p99 {gib(self.per_job)} + {jobs - 1} x "
            f"{gib(self.average)} average per further job"
        )

    def serial_need(self, phase: _Serial, jobs: int, modules: int | None) -> int:
        """A serial phase at ``jobs``: base + its peak + the modfinal jobs that may run beside it."""
        beside = max(0, jobs - 1) if modules is None else min(max(0, jobs - 1), modules)
        extra = beside * cal.MODFINAL_JOB_MIB * MIB if phase.modfinal else 0
        return self.base + phase.peak + extra


#: Instrumentation that makes every compile job heavier (GCOV_KERNEL alone instruments nothing:
#: GCOV_PROFILE_ALL does).
_HEAVY_SANITIZERS = ("KASAN", "KCSAN", "KMSAN", "UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL", "GCOV_PROFILE_ALL")
_SANITIZERS = _HEAVY_SANITIZERS[:3] + ("UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL", "GCOV_KERNEL", "GCOV_PROFILE_ALL")


def _count(n: int, noun: str) -> str:
    """``3 jobs``, ``1 job``; never a count below one ("not even one job")."""
    if n < 1:
        return f"not even one {noun}"
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------- goals validation


def _check_goals(goals: Goals) -> None:
    """Refuse values no plan could honour, with one line that names the value."""
    if goals.target is not None and goals.target not in TARGETS:
        raise UserError(f"unknown config target '{goals.target}' (choose from {', '.join(TARGETS)})")
    if goals.compiler not in COMPILERS:
        raise UserError(f"unknown compiler '{goals.compiler}' (choose from {', '.join(COMPILERS)})")
    if goals.debug_info not in DEBUG_INFO:
        raise UserError(f"unknown debug info '{goals.debug_info}' (choose from {', '.join(DEBUG_INFO)})")
    if goals.lto not in LTO:
        raise UserError(f"unknown LTO mode '{goals.lto}' (choose from {', '.join(LTO)})")
    if goals.jobs is not None and goals.jobs < 1:
        raise UserError(f"--jobs {goals.jobs}: must be at least 1")
    if goals.zram_percent is not None:
        check_zram_percent(goals.zram_percent, "--zram-percent")
    if goals.zram_algorithm is not None:
        check_zram_algorithm(goals.zram_algorithm, "--zram-algorithm")
    if goals.ccache_size_bytes is not None:
        check_size_bytes(goals.ccache_size_bytes, "--ccache-size")
    if goals.ccache_dir is not None:
        check_owned_dir(goals.ccache_dir, "--ccache-dir")
    if goals.build_dir is not None:
        check_path(goals.build_dir, "--build-dir")
    if goals.arch is not None:
        check_kernel_arch(goals.arch, "--arch")
    if goals.builds_to_keep < 1:
        raise UserError(f"--builds-to-keep {goals.builds_to_keep}: must be at least 1")
    if goals.load is not None and not 0 < goals.load <= MAX_LOAD:
        raise UserError(f"--load {goals.load:g}: must be above 0 and at most {MAX_LOAD} (a load average)")


# --------------------------------------------------------------------------- CPUs


def _cpu_story(facts: HostFacts) -> str:
    c = facts.cpu
    parts = []
    if c.cgroup_quota is not None:
        parts.append(f"cgroup CPU quota {c.cgroup_quota:g}")
    if c.affinity is not None and c.affinity != c.logical:
        parts.append(f"affinity {c.affinity}")
    detail = f" ({', '.join(parts)} of {c.logical} logical)" if parts else ""
    return f"{_usable(facts)} usable CPU{'s' if _usable(facts) != 1 else ''}{detail}"


def _usable(facts: HostFacts) -> int:
    return max(1, int(facts.cpu.usable))


# --------------------------------------------------------------------------- config choices


def _config_debug(config: dict[str, str]) -> str:
    if config.get("DEBUG_INFO_NONE") == "y":
        return "none"
    if config.get("DEBUG_INFO_BTF") == "y":
        return "btf"
    if config.get("DEBUG_INFO") == "y" or any(
        config.get(k) == "y"
        for k in ("DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "DEBUG_INFO_DWARF4", "DEBUG_INFO_DWARF5")
    ):
        return "dwarf"
    return "none"


def _config_lto(config: dict[str, str]) -> str:
    if config.get("LTO_CLANG_FULL") == "y":
        return "full"
    if config.get("LTO_CLANG_THIN") == "y":
        return "thin"
    return "none"


def config_traits(config: dict[str, str]) -> dict:
    """What a .config (options without ``CONFIG_``, ``n`` for not set) holds that a plan depends on:
    debug info kind and flags, LTO, sanitizers, objtool over vmlinux.o, what blocks LTO, the
    certificate options that name files. provision.kconfig describes evaluated configs with it."""
    flags = [f for f in ("DWARF4", "DWARF5", "REDUCED", "SPLIT", "BTF_MODULES") if config.get(f"DEBUG_INFO_{f}") == "y"]
    if any(config.get(k) == "y" for k in ("DEBUG_INFO_COMPRESSED", "DEBUG_INFO_COMPRESSED_ZLIB", "DEBUG_INFO_COMPRESSED_ZSTD")):
        flags.append("COMPRESSED")
    debug = _config_debug(config)
    blocked = [o for o in ("GCOV_KERNEL", "KASAN") if config.get(o) == "y"]
    if "KASAN" in blocked and config.get("KASAN_HW_TAGS") == "y":
        blocked.remove("KASAN")  # arch/Kconfig: HAS_LTO_CLANG depends on !KASAN || KASAN_HW_TAGS
    return {
        "debug": debug,
        "flags": tuple(flags) if debug != "none" else (),
        "lto": _config_lto(config),
        "sanitizers": tuple(o for o in _SANITIZERS if config.get(o) == "y"),
        "objtool": config.get("X86_KERNEL_IBT") == "y" or config.get("NOINSTR_VALIDATION") == "y",
        "lto_blocked": tuple(blocked),
        "trusted_keys": tuple(o for o in cal.TRUSTED_KEY_OPTIONS if config.get(o) not in (None, "", "n")),
    }


def _traits(config: dict[str, str], modules: int | None, why: str, source: str) -> _Traits:
    t = config_traits(config)
    return _Traits(
        debug_info=t["debug"], why=why, flags=t["flags"], lto=t["lto"], sanitizers=t["sanitizers"],
        objtool=t["objtool"], lto_blocked=t["lto_blocked"], modules=modules, trusted_keys=t["trusted_keys"],
        source=source,
    )


def _kconfig_traits(k: KconfigFacts, why: str) -> _Traits:
    return _Traits(
        debug_info=k.debug_info, why=why, flags=k.debug_flags, lto=k.lto, sanitizers=k.sanitizers,
        objtool=k.objtool_vmlinux, lto_blocked=config_traits(k.config)["lto_blocked"], modules=k.modules,
        trusted_keys=config_traits(k.config)["trusted_keys"], source=k.source,
    )


def _version(text: str | None) -> tuple[int, ...] | None:
    v = parse_version(text) if text else None
    return tuple(v) if v else None


def _kernel_version(facts: HostFacts, kconfig: KconfigFacts | None) -> tuple[int, ...] | None:
    if kconfig is not None and _version(kconfig.kernel_version):
        return _version(kconfig.kernel_version)
    return _version(facts.tree.kernel_version) if facts.tree else None


def _evaluated_text(k: KconfigFacts) -> str:
    debug = k.debug_info + (f" ({', '.join(k.debug_flags)})" if k.debug_flags else "")
    san = f", {', '.join(k.sanitizers)}" if k.sanitizers else ""
    return (
        f"debug info {debug}, LTO {k.lto}{san}, {k.modules} modules, "
        f"{k.arch or 'unknown arch'} {k.kernel_version}".rstrip()
    )


def _base_traits(target: str, facts: HostFacts, goals: Goals, kconfig: KconfigFacts | None, arch: str | None) -> _Traits:
    """What ``target`` produces before any change kprov makes, and where that is known from."""
    tree = facts.tree
    if kconfig is not None and kconfig.base is not None:
        b = kconfig.base
        return _kconfig_traits(b, f"make {target} gives {_evaluated_text(b)} (evaluated on this tree)")
    if kconfig is not None and kconfig.source == "tree":
        return _kconfig_traits(kconfig, f"the tree's own .config has {_evaluated_text(kconfig)}")
    if target == "olddefconfig" and tree and tree.has_config:
        t = _traits(tree.config, tree.modules, "", "tree")
        return dataclasses.replace(t, why=f"the tree's .config has debug info {t.debug_info}")
    if target == "localmodconfig":
        if tree and tree.has_config:
            t = _traits(tree.config, tree.modules, "", "tree")
            return dataclasses.replace(t, why=f"localmodconfig starts from the build's .config, which has debug info {t.debug_info}")
        running = facts.running_kernel
        if running is not None and running.config_path:
            t = _traits(running.config, None, "", "running")
            return dataclasses.replace(
                t, why=f"localmodconfig starts from the running kernel's config ({running.config_path}), which has debug info {t.debug_info}"
            )
        return _Traits(debug_info="none", why="localmodconfig: no running-kernel config to start from is known")
    version = _kernel_version(facts, None)
    row, key = cal.config_traits(target, arch, version)
    when = f"Linux {'.'.join(map(str, version))}" if version else "a current kernel (no --tree: version unknown)"
    debug = row.get("debug", "none")
    flags = tuple(row.get("flags", ()))
    desc = debug + (f" ({', '.join(flags)})" if flags else "")
    sanitizers = tuple(row.get("sanitizers", ()))
    extra = f", with {', '.join(sanitizers)}" if sanitizers else ""
    return _Traits(
        debug_info=debug,
        why=f"{target} gives debug info {desc}{extra} on {arch or 'this arch'} for {when} (table row {key}; "
        f"{'no --tree to evaluate' if tree is None else 'not evaluated'})",
        flags=flags,
        sanitizers=sanitizers,
        objtool=bool(row.get("objtool")),
        lto_blocked=tuple(row.get("lto_blocked", ())),
        source="table",
    )


def _running_kernel_gap(facts: HostFacts) -> str | None:
    """Why localmodconfig cannot work on this host (None when it can)."""
    running = facts.running_kernel
    if running is None:
        return (
            "the facts do not say whether this host has its running kernel's config and /proc/modules, "
            "which localmodconfig needs"
        )
    missing = []
    if not running.config_path:
        missing.append(f"the running kernel's config (no /proc/config.gz, no /boot/config-{facts.kernel_release or '<release>'})")
    if not running.modules_list:
        missing.append("its loaded-module list (no /proc/modules: a kernel without module support)")
    if missing:
        return f"localmodconfig needs {' and '.join(missing)}"
    return None


def _choose_target(facts: HostFacts, goals: Goals, reasons: dict, advice: list, notes: _Notes) -> str:
    tree = facts.tree
    if goals.target:
        reasons["target"] = f"{goals.target}: as asked"
        if goals.target == "localmodconfig" and not (tree and tree.has_config):
            gap = _running_kernel_gap(facts)
            if gap:
                notes.warn(f"--target localmodconfig: {gap}; make localmodconfig cannot work here")
            elif facts.in_container:
                notes.warn("--target localmodconfig in a container tailors the config to the host's loaded modules")
        return goals.target
    if tree and tree.has_config:
        reasons["target"] = (
            "olddefconfig: the tree has a .config; olddefconfig keeps it and answers new options "
            "with their defaults"
        )
        return "olddefconfig"
    if goals.for_this_machine and not facts.in_container:
        gap = _running_kernel_gap(facts)
        if gap is None:
            running = facts.running_kernel
            reasons["target"] = (
                f"localmodconfig: the kernel is for this machine, so keep only the {running.loaded_modules} "
                f"modules loaded now (/proc/modules), starting from the running kernel's config "
                f"({running.config_path}); about 10-20 min on 8 cores instead of 30-60 for a whole distro config"
            )
            return "localmodconfig"
        reasons["target"] = f"defconfig: {gap}; defconfig is the architecture's tested baseline"
        running = facts.running_kernel
        if running is not None and running.config_path:
            read = f"zcat {running.config_path}" if running.config_path.endswith(".gz") else f"cat {running.config_path}"
            advice.append(
                f"to start from the running kernel's config instead: {read} > BUILD_DIR/.config, then "
                "kprov plan --tree TREE --build-dir BUILD_DIR plans olddefconfig from it"
            )
        advice.append("for a quick compile test use --target tinyconfig (about 30 s of CPU)")
        return "defconfig"
    why = (
        "a container sees its host's loaded modules, so localmodconfig would trim for the wrong machine"
        if goals.for_this_machine
        else "the kernel is for another machine, whose modules this host cannot see"
    )
    reasons["target"] = f"defconfig: {why}; defconfig is the architecture's tested baseline"
    advice.append("for a quick compile test use --target tinyconfig (about 30 s of CPU)")
    return "defconfig"


def _target_class(target: str, facts: HostFacts, kconfig: KconfigFacts | None = None) -> str:
    klass = cal.TARGET_CLASS[target]
    tree = facts.tree
    modules = kconfig.modules if kconfig is not None else (tree.modules if tree and tree.has_config else 0)
    if target == "olddefconfig" and modules >= cal.DISTRO_CONFIG_MIN_MODULES:
        return "distro"
    return klass


def _choose_compiler(facts: HostFacts, goals: Goals, lto: str, notes: _Notes, reasons: dict) -> str:
    tools = facts.toolchain
    have_gcc, have_clang = bool(tools.get("gcc")), bool(tools.get("clang"))
    if goals.compiler != "auto":
        notes.forced("compiler")
        if lto != "none" and goals.compiler == "gcc":
            raise UserError(
                f"--lto {lto} needs clang: the kernel supports LTO only with clang (use --compiler clang)"
            )
        reasons["compiler"] = f"{goals.compiler}: as asked"
        chosen = goals.compiler
    elif lto != "none":
        reasons["compiler"] = f"clang: --lto {lto} needs clang (the kernel's LTO is clang-only)"
        chosen = "clang"
    elif facts.tree and facts.tree.config.get("CC_IS_CLANG") == "y" and have_clang:
        reasons["compiler"] = "clang: the tree's .config was made with clang"
        chosen = "clang"
    elif have_gcc:
        reasons["compiler"] = f"gcc {tools['gcc']}: installed, the kernel's default compiler"
        chosen = "gcc"
    elif have_clang:
        reasons["compiler"] = f"clang {tools['clang']}: installed (no gcc found)"
        chosen = "clang"
    elif not tools:
        # facts without tool versions (Ansible setup facts without kprov's probe): unknown, not absent
        reasons["compiler"] = "gcc: the facts carry no tool versions; gcc is the kernel's default compiler"
        return "gcc"
    else:
        reasons["compiler"] = "gcc: no compiler found; the build packages install gcc"
        notes.warn("no C compiler found (gcc or clang): `kprov apply` installs gcc with the build packages")
        return "gcc"
    if not tools.get(chosen):
        notes.warn(f"{chosen} is not installed: `kprov apply` installs it with the plan's packages")
    return chosen


def _check_versions(facts: HostFacts, compiler: str, debug_info: str, notes: _Notes) -> None:
    """Warn about each installed tool below the tree's minimum (or the compiler's, without a tree)."""
    tree = facts.tree
    minimums = dict(tree.min_versions) if tree else {}
    where = f"this tree's minimum" if tree else "the minimum of Linux 6.1 (no --tree given)"
    if not tree:
        minimums[compiler] = cal.COMPILER_MIN_DEFAULT[compiler]
    for tool, minimum in sorted(minimums.items()):
        have = facts.toolchain.get(tool)
        if tool in ("gcc", "clang") and tool != compiler:
            continue
        if have and version_below(have, minimum):
            notes.warn(f"{tool} {have} is below {where} {minimum}")
    if debug_info == "btf":
        pahole = facts.toolchain.get("pahole")
        minimum = (tree.min_versions.get("pahole") if tree else None) or cal.PAHOLE_MIN_BTF
        if not pahole:
            notes.warn("BTF debug info needs pahole (dwarves), which is not installed: `kprov apply` installs it")
        elif version_below(pahole, minimum):
            notes.warn(f"pahole {pahole} is below {minimum}, the minimum for BTF")


def _estimate_tag(facts: HostFacts) -> str:
    """What a reason says of a figure that was not measured on this tree."""
    where = f" --tree {facts.tree.path}" if facts.tree else " --tree PATH"
    return f"estimate: run kprov calibrate{where}"


def _budget(facts: HostFacts, tmpfs: int) -> tuple[int, str, int]:
    """RAM the build may use, why, and the page-cache headroom held back from a cgroup limit. A
    cgroup limit covers only what runs in the cgroup: the whole limit is the build's, with no
    reserve for a system that lives outside it."""
    m = facts.memory
    effective = m.effective_bytes
    headroom = 0
    if m.cgroup_limit_bytes and m.cgroup_limit_bytes < m.total_bytes:
        headroom = int(effective * cal.CGROUP_HEADROOM_FRACTION)
        budget = effective - headroom
        why = (
            f"{gib(budget)} budget: the cgroup memory limit {gib(effective)} (it covers only what runs in the "
            "cgroup, so nothing is reserved for the rest of the system) less the "
            f"{cal.CGROUP_HEADROOM_FRACTION:.0%} a cap needs for the page cache of the sources (measured)"
        )
        if 0 < m.available_bytes < budget:
            budget = m.available_bytes
            why = f"{gib(budget)} budget: MemAvailable, below the cgroup memory limit of {gib(effective)}"
            headroom = 0  # the host's RAM binds, not the cap
    else:
        reserve = min(
            max(effective * cal.OS_RESERVE_FRACTION, cal.OS_RESERVE_MIN_MIB * MIB), cal.OS_RESERVE_MAX_MIB * MIB
        )
        budget = effective - reserve
        if 0 < m.available_bytes < budget:
            budget = m.available_bytes
            why = f"{gib(budget)} budget: MemAvailable (RAM {gib(effective)}, other programs use the rest)"
        else:
            why = f"{gib(budget)} budget: RAM {gib(effective)} - {gib(reserve)} reserve for the system"
    if tmpfs:
        budget -= tmpfs
        why += f", less {gib(tmpfs)} for the build directory on tmpfs (its files live in RAM)"
    return max(0, int(budget)), why, headroom


def _memory(
    facts: HostFacts, cfg: _Config, cpus: int, profile: CalibrationProfile | None, tmpfs: int
) -> tuple[_Memory, int]:
    """The budget, the compile phase's per-job figure and the serial phases' peaks; returns the
    memory model and the ThinLTO jobs (0 without ThinLTO)."""
    budget, why, headroom = _budget(facts, tmpfs)
    tag = _estimate_tag(facts)
    klass, debug = cfg.target_class, cfg.debug_info
    if profile is not None:
        per_job = profile.rss_p99_bytes
        average = profile.rss_mean_bytes or profile.rss_p50_bytes
        per_job_source = (
            f"measured on this tree: p99 of {profile.objects_sampled} compile jobs, mean {gib(average)}, "
            f"kprov calibrate {profile.date[:10]}"
        )
    else:
        per_job = int(cal.per_job_mib(klass, cfg.compiler, debug, cfg.heavy_sanitizers) * MIB)
        average = int(cal.average_job_mib(klass, cfg.compiler, debug, cfg.heavy_sanitizers) * MIB)
        extra = f", debug info {debug}" if debug != "none" else ""
        extra += ", sanitizers" if cfg.heavy_sanitizers and klass not in ("allmod", "allyes") else ""
        per_job_source = f"table figure for {klass} configs with {cfg.compiler}{extra}; {tag}"
    base = cal.BUILD_BASE_MIB * MIB
    serial: list[_Serial] = []
    variant = cfg.debug_variant
    if profile is not None and profile.link.measured:
        serial.append(
            _Serial(
                "vmlinux link",
                profile.link.peak_bytes,
                f"measured on this tree: the largest process of make vmlinux (ld, objtool, pahole), "
                f"kprov calibrate {profile.date[:10]}",
            )
        )
    else:
        serial.append(
            _Serial(
                "vmlinux link",
                int(cal.link_peak_mib(klass, debug, variant) * MIB),
                f"table figure for {klass} configs{', debug info ' + debug + (' ' + variant if variant else '') if debug != 'none' else ''}; {tag}",
            )
        )
        if cfg.objtool:
            serial.append(
                _Serial(
                    "objtool over vmlinux.o",
                    int(cal.objtool_peak_mib(klass, debug, cfg.version) * MIB),
                    f"published/table figure for {klass} configs on this kernel version; {tag}",
                    modfinal=False,
                )
            )
        if debug == "btf":
            serial.append(
                _Serial(
                    "BTF (pahole)",
                    int(cal.link_peak_mib(klass, "dwarf", variant) * cal.BTF_PEAK_FACTOR * MIB),
                    f"table figure: pahole reads the whole vmlinux's DWARF; {tag}",
                )
            )
    thin_jobs = 0
    if cfg.lto == "full":
        # the LTO code generation runs in vmlinux.o's link, before modpost: no modfinal beside it
        serial.append(
            _Serial("full LTO link", cal.LTO_FULL_LINK_MIB[klass] * MIB, "published: ld.lld full-LTO link peak", modfinal=False)
        )
    elif cfg.lto == "thin":
        room = budget - base - cal.THINLTO_BASE_MIB * MIB
        thin_jobs = max(1, min(cpus, math.floor(room / (cal.THINLTO_PER_BACKEND_MIB * MIB))))
        serial.append(
            _Serial(
                "ThinLTO link",
                (cal.THINLTO_BASE_MIB + thin_jobs * cal.THINLTO_PER_BACKEND_MIB) * MIB,
                f"estimate: the thin link plus {thin_jobs} backends of ~{cal.THINLTO_PER_BACKEND_MIB} MiB",
                modfinal=False,
            )
        )
    memory = _Memory(
        budget,
        why,
        max(1, int(per_job)),
        per_job_source,
        base,
        max(1, int(average)),
        tuple(serial),
        profile is not None,
        headroom,
    )
    return memory, thin_jobs


def _usable_kconfig(tree_eval: TreeEvaluation | None, target: str, notes: _Notes) -> KconfigFacts | None:
    """The evaluated Kconfig when it was evaluated for this target, else None (said so)."""
    k = tree_eval.kconfig if tree_eval is not None else None
    if k is None:
        return None
    if k.source == "evaluated" and k.target != target:
        notes.warn(f"the Kconfig evaluation was for {k.target}, not {target}: planned from the table instead")
        return None
    return k


def _debug_commands(debug: str) -> list[str]:
    if debug == "none":
        return [f"--disable {o}" for o in cal.DEBUG_INFO_OFF_OPTIONS] + ["--enable DEBUG_INFO_NONE"]
    commands = ["--disable DEBUG_INFO_NONE", "--enable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT"]
    return commands + (["--enable DEBUG_INFO_BTF"] if debug == "btf" else ["--disable DEBUG_INFO_BTF"])


def _lto_commands(lto: str) -> list[str]:
    if lto == "thin":
        return ["--disable LTO_NONE", "--disable LTO_CLANG_FULL", "--enable LTO_CLANG_THIN"]
    if lto == "full":
        return ["--disable LTO_NONE", "--disable LTO_CLANG_THIN", "--enable LTO_CLANG_FULL"]
    return ["--disable LTO_CLANG_THIN", "--disable LTO_CLANG_FULL", "--enable LTO_NONE"]


def _changes(
    facts: HostFacts, goals: Goals, target: str, compiler: str, base: _Traits, reasons: dict, notes: _Notes
) -> tuple[list[str], str, str]:
    """The scripts/config arguments that turn what ``target`` produces into what the plan builds;
    returns them with the planned LTO and debug info."""
    commands: list[str] = []
    if goals.lto == "auto":
        lto = base.lto if compiler == "clang" else "none"
        if lto == "none":
            reasons["lto"] = "none: LTO adds a long, memory-hungry serial link and needs clang; ask for it with --lto"
            if base.lto != "none":
                reasons["lto"] += f" (the config has {base.lto} LTO, which gcc cannot build: olddefconfig drops it)"
        else:
            reasons["lto"] = f"{lto}: the config has it ({base.why})"
    else:
        lto = goals.lto
        notes.forced("lto")
        reasons["lto"] = f"{lto}: as asked"
        if lto != base.lto:
            commands += _lto_commands(lto)
    if goals.debug_info == "auto":
        debug = base.debug_info
        reasons["debug_info"] = f"{debug}: {base.why}"
    else:
        debug = goals.debug_info
        notes.forced("debug_info")
        reasons["debug_info"] = f"{debug}: as asked ({base.why})"
    if debug != base.debug_info:
        commands += _debug_commands(debug)
    if target in ("olddefconfig", "localmodconfig") and base.trusted_keys:
        where = {"running": "the running kernel's config", "tree": "the tree's .config"}.get(base.source, "the config")
        commands += [f"--set-str {o} ''" for o in cal.TRUSTED_KEY_OPTIONS]
        reasons["trusted_keys"] = (
            f"{where} names certificate files ({', '.join(base.trusted_keys)}) that are not in the source tree: "
            "empty SYSTEM_TRUSTED_KEYS/SYSTEM_REVOCATION_KEYS, else the build stops in certs/"
        )
    return commands, lto, debug


def _request_parts(facts: HostFacts, goals: Goals) -> tuple[str, str, dict[str, str]]:
    """Target, compiler and the Kconfig-deciding make variables, the same for every pass."""
    notes = _Notes()
    target = _choose_target(facts, goals, {}, [], notes)
    compiler = _choose_compiler(facts, goals, goals.lto if goals.lto != "auto" else "none", notes, {})
    make_vars: dict[str, str] = {}
    native = _native_arch(facts)
    if goals.arch and goals.arch != native:
        make_vars["ARCH"] = goals.arch
        if compiler == "gcc" and cal.CROSS_COMPILE_PREFIX.get(goals.arch):
            make_vars["CROSS_COMPILE"] = cal.CROSS_COMPILE_PREFIX[goals.arch]
    if compiler == "clang":
        make_vars["LLVM"] = "1"
    return target, compiler, make_vars


def config_request(facts: HostFacts, goals: Goals) -> KconfigRequest:
    """What provision.kconfig should evaluate for this plan: the planned target with the real
    build's ARCH/CROSS_COMPILE/LLVM (no ccache or distcc: they do not change Kconfig's answers)."""
    _check_goals(goals)
    target, _compiler, make_vars = _request_parts(facts, goals)
    tree = facts.tree
    if tree is None:
        return KconfigRequest(target=target, make_vars=make_vars, evaluable=False, why_not="no --tree")
    if not tree.clean:
        return KconfigRequest(
            target=target,
            make_vars=make_vars,
            evaluable=False,
            why_not="the tree is configured in place (a .config or include/config in the source directory): "
            "kbuild refuses a scratch O= for it",
        )
    seed = None
    if target == "olddefconfig" and tree.has_config and goals.build_dir:
        seed = f"{goals.build_dir.rstrip('/')}/.config"
    elif target in ("olddefconfig", "localmodconfig") and tree.has_config:
        seed = f"{tree.path.rstrip('/')}/.config"
    return KconfigRequest(target=target, make_vars=make_vars, seed_config=seed)


def config_commands(facts: HostFacts, goals: Goals, base: KconfigFacts) -> tuple[str, ...]:
    """The scripts/config arguments the plan applies to ``base``, the .config the planned target
    gave in a scratch ``O=`` (provision.kconfig applies them and evaluates the result)."""
    target, compiler, _vars = _request_parts(facts, goals)
    traits = _kconfig_traits(base, "evaluated")
    commands, _lto, _debug = _changes(facts, goals, target, compiler, traits, {}, _Notes())
    return tuple(commands)


def _refused_lto(lto: str, base: _Traits, compiler: str, target: str) -> str:
    blocked = f"; {target} sets {', '.join(base.lto_blocked)}" if base.lto_blocked else ""
    fix = (
        f"; to get LTO: scripts/config {' '.join('--disable ' + o for o in base.lto_blocked)} before olddefconfig"
        if base.lto_blocked
        else ""
    )
    return (
        f"--lto {lto}: Kconfig refuses clang LTO with this config (HAS_LTO_CLANG needs clang, ld.lld and the "
        f"LLVM tools, and neither GCOV_KERNEL nor KASAN{blocked}): the plan is for no LTO{fix}"
    )


def _choose_config(facts: HostFacts, goals: Goals, notes: _Notes, tree_eval: TreeEvaluation | None) -> _Config:
    reasons: dict[str, str] = {}
    advice: list[str] = []
    target = _choose_target(facts, goals, reasons, advice, notes)
    if goals.target:
        notes.forced("target")
    compiler = _choose_compiler(facts, goals, goals.lto if goals.lto != "auto" else "none", notes, reasons)
    kconfig = _usable_kconfig(tree_eval, target, notes)
    klass = _target_class(target, facts, kconfig)
    base = _base_traits(target, facts, goals, kconfig, _target_arch(facts, goals))
    commands, lto, debug = _changes(facts, goals, target, compiler, base, reasons, notes)

    final = kconfig
    if kconfig is not None and kconfig.source == "evaluated" and tuple(commands) != kconfig.script_args:
        notes.warn("the Kconfig evaluation applied other changes than this plan: its result is not used")
        final = None
    elif kconfig is not None and kconfig.source == "tree" and commands:
        final = None  # the tree's .config as it is, before the plan's changes: predict the result
    flags = base.flags if debug == base.debug_info else ()
    if final is not None:
        # what Kconfig really made of the target and the plan's changes
        for option in final.refused:
            if "LTO" in option and lto != "none":
                notes.warn(_refused_lto(lto, base, compiler, target))
            else:
                notes.warn(f"Kconfig refuses {option} with this config: the make line cannot produce it")
        if final.debug_info != debug:
            notes.warn(f"debug info {debug} was planned, but Kconfig gives {final.debug_info} with this config")
        if final.lto != lto:
            reasons["lto"] += f"; Kconfig gives LTO {final.lto} with this config, so the plan is for that"
        lto, debug, flags = final.lto, final.debug_info, final.debug_flags
        sanitizers, objtool, modules = final.sanitizers, final.objtool_vmlinux, final.modules
        source = final.source
        shown = " + ".join(final.commands) if final.commands else "its .config"
        took = f" ({final.seconds:.1f} s)" if final.source == "evaluated" else ""
        reasons["kconfig"] = (
            f"{'evaluated in a scratch O=' if final.source == 'evaluated' else 'read from the tree'}: {shown}{took} -> "
            f"{_evaluated_text(final)}; config hash {final.config_hash[:12]}"
        )
    else:
        if lto != "none" and (base.lto_blocked or compiler != "clang"):
            notes.warn(_refused_lto(lto, base, compiler, target))
            reasons["lto"] += "; Kconfig refuses it with this config, so the plan is for LTO none"
            lto = "none"
        sanitizers, objtool, modules, source = base.sanitizers, base.objtool, base.modules, base.source
        if source == "table":
            reasons["kconfig"] = (
                "table: what the target produces per arch and kernel version (docs/calibration.md §9); "
                + ("give --tree to evaluate the tree's real .config" if facts.tree is None else "not evaluated here")
            )
    if tree_eval is not None:
        for note in tree_eval.notes:
            notes.warn(note)

    if klass in ("allmod", "allyes"):
        out = cal.build_output_gib(klass, debug)
        minutes = cal.build_cpu_seconds(klass, compiler, debug) / 60
        notes.warn(
            f"{target} is huge: ~{out:.0f} GiB of build output and ~{minutes:.0f} CPU-minutes "
            "(a whole-tree compile test, not a kernel to boot)"
        )
    return _Config(
        target=target,
        target_class=klass,
        compiler=compiler,
        debug_info=debug,
        lto=lto,
        reasons=reasons,
        advice=tuple(advice),
        commands=tuple(commands),
        flags=tuple(flags),
        sanitizers=tuple(sanitizers),
        objtool=bool(objtool),
        modules=modules,
        version=_kernel_version(facts, kconfig),
        source=source,
        kconfig=final,
    )


# --------------------------------------------------------------------------- zram


def _kernel_at_least(release: str, want: tuple[int, int]) -> bool | None:
    v = parse_version(release)
    return None if v is None else v[:2] >= want


def _zram_sysctls(facts: HostFacts) -> tuple[dict[str, str], str]:
    sysctls = dict(cal.ZRAM_SYSCTLS)
    newer = _kernel_at_least(facts.kernel_release, cal.SWAPPINESS_OVER_100_KERNEL)
    want = ".".join(map(str, cal.SWAPPINESS_OVER_100_KERNEL))
    if newer:
        why = (
            f"vm.swappiness=180 (kernel {facts.kernel_release} >= {want} accepts values over 100): swapping to "
            "zram is cheaper than dropping page cache"
        )
    else:
        sysctls["vm.swappiness"] = cal.SWAPPINESS_LEGACY
        known = f"kernel {facts.kernel_release}" if facts.kernel_release else "kernel version unknown"
        why = f"vm.swappiness={cal.SWAPPINESS_LEGACY} ({known}: values over 100 need {want})"
    why += "; page-cluster 0 (zram reads single pages fast), no watermark boost, watermark scale 125"
    return check_sysctls(sysctls, "zram sysctls"), why


def _pick_algorithm(offered: tuple[str, ...], mode: str) -> str:
    for name in cal.ZRAM_PREFERENCE[mode]:
        if name in offered:
            return name
    return offered[0]


def _plan_zram(
    facts: HostFacts,
    goals: Goals,
    pkgs: PackageSet | None,
    mem: _Memory,
    cpus: int,
    notes: _Notes,
    serial_short: tuple[str, int, int] | None = None,
) -> tuple[ZramPlan, int]:
    """Decide zram; returns the plan and the bytes of build memory it may be counted for.

    ``serial_short`` is the serial phase that does not fit the budget plus disk swap: its name,
    its need and the bytes it is short. zram holds that shortfall instead of a lower -j.
    """
    z = facts.zram
    offered = tuple(z.compressors)
    if not offered and z.source == "unknown":
        # Facts from Ansible without kprov's probe do not say what the kernel offers: assume the
        # kernel's Kconfig default compressor, which every zram-enabled kernel has, and say so.
        offered = (cal.ZRAM_KCONFIG_DEFAULT,)
        notes.warn(
            f"the facts do not say which zram compressors the kernel offers (no kprov probe): "
            f"assuming its default, {cal.ZRAM_KCONFIG_DEFAULT}"
        )
    total = facts.memory.total_bytes
    tool = pkgs.zram_tool if pkgs else "none"
    overridden: list[str] = []
    if goals.zram_algorithm is not None and goals.zram_algorithm not in offered:
        raise UserError(
            f"zram algorithm '{goals.zram_algorithm}' is not offered by this kernel "
            f"(offers: {', '.join(offered) if offered else 'none'})"
        )
    for name in ("zram", "zram_percent", "zram_algorithm"):
        if getattr(goals, name) is not None:
            overridden.append(name)
            notes.forced(name)
    existing = _users_zram(facts)
    memory_limits = mem.fit() < cpus
    small = facts.memory.effective_bytes < cal.ZRAM_SMALL_HOST_BYTES

    def off(reason: str) -> tuple[ZramPlan, int]:
        return ZramPlan(enabled=False, reason=reason, tool=tool, overridden=tuple(overridden)), 0

    if goals.zram is False:
        return off("off: overridden (--no-zram)")
    if not offered:
        if goals.zram:
            raise UserError("--zram: this kernel offers no zram compressor (no zram support)")
        return off("off: this kernel offers no zram compressor (no zram module or device)")
    if tool == "none" and not existing:
        if goals.zram:
            raise UserError(f"--zram: kprov has no zram tool for distro '{facts.distro.id}'")
        return off(f"off: kprov has no zram tool for distro '{facts.distro.id}'")

    if existing:
        # Not kprov's (no ownership record): never reconfigured, restarted or reset, and no zram
        # tool is installed whose service could do either.
        if goals.zram:
            notes.warn(f"--zram: {', '.join(existing)} is already active swap that kprov did not set up; left as it is")
        return off(
            f"off: an active zram swap kprov did not set up ({', '.join(existing)}) already exists; "
            "kprov leaves it, its configuration and its service as they are"
        )
    if goals.zram:
        reason = "on: overridden (--zram)"
        if facts.in_container:
            notes.warn("zram was forced on in a container: the config is written, but only the host's kernel can activate swap")
    elif facts.in_container:
        return off("off: a container cannot create zram devices; swap belongs to the host's kernel")
    elif memory_limits:
        fit = mem.fit()
        reason = (
            f"on: memory limits -j ({_count(fit, 'compile job')} {'fits' if fit == 1 else 'fit'} in "
            f"{gib(mem.ram_budget)} for {cpus} CPUs); zram turns a build that would livelock under memory "
            "pressure into one that finishes"
        )
    elif serial_short:
        name, need, short = serial_short
        reason = (
            f"on: the {name} needs ~{gib(need)} at its peak, {gib(short)} more than the {gib(mem.ram_budget)} "
            "budget and the swap hold; zram holds that instead of a lower -j (-j does not shrink a serial phase)"
        )
    elif small:
        swap = "no swap at all" if facts.memory.swap_total_bytes == 0 else f"{gib(facts.memory.swap_total_bytes)} swap"
        reason = (
            f"on: a small host ({gib(facts.memory.effective_bytes)} RAM, {swap}): a safety net for the link "
            "and for anything running beside the build"
        )
    else:
        return off(
            f"off: {gib(facts.memory.effective_bytes)} RAM is enough for {cpus} jobs "
            f"(room for {_count(mem.fit(), 'compile job')}) and for the serial phases; zram is a safety net "
            "this host does not need"
        )

    reasons: dict[str, str] = {}
    mode = "capacity" if memory_limits or serial_short else "speed"
    if goals.zram_algorithm:
        algorithm = goals.zram_algorithm
        reasons["algorithm"] = f"{algorithm}: as asked (offered: {', '.join(offered)})"
    else:
        algorithm = _pick_algorithm(offered, mode)
        why = (
            "stores the most per byte of RAM" if mode == "capacity" else "the fastest of them"
        )
        reasons["algorithm"] = (
            f"{algorithm}: of the offered {', '.join(offered)}, {why} (memory is "
            f"{'the limit' if mode == 'capacity' else 'not the limit'}); expected ratio {cal.zram_ratio(algorithm):g}:1"
        )
    ratio = cal.zram_ratio(algorithm)
    keep = 1 - 1 / ratio  # each byte stored in zram frees this much RAM
    rescue = cal.zram_rescue_bytes(mem.ram_budget)
    if goals.zram_percent is not None:
        percent = goals.zram_percent
        reasons["percent"] = f"{percent}%: as asked"
    else:
        # Sized to hold the whole shortfall of -j <usable CPUs> (a safety net for whoever runs more
        # jobs than planned) or of a serial phase, whichever is larger; only part of it is counted
        # for -j (rescue cap).
        compile_short = max(0, mem.need(cpus) - mem.ram_budget)
        shortfall = max(compile_short, serial_short[2] if serial_short else 0)
        needed = math.ceil(shortfall / keep * 100 / total) if shortfall else 0
        percent = min(cal.ZRAM_MAX_PERCENT, max(cal.ZRAM_DEFAULT_PERCENT, needed, cal.ZRAM_MIN_PERCENT))
        what = f"{cpus} jobs" if shortfall == compile_short else f"the {serial_short[0]}"
        if shortfall:
            reasons["percent"] = (
                f"{percent}%: {what} would be {gib(shortfall)} short; at {ratio:g}:1 a device of "
                f"{gib(shortfall / keep)} frees that much; at least the {cal.ZRAM_DEFAULT_PERCENT}% default, "
                f"at most {cal.ZRAM_MAX_PERCENT}% (2 x RAM)"
            )
        else:
            reasons["percent"] = (
                f"{percent}%: the common default (zram-generator 0.5 x RAM); memory does not limit -j here"
            )
    size = total * percent // 100
    gain = 0 if facts.in_container else min(_zram_frees(facts, size, keep), rescue)
    reasons["capacity"] = (
        f"a {gib(size)} device at {ratio:g}:1 frees up to {gib(size * keep)} of RAM; the plan counts "
        f"{gib(gain)} of it for -j and for each serial phase (a phase may need at most "
        f"{cal.ZRAM_RESCUE_FRACTION:.0%} more than RAM holds: measured)"
    )
    reasons["priority"] = f"{cal.ZRAM_PRIORITY}: above any disk swap, so zram is used first"
    reasons["tool"] = f"{tool}: the zram tool of the {facts.distro.family} family"
    sysctls, reasons["sysctls"] = _zram_sysctls(facts)
    return (
        ZramPlan(
            enabled=True,
            reason=reason,
            algorithm=algorithm,
            percent=percent,
            priority=cal.ZRAM_PRIORITY,
            size_bytes=size,
            tool=tool,
            sysctls=sysctls,
            reasons=reasons,
            overridden=tuple(overridden),
        ),
        gain,
    )


# --------------------------------------------------------------------------- jobs


def _load(facts: HostFacts, goals: Goals, notes: _Notes) -> tuple[float | None, str]:
    """``-l`` only when asked: /proc/loadavg is not namespaced and counts tasks blocked on I/O."""
    if goals.load is not None:
        load = float(goals.load)
        notes.forced("load")
        if facts.in_container:
            notes.warn(
                f"--load {_load_str(load)} in a container: /proc/loadavg is not namespaced, so the limit reacts to "
                "every task of the host and can serialise this build"
            )
        return load, f"-l {_load_str(load)}: as asked (make starts no new job while the load average is above it)"
    if facts.in_container:
        return None, (
            "-l not set: /proc/loadavg is not namespaced, so in a container a load limit reacts to every task "
            "of the host (and to tasks blocked on I/O) and would serialise this build"
        )
    return None, (
        "-l not set: -j already matches what this host can run; a load limit only helps when other work "
        "shares these CPUs (ask for it with --load N)"
    )


def _plan_jobs(facts: HostFacts, goals: Goals, cfg: _Config, mem: _Memory, gain: int, notes: _Notes) -> JobsPlan:
    """-j from the compile phase alone: the serial phases never run beside it, and a lower -j would
    not make them smaller."""
    cpus = _usable(facts)
    fit = mem.fit(gain)
    auto = max(1, min(cpus, fit))
    what = f"{cfg.target} with {cfg.compiler}" + (f", debug info {cfg.debug_info}" if cfg.debug_info != "none" else "")
    zram_part = f" + {gib(gain)} counted from zram" if gain else ""
    if gain and mem.headroom:
        zram_part += f" (with the cap's {gib(mem.headroom)} page-cache headroom, which swap on zram makes room for)"
    arithmetic = (
        f"compile phase {mem.arithmetic(auto)} = {gib(mem.need(auto))} of {gib(mem.ram_budget)}{zram_part}: "
        f"room for {_count(fit, 'job')} ({what}; per job: {mem.per_job_source})"
    )
    load, load_why = _load(facts, goals, notes)
    common = dict(
        load=load,
        load_reason=load_why,
        average_job_bytes=mem.average,
        per_job_bytes=mem.per_job,
        budget_bytes=mem.ram_budget + gain,
        link_peak_bytes=mem.link_peak,
        base_bytes=mem.base,
    )
    if fit < 1:
        notes.warn(
            f"even one job does not fit: not even one compile job of {gib(mem.per_job)} (its p99) fits beside the "
            f"{gib(mem.base)} base in {gib(mem.ram_budget)}{zram_part}; the build will swap heavily or livelock "
            "(a bigger host, or a lighter config)"
        )
    if goals.jobs is not None:
        notes.forced("jobs")
        if goals.jobs > cpus:
            notes.warn(
                f"--jobs {goals.jobs} exceeds the {cpus} usable CPUs: oversubscribing cost 3-25% in measurements"
            )
        if goals.jobs > max(fit, 1):
            notes.warn(
                f"--jobs {goals.jobs} exceeds what memory holds ({_count(fit, 'compile job')}: "
                f"{gib(mem.need(goals.jobs))} needed, {gib(mem.ram_budget + gain)} budgeted)"
            )
        return JobsPlan(
            value=goals.jobs,
            reason=f"jobs={goals.jobs}: overridden (kprov would pick {auto}: {_cpu_story(facts)}; {arithmetic}); {load_why}",
            limited_by="override",
            overridden=True,
            **common,
        )
    if fit < cpus:
        reason = f"jobs={auto}: {_cpu_story(facts)}, but memory is the limit: {mem.budget_reason}; {arithmetic}"
        limited = "memory"
    else:
        reason = (
            f"jobs={auto}: {_cpu_story(facts)} (one job per CPU: oversubscribing cost 3-25% in measurements); "
            f"memory is not the limit: {mem.budget_reason}; {arithmetic}"
        )
        limited = "cpus"
    if mem.serial:
        reason += "; the serial phases (" + ", ".join(s.name for s in mem.serial) + ") do not size -j"
    return JobsPlan(value=auto, reason=f"{reason}; {load_why}", limited_by=limited, **common)


def _serial_short(facts: HostFacts, cfg: _Config, mem: _Memory, jobs: int) -> tuple[str, int, int] | None:
    """The serial phase furthest beyond the budget plus disk swap at ``jobs``: (name, need, short)."""
    swap = _disk_swap(facts)
    worst = None
    for phase in mem.serial:
        need = mem.serial_need(phase, jobs, cfg.modules)
        short = need - mem.ram_budget - swap
        if short > 0 and (worst is None or short > worst[2]):
            worst = (phase.name, need, short)
    return worst


def _below_ram_cgroup(facts: HostFacts) -> bool:
    m = facts.memory
    return bool(m.cgroup_limit_bytes and m.cgroup_limit_bytes < m.total_bytes) and not facts.in_container


def _zram_frees(facts: HostFacts, size: int, keep: float) -> int:
    """RAM a zram device of ``size`` frees for the build. Its compressed pool is not charged to a
    memory cgroup: under a cgroup limit below RAM every byte it holds leaves the limit (while the
    host has RAM for the pool); on a whole host the pool comes out of the same RAM."""
    if _below_ram_cgroup(facts):
        outside = max(0, facts.memory.available_bytes - facts.memory.effective_bytes)
        return int(min(size, outside * (1 / (1 - keep)) if keep < 1 else size))
    return int(size * keep)


def _existing_zram_gain(facts: HostFacts, mem: _Memory) -> int:
    """What an active zram swap that kprov leaves alone frees for the build, at its compressor's
    measured ratio (capped like planned zram); none in a container (/proc/swaps is the host's)."""
    if facts.in_container or not _users_zram(facts) or not facts.memory.zram_swap_bytes:
        return 0
    keep = 1 - 1 / cal.zram_ratio(facts.zram.active or cal.ZRAM_KCONFIG_DEFAULT)
    return min(_zram_frees(facts, facts.memory.zram_swap_bytes, keep), cal.zram_rescue_bytes(mem.ram_budget))


def _disk_swap(facts: HostFacts) -> int:
    """Free swap this build can count on: none in a container (/proc/swaps is the host's)."""
    if facts.in_container:
        return 0
    return max(0, facts.memory.swap_free_bytes)


def _debug_advice(cfg: _Config, mem: _Memory, phase: _Serial, room: int) -> list[str]:
    """Config changes that shrink a debug-info serial phase, with the peak each would give."""
    if cfg.debug_info == "none" or phase.name not in ("vmlinux link", "BTF (pahole)"):
        return []
    options = []
    for option, variant in (("DEBUG_INFO_REDUCED", "reduced"), ("DEBUG_INFO_SPLIT", "split"), ("DEBUG_INFO_COMPRESSED", "compressed")):
        peak = cal.link_peak_mib(cfg.target_class, "dwarf", variant) * MIB
        verdict = "fits" if peak <= room else "still short"
        options.append(f"{option} (~{gib(peak)}: {verdict})")
    none_peak = cal.link_peak_mib(cfg.target_class, "none") * MIB
    options.append(f"--debug-info none (~{gib(none_peak)}: {'fits' if none_peak <= room else 'still short'})")
    return options


def _phases(
    facts: HostFacts,
    cfg: _Config,
    mem: _Memory,
    jobs: int,
    gain: int,
    zram: ZramPlan,
    seconds: dict[str, float],
    notes: _Notes,
) -> tuple[PhasePlan, ...]:
    """Each phase's peak at the planned -j and whether it fits RAM, RAM + swap, or neither."""
    swap = _disk_swap(facts)
    budget = mem.ram_budget
    compile_need = mem.need(jobs)
    fits = "ram" if compile_need <= budget else "swap" if compile_need <= budget + gain else "short"
    phases = [
        PhasePlan(
            name="compile",
            peak_bytes=compile_need,
            fits=fits,
            seconds=round(seconds.get("compile", 0.0), 1),
            reason=(
                f"{mem.arithmetic(jobs)} ({mem.per_job_source}) = "
                f"{gib(compile_need)} of the {gib(budget)} budget" + (f" + {gib(gain)} counted from zram" if gain else "")
            ),
        )
    ]
    for phase in mem.serial:
        need = mem.serial_need(phase, jobs, cfg.modules)
        beside = need - mem.base - phase.peak
        parts = f"{gib(mem.base)} base + {gib(phase.peak)} {phase.name}" + (
            f" + {gib(beside)} for modfinal jobs beside it" if beside else ""
        )
        room = budget + gain + swap
        if need <= budget:
            fits, verdict = "ram", f"fits the {gib(budget)} budget"
        elif need <= room:
            fits = "swap"
            held = []
            if gain:
                held.append(f"{gib(gain)} counted from zram")
            if swap:
                held.append(f"{gib(swap)} free swap")
            verdict = f"{gib(need - budget)} over the {gib(budget)} budget, held by {' and '.join(held)}: slower, not failed"
        else:
            fits = "short"
            verdict = f"{gib(need - room)} short of the budget and the swap ({gib(room)})"
            advice = _debug_advice(cfg, mem, phase, budget + gain + swap - (need - phase.peak))
            fix = []
            if zram.enabled:
                fix.append(f"the planned zram ({gib(zram.size_bytes)}) is not enough")
            else:
                fix.append(f"add ~{gib(need - room)} of swap (or zram)")
            if advice:
                fix.append("or shrink it: " + ", ".join(advice))
            if cfg.target == "allyesconfig" and phase.name == "objtool over vmlinux.o":
                allmod = cal.objtool_peak_mib("allmod", cfg.debug_info, cfg.version) * MIB
                fix.append(f"or build allmodconfig (objtool ~{gib(allmod)}: most code goes into modules)")
            notes.warn(
                f"the {phase.name} does not fit: it needs ~{gib(need)} ({parts}) and this host has "
                f"{gib(budget)} of budget + {gib(gain)} zram + {gib(swap)} swap; {'; '.join(fix)}. -j stays "
                f"{jobs}: a lower -j would not make the {phase.name} smaller"
            )
        phases.append(
            PhasePlan(
                name=phase.name,
                peak_bytes=need,
                fits=fits,
                seconds=round(seconds.get(phase.name, 0.0), 1),
                reason=f"{parts} = {gib(need)}: {verdict} ({phase.source})",
            )
        )
    return tuple(phases)


def _estimate(
    facts: HostFacts, cfg: _Config, mem: _Memory, jobs: int, profile: CalibrationProfile | None, thin_jobs: int
) -> tuple[EstimatePlan, dict[str, float]]:
    """Wall time: make prepare, then the compile phase's CPU-seconds over the jobs, then the
    serial tail. Each figure says whether it was measured on this tree."""
    measured: list[str] = []
    estimated: list[str] = []
    tag = _estimate_tag(facts)
    klass = cfg.target_class
    if profile is not None:
        cpu = profile.cpu_seconds_total
        measured.append(
            f"compile CPU {cpu / 60:.0f} CPU-minutes for {profile.objects_total} units "
            f"({profile.objects_sampled} sampled)"
        )
        prepare = profile.prepare_seconds
        measured.append(f"make prepare {prepare:.0f} s")
    else:
        cpu = cal.build_cpu_seconds(klass, cfg.compiler, cfg.debug_info, cfg.heavy_sanitizers)
        estimated.append(f"compile CPU ~{cpu / 60:.0f} CPU-minutes (table figure for {klass} configs)")
        prepare = cal.PREPARE_SECONDS[klass]
        estimated.append(f"make prepare ~{prepare:.0f} s")
    compile_s = cpu / (jobs * cal.PARALLEL_EFFICIENCY)
    seconds: dict[str, float] = {"compile": compile_s}
    if profile is not None and profile.link.measured:
        link = profile.link.seconds
        measured.append(f"vmlinux step {link:.0f} s")
    else:
        link = cal.LINK_SECONDS[klass] * (cal.LINK_DEBUG_TIME_FACTOR if cfg.debug_info != "none" else 1.0)
        estimated.append(f"vmlinux step ~{link:.0f} s")
    seconds["vmlinux link"] = link
    lto = 0.0
    if cfg.lto != "none":
        lto = cpu * cal.LTO_LINK_CPU_SHARE / (thin_jobs if cfg.lto == "thin" else 1)
        seconds["full LTO link" if cfg.lto == "full" else "ThinLTO link"] = lto
        estimated.append(f"{cfg.lto} LTO link ~{lto / 60:.0f} min")
    total = prepare + compile_s + link + lto
    if profile is None and cal.REFERENCE_CPU.lower() not in facts.cpu.model.lower():
        model = facts.cpu.model or "an unknown CPU"
        estimated.append(
            f"cores like the reference machine's ({cal.REFERENCE_CPU}); this host has {model}, which may be "
            "several times slower or faster"
        )
    parts = f"prepare ~{prepare:.0f} s + {cpu / 60:.0f} CPU-minutes over {jobs} jobs (~{compile_s / 60:.0f} min)"
    parts += f" + vmlinux step ~{link:.0f} s" + (f" + {cfg.lto} LTO link ~{lto / 60:.0f} min" if lto else "")
    source = (
        "measured on this tree: " + ", ".join(measured) if measured else ""
    ) + ("; " if measured and estimated else "") + (f"{tag}: " + ", ".join(estimated) if estimated else "")
    reason = f"~{total / 60:.0f} min at -j{jobs}: {parts} ({source})"
    return (
        EstimatePlan(
            seconds=round(total, 1),
            cpu_seconds=round(cpu, 1),
            reason=reason,
            measured=tuple(measured),
            estimated=tuple(estimated),
        ),
        seconds,
    )


# --------------------------------------------------------------------------- ccache


def _in_range(version: tuple[int, int, int] | None, bounds: tuple) -> bool:
    return version is not None and bounds[0] <= version <= bounds[1]


def _plan_ccache(
    facts: HostFacts,
    goals: Goals,
    cfg: _Config,
    pkgs: PackageSet | None,
    notes: _Notes,
    profile: CalibrationProfile | None = None,
) -> CcachePlan:
    installed = facts.toolchain.get("ccache")
    installable = bool(pkgs and pkgs.ccache)
    version = parse_version(installed)
    broken = _in_range(version, cal.CCACHE_BROKEN_VERSIONS)
    group_add = tuple(dict.fromkeys(check_user_name(u, "--ccache-group-add") for u in goals.ccache_group_add))
    if goals.ccache_private:
        if goals.ccache_dir is not None:
            raise UserError(f"--ccache-private and --ccache-dir {goals.ccache_dir} contradict each other: give one")
        if group_add:
            raise UserError(
                f"--ccache-private and --ccache-group-add {group_add[0]} contradict each other: a private cache has no group"
            )
        # the planning user's own default (root's, for an apply): the role creates no directory
        home = facts.disk("home")
        directory = f"{home.path.rstrip('/')}/.cache/ccache" if home and home.path.startswith("/") else PRIVATE_CCACHE_DIR
    elif goals.ccache_dir is not None:
        directory = check_owned_dir(goals.ccache_dir, "--ccache-dir")
    elif facts.disk("ccache"):
        directory = check_owned_dir(facts.disk("ccache").path, "the facts' ccache directory")
    else:
        directory = CcachePlan.dir
    overridden: list[str] = []
    if goals.ccache is not None:
        overridden.append("ccache")
        notes.forced("ccache")
    if goals.ccache_size_bytes is not None:
        overridden.append("ccache_size")
        notes.forced("ccache_size")
    low, high = (".".join(map(str, b)) for b in cal.CCACHE_BROKEN_VERSIONS)
    if broken:
        notes.warn(f"ccache {installed} cannot cache kernel builds (versions {low}-{high}; fixed in 4.7.3)")

    def off(reason: str) -> CcachePlan:
        return CcachePlan(
            enabled=False, reason=reason, dir=directory, overridden=tuple(overridden), private=goals.ccache_private
        )

    if goals.ccache is False:
        return off("off: overridden (--no-ccache)")
    if goals.ccache is None:
        if broken:
            return off(f"off: ccache {installed} cannot cache kernel builds ({low}-{high}); upgrade to 4.7.3 or later")
        if not installed and not installable:
            return off(f"off: ccache is not installed and kprov has no package for distro '{facts.distro.id}'")
    reason = "on: overridden (--ccache)" if goals.ccache else (
        f"on: ccache {installed} is installed" if installed else "on: `kprov apply` installs ccache"
    )
    reason += f"; a warm cache rebuilds ~{cal.CCACHE_WARM_SPEEDUP:g}x faster (measured)"

    reasons: dict[str, str] = {}
    if profile is not None and profile.object_bytes_total:
        footprint = profile.object_bytes_total * cal.CCACHE_BYTES_PER_OBJECT_BYTE
        footprint_source = (
            f"measured on this tree: ~{gib(profile.object_bytes_total)} of objects x "
            f"{cal.CCACHE_BYTES_PER_OBJECT_BYTE:g} cache bytes per object byte"
        )
    else:
        footprint = cal.ccache_footprint_mib(cfg.target_class, cfg.debug_info) * MIB
        footprint_source = f"table figure; {_estimate_tag(facts)}"
    wanted = max(int(footprint * goals.builds_to_keep * cal.CCACHE_HEADROOM), cal.CCACHE_MIN_BYTES)
    # a private cache lives in each user's home
    disk = facts.disk("home") if goals.ccache_private else facts.disk("ccache")
    share = int(disk.free_bytes * cal.CCACHE_DISK_SHARE) if disk else None
    where = f"{cal.CCACHE_DISK_SHARE:.0%} of {gib(disk.free_bytes)} free on {disk.mount}" if disk else ""
    if goals.ccache_size_bytes is not None:
        size = goals.ccache_size_bytes
        reasons["max_size"] = f"{gib(size)}: as asked"
        if share is not None and size > share:
            notes.warn(f"--ccache-size {gib(size)} is more than {where} ({gib(share)})")
    else:
        debug = f", debug info {cfg.debug_info}" if cfg.debug_info != "none" else ""
        story = (
            f"{cfg.target} ({cfg.target_class}{debug}) fills ~{gib(footprint)} per build x {goals.builds_to_keep} "
            f"builds to keep x {cal.CCACHE_HEADROOM:g} headroom, at least {gib(cal.CCACHE_MIN_BYTES)} "
            f"({footprint_source})"
        )
        if share is not None and share < cal.CCACHE_MIN_BYTES:
            # ccache reads max_size 0 as "no limit": a full disk must never become an unbounded cache.
            shortage = (
                f"{where} is {gib(share)}, below the {gib(cal.CCACHE_MIN_BYTES)} a cache needs to be worth having "
                f"({cfg.target} fills ~{gib(footprint)} per build)"
            )
            if goals.ccache:
                raise UserError(
                    f"--ccache: {shortage}; give --ccache-dir on a filesystem with room, or --ccache-size"
                )
            return off(f"off: {shortage}; give --ccache-dir on a filesystem with room")
        if share is not None and wanted > share:
            size = share
            reasons["max_size"] = f"{gib(size)}: capped at {where} ({story} = {gib(wanted)})"
        else:
            size = wanted
            tail = f"; within {where}" if share is not None else "; free disk on the cache's filesystem unknown"
            reasons["max_size"] = f"{gib(size)}: {story}{tail}"
    sloppiness = tuple(cal.CCACHE_SLOPPINESS)
    reasons["sloppiness"] = (
        f"{','.join(sloppiness)}: the kernel builds with -Werror=date-time, so no unit uses __DATE__/__TIME__; "
        "hits survive a changing SOURCE_DATE_EPOCH"
    )
    reasons["compression"] = "on: ccache's default (zstd), about halves the cache for a little CPU"
    reasons["timestamp"] = (
        "KBUILD_BUILD_TIMESTAMP is fixed in the build environment: without it every build misses the cache"
    )
    hash_dir, base_dir = True, None
    shared_driver = ""
    # A compile-cache store shares hits between hosts just as --ccache-shared does.
    if goals.ccache_shared or goals.ccache_server or goals.ccache_remote is not None:
        hash_dir = False
        base_dir = cache_rules.common_parent(facts.tree.path if facts.tree else None, goals.build_dir)
        if base_dir is None and facts.disk("home") and facts.disk("home").path != "/":
            base_dir = facts.disk("home").path
        if base_dir is not None:
            try:
                base_dir = check_path(base_dir, "ccache base_dir")
            except UserError as exc:
                notes.warn(f"no ccache base_dir: {exc}")
                base_dir = None
        reasons["sharing"] = (
            f"shared cache: hash_dir false (the build directory is not hashed) and base_dir {base_dir} "
            "(paths below it are hashed relative); build in the same absolute path on every machine"
            if base_dir
            else "shared cache: hash_dir false (the build directory is not hashed); no base_dir (no tree, build "
            "directory or home below /): absolute source paths are hashed, so build in the same absolute path "
            "on every machine"
        )
        own = _versioned_driver(facts, goals, cfg)
        if own is not None and own.driver:
            shared_driver = own.driver
            reasons["compiler"] = (
                f"CC names {own.driver}: every unit's autoconf.h records the compiler's version line with its "
                "name (CONFIG_CC_VERSION_TEXT), so hosts that share a cache name it the same way, the versioned "
                "driver distcc clients use"
            )
    writers = _ccache_writers(facts, goals, directory, group_add)
    reasons["writers"] = writers
    reason += "; " + writers.split(":", 1)[0]
    if version is not None and cfg.compiler == "gcc" and _target_arch(facts, goals) == "arm64":
        if _in_range(version, cal.CCACHE_ARM64_UNCACHED_VERSIONS):
            notes.warn(f"ccache {installed} does not cache arm64 units that pass -Wa,-march (fixed in 4.7.3)")
    notes.warn(
        f"a cold ccache build is ~{cal.CCACHE_COLD_SLOWDOWN:g}x slower than a plain one: the cache pays off "
        "only when you rebuild the same kernel version"
    )
    return CcachePlan(
        enabled=True,
        reason=reason,
        max_size_bytes=int(size),
        dir=directory,
        compression=True,
        sloppiness=sloppiness,
        hash_dir=hash_dir,
        base_dir=base_dir,
        reasons=reasons,
        overridden=tuple(overridden),
        private=goals.ccache_private,
        group_add=group_add,
        compiler=shared_driver,
    )


#: What ``--ccache-private`` leaves each user: ccache 4's own default cache directory.
PRIVATE_CCACHE_DIR = "~/.cache/ccache"
#: The group that shares the cache directory (the role's kbuild_host_ccache_group default).
CCACHE_GROUP = "kbuild"


def _ccache_writers(facts: HostFacts, goals: Goals, directory: str, group_add: tuple[str, ...]) -> str:
    """Who can write the cache, and what that means: a shared cache is shared trust."""
    if goals.ccache_private:
        return (
            f"private caches: no shared directory and no group; each user keeps ccache's default "
            f"({PRIVATE_CCACHE_DIR}), written only by that user (and root), so no user's objects reach "
            "another's build or root's (root's builds use root's own cache)"
        )
    members = facts.ccache_group_members
    if members is None:
        listed = f"group {CCACHE_GROUP} does not exist yet, so no members" if facts.source == "local" else (
            f"group {CCACHE_GROUP}'s members are not known from these facts"
        )
    elif members:
        listed = f"members now: {', '.join(members)}"
    else:
        listed = "no members now"
    added = (
        f"; kprov adds {', '.join(group_add)} to it (--ccache-group-add)" if group_add
        else "; kprov adds nobody to it unless asked (--ccache-group-add USER), or use --ccache-private"
    )
    return (
        f"shared cache written by root and the members of group {CCACHE_GROUP} ({listed}){added}: "
        f"{directory} is {CCACHE_GROUP}-writable, so each of them can plant objects that the others' builds "
        "and root's then link"
    )


def _cache_inputs(
    facts: HostFacts, cfg: _Config, mem: _Memory, jobs: JobsPlan, profile: CalibrationProfile | None, build_dir: str | None
) -> cache_rules.Inputs:
    """What the shared-cache rules need from this plan: one build's cache bytes (as the local cache
    is sized) and the RAM the host's own build leaves at its planned -j."""
    if profile is not None and profile.object_bytes_total:
        footprint = profile.object_bytes_total * cal.CCACHE_BYTES_PER_OBJECT_BYTE
        source = "measured on this tree"
    else:
        footprint = cal.ccache_footprint_mib(cfg.target_class, cfg.debug_info) * MIB
        source = f"table figure for {cfg.target}"
    own = max([mem.need(jobs.value)] + [mem.serial_need(s, jobs.value, cfg.modules) for s in mem.serial])
    config = cfg.kconfig.config if cfg.kconfig else (facts.tree.config if facts.tree else {})
    return cache_rules.Inputs(
        footprint_bytes=int(footprint),
        footprint_source=source,
        ram_spare_bytes=mem.ram_budget - own,
        ram_story=f"the {gib(max(0, mem.ram_budget - own))} left of a {gib(mem.ram_budget)} budget by the build at -j{jobs.value}",
        compiler=cfg.compiler,
        config=config,
        build_dir=build_dir,
        tree=facts.tree.path if facts.tree else None,
    )


# --------------------------------------------------------------------------- distcc


def _host_entries(goals: Goals) -> tuple[HostEntry, ...]:
    return check_host_entries(goals.host_entries)


def _plan_distcc(
    facts: HostFacts,
    goals: Goals,
    cfg: _Config,
    mem: _Memory,
    gain: int,
    jobs: JobsPlan,
    ccache: CcachePlan,
    notes: _Notes,
) -> tuple[DistccPlan, tuple[str, ...]]:
    """Server and client halves; returns the plan and extra scripts/config arguments."""
    cpus = _usable(facts)
    entries = _host_entries(goals)
    reasons: dict[str, str] = {}
    commands: list[str] = []
    server = bool(goals.distcc_server)
    client = bool(goals.distcc_hosts)
    allow: tuple[str, ...] = ()
    listen = None
    server_jobs = 0
    if server:
        if not goals.allow:
            raise UserError("distcc server needs at least one --allow CIDR")
        allow = parse_allow(goals.allow, goals.allow_public)
        reasons["allow"] = f"{' '.join(allow)}: only these may connect (anyone who can connect can run commands)"
        if goals.allow_public:
            notes.forced("allow_public")
        default = parse_ip(facts.default_ipv4, "the facts' default_ipv4") if facts.default_ipv4 else None
        if goals.listen is not None:
            listen = check_listen(goals.listen, allow)
            reasons["listen"] = f"{listen}: as asked"
        elif default and address_in(default, allow):
            listen = check_listen(default, allow, where="the facts' default_ipv4")
            reasons["listen"] = f"{listen}: this host's default-route address, inside the allowed networks"
        else:
            listen = loopback_for(allow)
            reasons["listen"] = (
                f"{listen}: the host's address is unknown or outside the allowed networks, so distccd binds "
                "only to loopback; give --listen ADDRESS for the farm network"
            )
            if not address_in(listen, allow):
                notes.warn(f"distccd listens on {listen} only: no allowed client can reach it (give --listen)")
        mem_slots = mem.fit(gain)
        server_jobs = max(1, min(cpus + cal.DISTCCD_EXTRA_JOBS, mem_slots))
        limit = "memory" if mem_slots < cpus + cal.DISTCCD_EXTRA_JOBS else "CPUs"
        reasons["server_jobs"] = (
            f"{server_jobs}: distccd's default of usable CPUs + {cal.DISTCCD_EXTRA_JOBS} ({cpus} + "
            f"{cal.DISTCCD_EXTRA_JOBS}), bounded by memory ({_count(mem_slots, 'job')} of {gib(mem.per_job)}); "
            f"limited by {limit}"
        )

    hosts: tuple[str, ...] = ()
    total = 0
    if client:
        parsed = check_distcc_hosts(goals.distcc_hosts, cal.DISTCC_MAX_LIMIT)
        remote_hosts = [h for h in parsed if not h.is_local]
        local_given = next((h for h in parsed if h.is_local), None)
        remote = sum(h.limit or cal.DISTCC_DEFAULT_LIMIT for h in remote_hosts)
        feed = math.floor(cpus / cal.PREPROCESS_CPU_SHARE)
        fed = min(remote, feed)
        if local_given:
            local = local_given.limit or cal.DISTCC_LOCALHOST_LIMIT
            reasons["localhost"] = f"localhost/{local}: as asked"
        else:
            spare = math.floor(cpus - fed * cal.PREPROCESS_CPU_SHARE)
            local = max(1, min(jobs.value, spare))
            reasons["localhost"] = (
                f"localhost/{local}: {cpus} usable CPUs less ~{fed * cal.PREPROCESS_CPU_SHARE:g} CPUs for "
                f"preprocessing {fed} remote jobs (~{cal.PREPROCESS_CPU_SHARE:.0%} of a compile each), "
                f"at least 1, at most the local -j {jobs.value}"
            )
        # remote jobs are in flight during the compile phase, never beside the serial link
        room = mem.ram_budget + gain - mem.base - local * mem.per_job
        mem_remote = max(0, math.floor(room / (cal.DISTCC_CLIENT_JOB_MIB * MIB)))
        used_remote = min(fed, mem_remote)
        total = local + used_remote
        specs = [h.spec(cal.DISTCC_DEFAULT_LIMIT) for h in remote_hosts]
        specs.append(local_given.spec(cal.DISTCC_LOCALHOST_LIMIT) if local_given else f"localhost/{local}")
        hosts = tuple(specs)
        caps = []
        if remote > feed:
            caps.append(
                f"capped from {remote} remote slots: this client's {cpus} CPUs preprocess every job and can "
                f"feed ~{feed}"
            )
        if used_remote < fed:
            caps.append(f"capped by client memory ({_count(mem_remote, 'job')} of ~{cal.DISTCC_CLIENT_JOB_MIB} MiB in flight)")
        reasons["total_jobs"] = (
            f"-j{total} for a distributed build: {used_remote} remote slots "
            f"({' + '.join(h.spec(cal.DISTCC_DEFAULT_LIMIT) for h in remote_hosts) or 'none'}) + localhost/{local}"
            + (f"; {'; '.join(caps)}" if caps else "")
        )
        reasons["hosts"] = "remote servers first and localhost last, so distcc fills remote slots before local ones"
        if ccache.enabled:
            reasons["ccache"] = "ccache runs first and hands misses to distcc (CCACHE_PREFIX=distcc)"
        if not remote_hosts:
            notes.warn("--distcc-hosts lists no remote host: the build stays local")
    compiler = ""
    if client:
        compiler = _distcc_compiler(facts, goals, cfg, reasons, notes)
    if goals.distcc_excluded:
        excluded = goals.distcc_excluded
        reasons["excluded"] = "; ".join(excluded) + (
            " - a server with another compiler fails the unit or, worse, returns an object of its own compiler"
        )
        if not client:
            notes.warn(
                "distcc: no server of the farm compiles what this host compiles, so builds stay local "
                f"(excluded: {'; '.join(excluded)})"
            )
    server_packages: tuple[str, ...] = ()
    if server:
        server_packages = tuple(dict.fromkeys(check_packages(goals.distcc_server_packages, "goals.distcc_server_packages")))
        _distcc_links(facts, server_packages, reasons)
    if (server or client) and cfg.compiler == "gcc":
        commands.append("--disable GCC_PLUGINS")
        reasons["gcc_plugins"] = (
            "CONFIG_GCC_PLUGINS=n: distcc refuses -fplugin= and compiles such units locally (kernels >= 5.2); "
            "or build with --compiler clang"
        )
    if server and client:
        why = "server and client"
    elif server:
        why = f"server: distccd for {' '.join(allow)}"
    elif client:
        why = f"client of {len(hosts) - 1} distcc server(s)"
    elif goals.distcc_excluded:
        why = f"no server of the farm compiles what this host compiles ({len(goals.distcc_excluded)} excluded)"
    else:
        why = "not asked (--distcc-server / --distcc-hosts)"
    plan = DistccPlan(
        enabled=server or client,
        reason=("on: " if server or client else "off: ") + why,
        server=server,
        allow=allow,
        allow_public=bool(goals.allow_public and server),
        listen=listen,
        server_jobs=server_jobs,
        client=client,
        hosts=hosts,
        total_jobs=total,
        host_entries=entries,
        reasons=reasons,
        compiler=compiler,
        excluded=tuple(goals.distcc_excluded),
        server_packages=server_packages,
    )
    return plan, tuple(commands)


def _versioned_driver(facts: HostFacts, goals: Goals, cfg: _Config) -> CompilerFacts | None:
    """This host's planned compiler from its toolchain facts (None: unknown, or a cross build)."""
    if goals.arch and goals.arch != _native_arch(facts):
        return None
    tc = facts.toolchain_facts
    return tc.compiler(cfg.compiler) if tc else None


def _distcc_compiler(facts: HostFacts, goals: Goals, cfg: _Config, reasons: dict, notes: _Notes) -> str:
    """The compiler name a distcc client hands its servers: the versioned triplet driver
    (``x86_64-linux-gnu-gcc-12``), which a server runs only when it has that very compiler; with a
    plain ``gcc`` an arm64 server compiles for arm64, and one with gcc 13 returns gcc 13 objects."""
    if goals.arch and goals.arch != _native_arch(facts):
        return ""  # a cross build names its CROSS_COMPILE prefix already
    compiler = _versioned_driver(facts, goals, cfg)
    if compiler is None:
        notes.warn(
            f"distcc: this host's {cfg.compiler} is not in its facts, so the servers get the plain name "
            f"'{cfg.compiler}' and compile with whatever {cfg.compiler} they have"
        )
        return ""
    if compiler.driver is None:
        notes.warn(
            f"distcc: no versioned driver for {compiler.version_text} on this host, so the servers get the "
            f"plain name '{cfg.compiler}' and compile with whatever {cfg.compiler} they have"
        )
        return ""
    reasons["compiler"] = (
        f"{compiler.driver}: the versioned triplet name of this host's {cfg.compiler} ({compiler.version_text}); a "
        "server runs it only if it has that compiler, never another version or target"
    )
    return compiler.driver


def _distcc_links(facts: HostFacts, installs: tuple[str, ...], reasons: dict) -> None:
    """What distccd may run: only compilers with a link in /usr/lib/distcc (distcc >= 3.3)."""
    tc = facts.toolchain_facts
    if installs:
        reasons["server_packages"] = (
            f"{' '.join(installs)}: the compiler(s) its clients use, from this release's packages, so it compiles "
            "exactly what they compile"
        )
    if tc is None:
        return
    names = [c.driver for c in tc.compilers if c.driver]
    if tc.distcc_links is None:
        missing = names
    else:
        missing = [n for n in names if n not in tc.distcc_links]
    linked = [n for n in names if n not in missing]
    parts = []
    if linked:
        parts.append(f"{' '.join(linked)} linked in /usr/lib/distcc")
    if missing or installs:
        parts.append(
            f"{' '.join(missing + [f'the {p} driver' for p in installs]) } to be linked by update-distcc-symlinks "
            "(it links every installed gcc and clang)"
        )
    if parts:
        reasons["links"] = "distccd runs only compilers linked in /usr/lib/distcc: " + "; ".join(parts)


# --------------------------------------------------------------------------- make command and env


def _native_arch(facts: HostFacts) -> str | None:
    return cal.KERNEL_ARCH.get(facts.arch)


def _target_arch(facts: HostFacts, goals: Goals) -> str | None:
    return goals.arch or _native_arch(facts)


def _on_tmpfs(disk: DiskFacts | None) -> bool:
    return disk is not None and disk.fstype in cal.TMPFS_FSTYPES


def _build_dir(
    facts: HostFacts, goals: Goals, cfg: _Config, notes: _Notes, reasons: dict
) -> tuple[str | None, DiskFacts | None]:
    """O= on the filesystem with the most room among the tree's and the home directory's (a tmpfs
    only when there is nothing else: its files take RAM). Returns the path and its filesystem."""
    need = cal.build_output_gib(cfg.target_class, cfg.debug_info) * GIB
    tree = facts.tree
    if tree is not None and not tree.clean:
        if goals.build_dir is not None:
            notes.warn(
                f"--build-dir {goals.build_dir}: the tree is configured in place, and kbuild refuses O= for it "
                "(make mrproper in the tree first, or build in it)"
            )
        reasons["build_dir"] = (
            "in the tree: it is configured in place (a .config or include/config in the source directory), "
            "and kbuild refuses O= for such a tree"
        )
        return None, facts.disk("build")
    if goals.build_dir is not None:
        path = check_path(goals.build_dir, "--build-dir")
        reasons["build_dir"] = f"{path}: as asked"
        chosen_disk = facts.disk("build")
    else:
        build, home = facts.disk("build"), facts.disk("home")
        candidates = [d for d in (home, build) if d is not None]
        if not candidates:
            reasons["build_dir"] = "in the tree: no disk facts to choose from"
            return None, None
        on_disk = [d for d in candidates if not _on_tmpfs(d)]
        candidates = on_disk or candidates
        best = max(candidates, key=lambda d: d.free_bytes)
        tree = facts.tree
        # Same filesystem: beside the tree when there is one, else under the home directory.
        preferred = build if tree else home
        if preferred is not None and preferred in candidates and best.mount == preferred.mount:
            best = preferred
        if tree and best is build:
            path = f"{tree.path.rstrip('/')}-build"
        elif tree:
            path = f"{best.path.rstrip('/')}/kbuild/{tree.path.rstrip('/').rsplit('/', 1)[-1]}"
        else:
            path = f"{best.path.rstrip('/')}/kbuild"
        try:
            path = check_path(path, "build directory (O=)")
        except UserError as exc:
            notes.warn(f"building in the tree: {exc}")
            reasons["build_dir"] = "in the tree: the out-of-tree path kprov would choose is not one it writes into files"
            return None, facts.disk("build")
        others = [d for d in candidates if d.mount != best.mount]
        vs = f" (vs {', '.join(f'{gib(d.free_bytes)} on {d.mount}' for d in others)})" if others else ""
        reasons["build_dir"] = (
            f"{path}: out of tree (O=) on {best.mount}, the filesystem with the most room: "
            f"{gib(best.free_bytes)} free{vs}; this build needs ~{gib(need)}"
        )
        chosen_disk = best
    if _on_tmpfs(chosen_disk):
        reasons["build_dir"] += (
            f"; {chosen_disk.mount} is {chosen_disk.fstype}: the ~{gib(need)} of build output lives in RAM and is "
            "taken out of the memory budget"
        )
    return path, chosen_disk


def _check_disk(
    facts: HostFacts, cfg: _Config, build_dir: str | None, build_disk: DiskFacts | None, ccache: CcachePlan,
    notes: _Notes, reasons: dict,
) -> None:
    """O=, the ccache and the tree on one filesystem share its free space: sum what they will add."""
    need = cal.build_output_gib(cfg.target_class, cfg.debug_info) * GIB
    cache_disk = facts.disk("ccache")
    cache = ccache.max_size_bytes if ccache.enabled else 0
    if build_disk is None:
        return
    same = cache_disk is not None and cache and cache_disk.mount == build_disk.mount
    total = need + (cache if same else 0)
    tree = facts.tree
    tree_here = tree is not None and facts.disk("build") is not None and facts.disk("build").mount == build_disk.mount
    parts = [f"O= ~{gib(need)}"] + ([f"the ccache up to {gib(cache)}"] if same else [])
    sharing = (
        f"{' and '.join(parts)} on {build_disk.mount}"
        + (" (the tree is there too: its files are already counted as used)" if tree_here else "")
    )
    if same:
        reasons["disk"] = f"{sharing}: {gib(total)} of {gib(build_disk.free_bytes)} free"
    if total > build_disk.free_bytes and not _on_tmpfs(build_disk):
        notes.warn(
            f"not enough disk for {cfg.target}: {sharing} need ~{gib(total)} and {build_disk.mount} has "
            f"{gib(build_disk.free_bytes)} free"
        )
    elif _on_tmpfs(build_disk) and need > build_disk.free_bytes:
        notes.warn(
            f"not enough room for {cfg.target} on {build_disk.mount} ({build_disk.fstype}): its build output is "
            f"~{gib(need)} and {gib(build_disk.free_bytes)} is free"
        )


def _cc_value(compiler: str, cross: str, ccache: bool, distcc_client: bool, driver: str = "") -> str | None:
    name = driver or (compiler if compiler == "clang" else f"{cross}gcc")
    if ccache:
        return f"ccache {name}"
    if distcc_client:
        return f"distcc {name}"
    return None


def _quote(value: str) -> str:
    return shlex.quote(value)


def _make_vars(facts: HostFacts, goals: Goals, cfg: _Config, build_dir: str | None, ccache: bool, client: bool, notes: _Notes, reasons: dict, driver: str = "") -> dict[str, str]:
    make_vars: dict[str, str] = {}
    if build_dir:
        make_vars["O"] = build_dir
    native = _native_arch(facts)
    cross = ""
    if goals.arch and goals.arch != native:
        make_vars["ARCH"] = goals.arch
        if cfg.compiler == "gcc":
            cross = cal.CROSS_COMPILE_PREFIX.get(goals.arch, "")
            if cross:
                make_vars["CROSS_COMPILE"] = cross
            else:
                notes.warn(f"no known cross-compiler prefix for ARCH={goals.arch}: set CROSS_COMPILE yourself")
        reasons["arch"] = f"ARCH={goals.arch}: cross build from {facts.arch}"
    if cfg.compiler == "clang":
        make_vars["LLVM"] = "1"
    cc = _cc_value(cfg.compiler, cross, ccache, client, driver)
    if cc:
        make_vars["CC"] = cc
    return make_vars


def _make_line(tree: str | None, make_vars: dict[str, str], jobs: int | None, load: float | None, goals_: list[str]) -> str:
    words = ["make"]
    if tree:
        words += ["-C", _quote(tree)]
    if jobs:
        words.append(f"-j{jobs}")
    if load:
        words.append(f"-l{_load_str(load)}")
    words += [f"{k}={_quote(v)}" for k, v in make_vars.items()]
    words += goals_
    return " ".join(words)


def _finish_config(
    facts: HostFacts,
    goals: Goals,
    cfg: _Config,
    jobs: JobsPlan,
    ccache: CcachePlan,
    distcc: DistccPlan,
    extra_commands: tuple[str, ...],
    build_dir: str | None,
    dir_reasons: dict[str, str],
    notes: _Notes,
) -> ConfigPlan:
    reasons = dict(cfg.reasons)
    reasons.update(dir_reasons)
    driver = distcc.compiler or (ccache.compiler if ccache.enabled else "")
    make_vars = _make_vars(facts, goals, cfg, build_dir, ccache.enabled, distcc.client, notes, reasons, driver)
    tree = facts.tree.path if facts.tree else None
    config_args = list(cfg.commands) + [c for c in extra_commands if c not in cfg.commands]
    j = distcc.total_jobs if distcc.client else jobs.value
    prefix = "CCACHE_PREFIX=distcc " if distcc.client and ccache.enabled else ""
    config_commands: tuple[str, ...] = ()
    if config_args:
        script = f"{tree.rstrip('/')}/scripts/config" if tree else "scripts/config"
        dot_config = f"{build_dir.rstrip('/')}/.config" if build_dir else ".config"
        config_commands = (
            _make_line(tree, make_vars, None, None, [cfg.target]),
            f"{_quote(script)} --file {_quote(dot_config)} " + " ".join(config_args),
        )
        command = prefix + _make_line(tree, make_vars, j, jobs.load, ["olddefconfig", "all"])
    else:
        command = prefix + _make_line(tree, make_vars, j, jobs.load, [cfg.target, "all"])
    reasons["make"] = (
        "CC and LLVM go on the make command line: the kernel Makefile assigns CC itself, so an environment CC "
        "is ignored"
    )
    kbuild_env = dict(cal.KBUILD_ENV)
    reasons["kbuild_env"] = (
        "fixed KBUILD_BUILD_TIMESTAMP/USER/HOST/VERSION: identical builds give identical objects, so ccache hits "
        "and shared caches work"
    )
    advice = list(cfg.advice)
    return ConfigPlan(
        target=cfg.target,
        compiler=cfg.compiler,
        debug_info=cfg.debug_info,
        lto=cfg.lto,
        build_dir=build_dir,
        make_command=command,
        make_vars=make_vars,
        kbuild_env=kbuild_env,
        config_commands=config_commands,
        reasons=reasons,
        advice=tuple(advice),
        source=cfg.source,
        kconfig=cfg.kconfig,
        sanitizers=cfg.sanitizers,
    )


def _env(cfg: ConfigPlan, jobs: JobsPlan, ccache: CcachePlan, distcc: DistccPlan) -> dict[str, str]:
    """What ``kprov env`` exports. ``KPROV_MAKE_ARGS`` holds the make variables (use it with eval)."""
    j = distcc.total_jobs if distcc.client else jobs.value
    env = {"MAKEFLAGS": f"-j{j}" + (f" -l{_load_str(jobs.load)}" if jobs.load else "")}
    env.update(cfg.kbuild_env)
    if cfg.build_dir:
        env["KBUILD_OUTPUT"] = cfg.build_dir
    if ccache.enabled and not ccache.private:
        env["CCACHE_DIR"] = ccache.dir
        if not ccache.hash_dir:
            env["CCACHE_NOHASHDIR"] = "true"
        if ccache.base_dir:
            env["CCACHE_BASEDIR"] = ccache.base_dir
    if distcc.client:
        if ccache.enabled:
            env["CCACHE_PREFIX"] = "distcc"
        env["DISTCC_HOSTS"] = " ".join(distcc.hosts)
    env.update(cache_rules.env(ccache))
    args = {k: v for k, v in cfg.make_vars.items() if k != "O"}
    env["KPROV_MAKE_ARGS"] = " ".join(f"{k}={_quote(v)}" for k, v in args.items())
    return env


# --------------------------------------------------------------------------- packages


def _users_zram(facts: HostFacts) -> tuple[str, ...]:
    """Active zram swap devices the user made: kprov leaves them alone and installs no zram tool.

    A device kprov itself set up is its to keep sized to the plan. In a container /proc/swaps shows
    the host's swap: not the container's to keep or to plan.
    """
    if facts.in_container:
        return ()
    return tuple(d for d in facts.zram.devices_in_use if d not in facts.zram.kprov_devices)


def _packages(
    facts: HostFacts, pkgs: PackageSet | None, cfg: _Config, zram: ZramPlan, ccache: CcachePlan, distcc: DistccPlan, notes: _Notes
) -> tuple[str, ...]:
    if pkgs is None:
        notes.warn(f"no package list for distro '{facts.distro.id or facts.distro.family}': install the build dependencies yourself")
        return ()
    names: list[str] = list(pkgs.build)
    if zram.enabled and not _users_zram(facts):
        names += pkgs.zram
    if ccache.enabled:
        names += pkgs.ccache
        store = ccache.store
        if store is not None and store.backend == "redis":
            names += pkgs.redis
        elif store is not None:
            names += pkgs.nginx
            if facts.service_manager != "systemd":  # the WebDAV store's trim: a systemd timer, else cron
                names += pkgs.cron
    if distcc.enabled:
        names += pkgs.distcc
    names += distcc.server_packages
    if cfg.compiler == "clang":
        names += pkgs.clang
    return tuple(dict.fromkeys(names))


# --------------------------------------------------------------------------- entry point


def plan(
    facts: HostFacts, goals: Goals, catalog: PackageCatalog, tree_eval: TreeEvaluation | None = None
) -> Plan:
    """Plan a kernel build host. Raises UserError for goals no plan can honour.

    ``tree_eval`` carries what provision.kconfig and provision.calibrate learnt about the tree:
    the .config the planned target really produces and a matching calibration profile.
    """
    _check_goals(goals)
    notes = _Notes()
    pkgs = catalog.for_family(facts.distro.family)
    cpus = _usable(facts)
    cfg = _choose_config(facts, goals, notes, tree_eval)
    _check_versions(facts, cfg.compiler, cfg.debug_info, notes)
    profile = tree_eval.profile if tree_eval is not None else None
    dir_reasons: dict[str, str] = {}
    build_dir, build_disk = _build_dir(facts, goals, cfg, notes, dir_reasons)
    tmpfs = int(cal.build_output_gib(cfg.target_class, cfg.debug_info) * GIB) if build_dir and _on_tmpfs(build_disk) else 0
    if tmpfs:
        notes.warn(
            f"the build directory is on {build_disk.fstype} ({build_disk.mount}): its ~{gib(tmpfs)} of build output "
            "takes RAM, counted out of the memory budget"
        )
    mem, thin_jobs = _memory(facts, cfg, cpus, profile, tmpfs)
    if thin_jobs:
        cfg.reasons["lto"] += (
            f" (ld.lld runs one ThinLTO backend per CPU, ~{cal.THINLTO_PER_BACKEND_MIB} MiB each: {thin_jobs} fit "
            f"here, so if the link runs out of memory add --thinlto-jobs={thin_jobs} to the linker flags)"
        )
    zram, gain = _plan_zram(facts, goals, pkgs, mem, cpus, notes, _serial_short(facts, cfg, mem, cpus))
    if not zram.enabled and goals.zram is not False:
        gain = _existing_zram_gain(facts, mem)
    if gain:
        # docs/calibration.md §3: with swap on zram the kernel moves idle pages of the jobs out to
        # make room for the page cache, so a cap's page-cache headroom is the build's too (224 and
        # 192 MiB caps: -j2 fastest, -j3 killed once the need passed the cap + zram)
        gain += mem.headroom
    jobs = _plan_jobs(facts, goals, cfg, mem, gain, notes)
    ccache = _plan_ccache(facts, goals, cfg, pkgs, notes, profile)
    ccache = cache_rules.shared_cache(facts, goals, ccache, _cache_inputs(facts, cfg, mem, jobs, profile, build_dir), notes.warn)
    distcc, extra = _plan_distcc(facts, goals, cfg, mem, gain, jobs, ccache, notes)
    _check_disk(facts, cfg, build_dir, build_disk, ccache, notes, dir_reasons)
    config = _finish_config(facts, goals, cfg, jobs, ccache, distcc, extra, build_dir, dir_reasons, notes)
    j = distcc.total_jobs if distcc.client else jobs.value
    estimate, seconds = _estimate(facts, cfg, mem, j, profile, thin_jobs)
    phases = _phases(facts, cfg, mem, jobs.value, gain, zram, seconds, notes)
    packages = _packages(facts, pkgs, cfg, zram, ccache, distcc, notes)
    host = PlanHost(
        hostname=facts.hostname,
        arch=facts.arch,
        usable_cpus=cpus,
        memory_bytes=facts.memory.effective_bytes,
        distro=facts.distro.id,
        family=facts.distro.family,
        virtualization=facts.virtualization,
        zram_compressors=tuple(facts.zram.compressors),
    )
    return Plan(
        host=host,
        jobs=jobs,
        zram=zram,
        ccache=ccache,
        distcc=distcc,
        config=config,
        packages=packages,
        env=_env(config, jobs, ccache, distcc),
        warnings=tuple(notes.warnings),
        overrides=tuple(notes.overrides),
        phases=phases,
        estimate=estimate,
    )
