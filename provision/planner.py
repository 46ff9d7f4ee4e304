"""HostFacts + Goals -> Plan: every number with the reason it has.

This module is pure: it reads nothing and runs nothing (tests/test_purity.py enforces its imports),
so the CLI, the fleet planner and the role's filter plugin all get the same plan from the same
facts. Every constant comes from :mod:`provision.calibration`, which names its source.

The order of decisions follows their dependencies:

1. config choices (target, compiler, debug info, LTO): they set the memory a compile job and the
   final link need;
2. the memory model: a RAM budget, then how many jobs fit in it without zram;
3. zram: needed when memory (not CPUs) limits ``-j`` or the host is small; its planned capacity
   is counted (conservatively) in the budget;
4. ``-j`` and ``-l``; ccache; distcc (server slots, client ``DISTCC_HOSTS`` and total ``-j``);
5. the make command line, the environment ``kprov env`` exports, and the packages to install.

Why ``CC`` goes on the make command line and never in the environment: the kernel's top Makefile
assigns ``CC = $(CROSS_COMPILE)gcc`` (or clang with ``LLVM=1``), and a Makefile assignment beats an
environment variable, while a command-line variable beats both. ``kprov env`` therefore exports the
make variables as ``KPROV_MAKE_ARGS`` (use ``eval make $KPROV_MAKE_ARGS ...``) and exports only the
variables the kernel or the tools really read from the environment (``MAKEFLAGS``,
``KBUILD_BUILD_*``, ``KBUILD_OUTPUT``, ``CCACHE_*``, ``DISTCC_HOSTS``).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field

from provision import calibration as cal
from provision.errors import UserError
from provision.model import (
    COMPILERS,
    DEBUG_INFO,
    GIB,
    LTO,
    MIB,
    TARGETS,
    CcachePlan,
    ConfigPlan,
    DistccPlan,
    Goals,
    HostEntry,
    HostFacts,
    JobsPlan,
    PackageCatalog,
    PackageSet,
    Plan,
    PlanHost,
    ZramPlan,
)
from provision.validate import (
    DistccHost,
    address_in,
    is_hostname,
    parse_allow,
    parse_distcc_host,
    parse_ip,
    parse_version,
    version_below,
)

# --------------------------------------------------------------------------- formatting


def gib(n: float) -> str:
    """Bytes as GiB with one decimal (``11.2 GiB``); small figures in MiB."""
    if abs(n) < GIB:
        return f"{n / MIB:.0f} MiB"
    return f"{n / GIB:.1f} GiB"


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


@dataclass(frozen=True)
class _Memory:
    ram_budget: int  # bytes the build may use from RAM
    budget_reason: str
    per_job: int
    base: int
    link_peak: int

    def fit(self, extra: int = 0, link: bool = True) -> int:
        """Jobs that fit in the RAM budget plus ``extra`` (planned zram), maybe below 1."""
        room = self.ram_budget + extra - self.base - (self.link_peak if link else 0)
        return math.floor(room / self.per_job)

    def need(self, jobs: int, link: bool = True) -> int:
        return self.base + (self.link_peak if link else 0) + jobs * self.per_job


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
    if goals.zram_percent is not None and not (
        cal.ZRAM_MIN_PERCENT <= goals.zram_percent <= cal.ZRAM_MAX_PERCENT
    ):
        raise UserError(
            f"--zram-percent {goals.zram_percent}: must be within "
            f"{cal.ZRAM_MIN_PERCENT}..{cal.ZRAM_MAX_PERCENT} (a device over 2 x RAM is pointless)"
        )
    if goals.ccache_size_bytes is not None and goals.ccache_size_bytes <= 0:
        raise UserError(f"--ccache-size {goals.ccache_size_bytes}: must be larger than zero")
    if goals.builds_to_keep < 1:
        raise UserError(f"--builds-to-keep {goals.builds_to_keep}: must be at least 1")


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


def _choose_target(facts: HostFacts, goals: Goals, reasons: dict, advice: list) -> str:
    tree = facts.tree
    if goals.target:
        reasons["target"] = f"{goals.target}: as asked"
        return goals.target
    if tree and tree.has_config:
        reasons["target"] = (
            "olddefconfig: the tree has a .config; olddefconfig keeps it and answers new options "
            "with their defaults"
        )
        return "olddefconfig"
    if goals.for_this_machine and not facts.in_container:
        reasons["target"] = (
            "localmodconfig: the kernel is for this machine, so keep only the modules it has loaded "
            "(about 10-20 min on 8 cores instead of 30-60 for a whole distro config)"
        )
        return "localmodconfig"
    why = (
        "a container sees its host's loaded modules, so localmodconfig would trim for the wrong machine"
        if goals.for_this_machine
        else "the kernel is for another machine, whose modules this host cannot see"
    )
    reasons["target"] = f"defconfig: {why}; defconfig is the architecture's tested baseline"
    advice.append("for a quick compile test use --target tinyconfig (about 30 s of CPU)")
    return "defconfig"


def _target_class(target: str, facts: HostFacts) -> str:
    klass = cal.TARGET_CLASS[target]
    tree = facts.tree
    if target == "olddefconfig" and tree and tree.modules >= cal.DISTRO_CONFIG_MIN_MODULES:
        return "distro"
    return klass


def _target_debug(target: str, facts: HostFacts) -> tuple[str, str]:
    """Debug info the target itself produces, and why (before any change kprov makes)."""
    tree = facts.tree
    if target == "olddefconfig" and tree and tree.has_config:
        found = _config_debug(tree.config)
        return found, f"the tree's .config has debug info {found}"
    if target == "localmodconfig":
        if tree and tree.has_config:
            found = _config_debug(tree.config)
            return found, f"the tree's .config has debug info {found}"
        return "btf", "localmodconfig starts from the running distro kernel's config, which enables DWARF and BTF"
    if cal.TARGET_CLASS[target] == "all":
        return "dwarf", f"{target} selects COMPILE_TEST, whose debug-info default is DWARF"
    return "none", f"{target} leaves debug info off"


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


def _memory(facts: HostFacts, klass: str, compiler: str, debug_info: str, lto: str, cpus: int) -> tuple[_Memory, int]:
    """RAM budget and per-job/link figures; returns (memory model, ThinLTO jobs or 0)."""
    m = facts.memory
    effective = m.effective_bytes
    reserve = min(max(effective * cal.OS_RESERVE_FRACTION, cal.OS_RESERVE_MIN_MIB * MIB), cal.OS_RESERVE_MAX_MIB * MIB)
    limited = bool(m.cgroup_limit_bytes and m.cgroup_limit_bytes < m.total_bytes)
    budget = effective - reserve
    if limited:
        why = f"{gib(budget)} budget: cgroup memory limit {gib(effective)} - {gib(reserve)} reserve"
    elif 0 < m.available_bytes < budget:
        budget = m.available_bytes
        why = f"{gib(budget)} budget: MemAvailable (RAM {gib(effective)}, other programs use the rest)"
    else:
        why = f"{gib(budget)} budget: RAM {gib(effective)} - {gib(reserve)} reserve for the system"
    budget = max(0, int(budget))
    per_job = int(cal.per_job_mib(klass, compiler, debug_info) * MIB)
    base = cal.BUILD_BASE_MIB * MIB
    link = cal.link_peak_mib(klass, debug_info) * MIB
    thin_jobs = 0
    if lto == "full":
        link = max(link, cal.LTO_FULL_LINK_MIB[klass] * MIB)
    elif lto == "thin":
        room = budget - base - cal.THINLTO_BASE_MIB * MIB
        thin_jobs = max(1, min(cpus, math.floor(room / (cal.THINLTO_PER_BACKEND_MIB * MIB))))
        link = max(link, (cal.THINLTO_BASE_MIB + thin_jobs * cal.THINLTO_PER_BACKEND_MIB) * MIB)
    return _Memory(budget, why, per_job, base, int(link)), thin_jobs


def _short_for_debug(facts: HostFacts, klass: str, compiler: str, cpus: int) -> str | None:
    """Why debug info does not fit this host (RAM or disk), or None when it does."""
    with_dbg, _ = _memory(facts, klass, compiler, "dwarf", "none", cpus)
    without, _ = _memory(facts, klass, compiler, "none", "none", cpus)
    if with_dbg.fit() < 1:
        return f"its link needs ~{gib(with_dbg.link_peak)} and the budget is {gib(with_dbg.ram_budget)}"
    if with_dbg.fit() < min(cpus, without.fit()):
        return (
            f"RAM: debug info would cut -j from {min(cpus, without.fit())} to {max(1, with_dbg.fit())} "
            f"({gib(with_dbg.per_job)} per job, {gib(with_dbg.link_peak)} link)"
        )
    disk = facts.disk("build")
    need = cal.build_output_gib(klass, "dwarf") * GIB
    if disk and disk.free_bytes < need:
        return f"disk: the build output with debug info is ~{gib(need)} and {disk.mount} has {gib(disk.free_bytes)} free"
    return None


def _choose_config(facts: HostFacts, goals: Goals, notes: _Notes) -> _Config:
    reasons: dict[str, str] = {}
    advice: list[str] = []
    commands: list[str] = []
    cpus = _usable(facts)
    target = _choose_target(facts, goals, reasons, advice)
    if goals.target:
        notes.forced("target")
    klass = _target_class(target, facts)
    tree_config = facts.tree.config if facts.tree else {}

    # LTO first: it decides the compiler when the compiler is left to kprov.
    keeps_config = target in ("olddefconfig", "localmodconfig")
    if goals.lto == "auto":
        lto = "none"
        reasons["lto"] = "none: LTO adds a long, memory-hungry serial link and needs clang; ask for it with --lto"
        if keeps_config and _config_lto(tree_config) != "none":
            commands += ["--disable LTO_CLANG_THIN", "--disable LTO_CLANG_FULL", "--enable LTO_NONE"]
            reasons["lto"] += f" (the .config had {_config_lto(tree_config)} LTO: switched off)"
    else:
        lto = goals.lto
        notes.forced("lto")
        reasons["lto"] = f"{lto}: as asked"
        if lto == "thin":
            commands += ["--disable LTO_NONE", "--enable LTO_CLANG_THIN"]
        elif lto == "full":
            commands += ["--disable LTO_NONE", "--enable LTO_CLANG_FULL"]
        else:
            commands += ["--disable LTO_CLANG_THIN", "--disable LTO_CLANG_FULL", "--enable LTO_NONE"]

    compiler = _choose_compiler(facts, goals, lto, notes, reasons)

    produced, produced_why = _target_debug(target, facts)
    if goals.debug_info == "auto":
        short = _short_for_debug(facts, klass, compiler, cpus) if produced != "none" else None
        if short:
            debug = "none"
            reasons["debug_info"] = f"none: {produced_why}, but this host is short of it ({short})"
        else:
            debug = produced
            reasons["debug_info"] = f"{debug}: {produced_why}" + (", and it fits this host" if debug != "none" else "")
    else:
        debug = goals.debug_info
        notes.forced("debug_info")
        reasons["debug_info"] = f"{debug}: as asked"
        if debug != "none":
            short = _short_for_debug(facts, klass, compiler, cpus)
            if short:
                notes.warn(f"debug info {debug} was asked for, but this host is short of it ({short})")
    if debug != produced:
        if debug == "none":
            commands += [f"--disable {o}" for o in cal.DEBUG_INFO_OFF_OPTIONS] + ["--enable DEBUG_INFO_NONE"]
        else:
            commands += ["--disable DEBUG_INFO_NONE", "--enable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT"]
            commands += ["--enable DEBUG_INFO_BTF"] if debug == "btf" else ["--disable DEBUG_INFO_BTF"]

    memory, thin_jobs = _memory(facts, klass, compiler, debug, lto, cpus)
    if lto != "none":
        extra = ""
        if lto == "thin":
            extra = (
                f"; ld.lld runs one ThinLTO backend per CPU (~{cal.THINLTO_PER_BACKEND_MIB} MiB each): "
                f"{thin_jobs} fit here, so if the link runs out of memory add --thinlto-jobs={thin_jobs} "
                "to the linker flags"
            )
        reasons["lto"] += f" (link peak ~{gib(memory.link_peak)}{extra})"
        if memory.ram_budget < memory.base + memory.link_peak:
            notes.warn(
                f"{lto} LTO link needs ~{gib(memory.link_peak)} but this host budgets {gib(memory.ram_budget)} "
                "for the build: expect heavy swapping or a failed link"
            )

    # Distro certificates: the .config names key files that are not in the source tree.
    uses_distro_config = keeps_config and (
        any(tree_config.get(o) not in (None, "", "n") for o in cal.TRUSTED_KEY_OPTIONS)
        or (target == "localmodconfig" and not (facts.tree and facts.tree.has_config) and facts.distro.family == "debian")
    )
    if uses_distro_config:
        commands += [f"--set-str {o} ''" for o in cal.TRUSTED_KEY_OPTIONS]
        reasons["trusted_keys"] = (
            "the .config comes from a distro kernel whose certificate files are not in the source tree: "
            "empty SYSTEM_TRUSTED_KEYS/SYSTEM_REVOCATION_KEYS, else the build stops in certs/"
        )

    if klass == "all":
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
        thinlto_jobs=thin_jobs,
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
    return sysctls, why


def _pick_algorithm(offered: tuple[str, ...], mode: str) -> str:
    for name in cal.ZRAM_PREFERENCE[mode]:
        if name in offered:
            return name
    return offered[0]


def _plan_zram(
    facts: HostFacts, goals: Goals, pkgs: PackageSet | None, mem: _Memory, cpus: int, notes: _Notes
) -> tuple[ZramPlan, int]:
    """Decide zram; returns the plan and the bytes of build memory it may be counted for."""
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
        reason = (
            f"on: an active zram swap ({', '.join(existing)}) already exists; kprov leaves it as it is"
        )
        notes.warn(f"zram swap {', '.join(existing)} is already active: kprov leaves the existing device alone")
    elif goals.zram:
        reason = "on: overridden (--zram)"
        if facts.in_container:
            notes.warn("zram was forced on in a container: the config is written, but only the host's kernel can activate swap")
    elif facts.in_container:
        return off("off: a container cannot create zram devices; swap belongs to the host's kernel")
    elif memory_limits:
        reason = (
            f"on: memory limits -j ({mem.fit()} jobs fit in {gib(mem.ram_budget)} for {cpus} CPUs); "
            "zram turns a build that would livelock under memory pressure into one that finishes"
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
            f"(room for {mem.fit()}); zram is a safety net this host does not need"
        )

    reasons: dict[str, str] = {}
    mode = "capacity" if memory_limits else "speed"
    if goals.zram_algorithm:
        algorithm = goals.zram_algorithm
        reasons["algorithm"] = f"{algorithm}: as asked (offered: {', '.join(offered)})"
    elif existing and z.active in offered:
        algorithm = z.active
        reasons["algorithm"] = f"{algorithm}: the existing device's compressor"
    else:
        algorithm = _pick_algorithm(offered, mode)
        why = (
            "stores the most per byte of RAM" if mode == "capacity" else "the fastest of them"
        )
        reasons["algorithm"] = (
            f"{algorithm}: of the offered {', '.join(offered)}, {why} (memory is "
            f"{'the limit' if memory_limits else 'not the limit'}); expected ratio {cal.zram_ratio(algorithm):g}:1"
        )
    ratio = cal.zram_ratio(algorithm)
    keep = 1 - 1 / ratio  # each byte stored in zram frees this much RAM
    rescue = int(cal.ZRAM_RESCUE_FRACTION * mem.ram_budget)
    if goals.zram_percent is not None:
        percent = goals.zram_percent
        reasons["percent"] = f"{percent}%: as asked"
    elif existing and facts.memory.zram_swap_bytes:
        percent = min(cal.ZRAM_MAX_PERCENT, max(cal.ZRAM_MIN_PERCENT, round(facts.memory.zram_swap_bytes * 100 / total)))
        reasons["percent"] = f"{percent}%: the size of the existing device"
    else:
        # Sized to hold the whole shortfall of -j <usable CPUs> (a safety net for whoever runs more
        # jobs than planned, and for the link); only part of it is counted for -j (rescue cap).
        shortfall = max(0, mem.need(cpus) - mem.ram_budget)
        needed = math.ceil(shortfall / keep * 100 / total) if shortfall else 0
        percent = min(cal.ZRAM_MAX_PERCENT, max(cal.ZRAM_DEFAULT_PERCENT, needed, cal.ZRAM_MIN_PERCENT))
        if shortfall:
            reasons["percent"] = (
                f"{percent}%: {cpus} jobs would be {gib(shortfall)} short; at {ratio:g}:1 a device of "
                f"{gib(shortfall / keep)} frees that much; at least the {cal.ZRAM_DEFAULT_PERCENT}% default, "
                f"at most {cal.ZRAM_MAX_PERCENT}% (2 x RAM)"
            )
        else:
            reasons["percent"] = (
                f"{percent}%: the common default (zram-generator 0.5 x RAM); memory does not limit -j here"
            )
    size = total * percent // 100
    gain = 0 if facts.in_container else min(int(size * keep), rescue)
    reasons["capacity"] = (
        f"a {gib(size)} device at {ratio:g}:1 frees up to {gib(size * keep)} of RAM; the plan counts "
        f"{gib(gain)} of it for -j (at most {cal.ZRAM_RESCUE_FRACTION:.0%} of the budget: measured)"
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


def _plan_jobs(facts: HostFacts, goals: Goals, cfg: _Config, mem: _Memory, gain: int, notes: _Notes) -> JobsPlan:
    cpus = _usable(facts)
    fit = mem.fit(gain)
    auto = max(1, min(cpus, fit))
    what = f"{cfg.target} with {cfg.compiler}" + (f", debug info {cfg.debug_info}" if cfg.debug_info != "none" else "")
    zram_part = f" + {gib(gain)} counted from zram" if gain else ""
    arithmetic = (
        f"{gib(mem.ram_budget)}{zram_part} - {gib(mem.base)} base - {gib(mem.link_peak)} link peak "
        f"= room for {max(fit, 0)} jobs of {gib(mem.per_job)} ({what})"
    )
    load = float(cpus)
    load_why = f"; -l {_load_str(load)}: no new job while the load average is above the usable CPUs"
    common = dict(load=load, per_job_bytes=mem.per_job, budget_bytes=mem.ram_budget + gain, link_peak_bytes=mem.link_peak)
    if fit < 1:
        notes.warn(
            f"even one job does not fit: {arithmetic}; the build will swap heavily or livelock "
            "(drop debug info or LTO, or use a bigger host)"
        )
    if goals.jobs is not None:
        notes.forced("jobs")
        if goals.jobs > cpus:
            notes.warn(
                f"--jobs {goals.jobs} exceeds the {cpus} usable CPUs: oversubscribing cost 3-25% in measurements"
            )
        if goals.jobs > max(fit, 1):
            notes.warn(f"--jobs {goals.jobs} exceeds what memory holds ({max(fit, 0)} jobs: {arithmetic})")
        return JobsPlan(
            value=goals.jobs,
            reason=f"jobs={goals.jobs}: overridden (kprov would pick {auto}: {_cpu_story(facts)}; {arithmetic})" + load_why,
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
            f"memory is not the limit: {arithmetic}"
        )
        limited = "cpus"
    return JobsPlan(value=auto, reason=reason + load_why, limited_by=limited, **common)


# --------------------------------------------------------------------------- ccache


def _in_range(version: tuple[int, int, int] | None, bounds: tuple) -> bool:
    return version is not None and bounds[0] <= version <= bounds[1]


def _plan_ccache(
    facts: HostFacts, goals: Goals, cfg: _Config, pkgs: PackageSet | None, notes: _Notes
) -> CcachePlan:
    installed = facts.toolchain.get("ccache")
    installable = bool(pkgs and pkgs.ccache)
    version = parse_version(installed)
    broken = _in_range(version, cal.CCACHE_BROKEN_VERSIONS)
    directory = goals.ccache_dir or (facts.disk("ccache").path if facts.disk("ccache") else CcachePlan.dir)
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
        return CcachePlan(enabled=False, reason=reason, dir=directory, overridden=tuple(overridden))

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
    footprint = cal.ccache_footprint_mib(cfg.target_class, cfg.debug_info) * MIB
    wanted = max(int(footprint * goals.builds_to_keep * cal.CCACHE_HEADROOM), cal.CCACHE_MIN_BYTES)
    disk = facts.disk("ccache")
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
            f"builds to keep x {cal.CCACHE_HEADROOM:g} headroom, at least {gib(cal.CCACHE_MIN_BYTES)}"
        )
        if share is not None and wanted > share:
            size = share
            reasons["max_size"] = f"{gib(size)}: capped at {where} ({story} = {gib(wanted)})"
            if share < cal.CCACHE_MIN_BYTES:
                notes.warn(f"little disk for ccache: {where} is {gib(share)}, below the useful {gib(cal.CCACHE_MIN_BYTES)}")
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
    if goals.ccache_shared:
        hash_dir = False
        if facts.tree:
            base_dir = facts.tree.path.rstrip("/").rsplit("/", 1)[0] or "/"
        elif goals.build_dir:
            base_dir = goals.build_dir.rstrip("/").rsplit("/", 1)[0] or "/"
        elif facts.disk("home"):
            base_dir = facts.disk("home").path
        reasons["sharing"] = (
            f"shared cache: hash_dir false (the build directory is not hashed) and base_dir {base_dir} "
            "(paths below it are hashed relative); build in the same absolute path on every machine"
        )
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
    )


# --------------------------------------------------------------------------- distcc


def _host_entries(goals: Goals) -> tuple[HostEntry, ...]:
    entries = []
    for e in goals.host_entries:
        address = parse_ip(e.address, "host entry address")
        if not e.names:
            raise UserError(f"host entry {e.address}: needs at least one name")
        for name in e.names:
            if not is_hostname(name):
                raise UserError(f"host entry {e.address}: '{name}' is not a valid host name (RFC 1123)")
        entries.append(HostEntry(address=address, names=tuple(e.names)))
    return tuple(entries)


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
        if goals.listen:
            listen = parse_ip(goals.listen, "--listen")
            reasons["listen"] = f"{listen}: as asked"
        elif facts.default_ipv4 and address_in(facts.default_ipv4, allow):
            listen = facts.default_ipv4
            reasons["listen"] = f"{listen}: this host's default-route address, inside the allowed networks"
        else:
            listen = "127.0.0.1"
            reasons["listen"] = (
                "127.0.0.1: the host's address is unknown or outside the allowed networks, so distccd binds "
                "only to loopback; give --listen ADDRESS for the farm network"
            )
            if not address_in(listen, allow):
                notes.warn("distccd listens on 127.0.0.1 only: no allowed client can reach it (give --listen)")
        mem_slots = mem.fit(gain, link=False)
        server_jobs = max(1, min(cpus + cal.DISTCCD_EXTRA_JOBS, mem_slots))
        limit = "memory" if mem_slots < cpus + cal.DISTCCD_EXTRA_JOBS else "CPUs"
        reasons["server_jobs"] = (
            f"{server_jobs}: distccd's default of usable CPUs + {cal.DISTCCD_EXTRA_JOBS} ({cpus} + "
            f"{cal.DISTCCD_EXTRA_JOBS}), bounded by memory ({max(mem_slots, 0)} jobs of {gib(mem.per_job)}); "
            f"limited by {limit}"
        )

    hosts: tuple[str, ...] = ()
    total = 0
    if client:
        parsed: list[DistccHost] = []
        seen: set[tuple[str, int | None]] = set()
        for spec in goals.distcc_hosts:
            h = parse_distcc_host(spec, cal.DISTCC_MAX_LIMIT)
            if (h.host, h.port) in seen:
                raise UserError(f"--distcc-hosts '{spec}': {h.host} is listed twice")
            seen.add((h.host, h.port))
            if "cpp" in h.options and ccache.enabled:
                raise UserError(
                    f"--distcc-hosts '{spec}': pump mode (',cpp') does not work with ccache; drop ',cpp' or use --no-ccache"
                )
            parsed.append(h)
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
        room = mem.ram_budget + gain - mem.base - mem.link_peak - local * mem.per_job
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
            caps.append(f"capped by client memory ({mem_remote} jobs of ~{cal.DISTCC_CLIENT_JOB_MIB} MiB in flight)")
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
    )
    return plan, tuple(commands)


# --------------------------------------------------------------------------- make command and env


def _native_arch(facts: HostFacts) -> str | None:
    return cal.KERNEL_ARCH.get(facts.arch)


def _target_arch(facts: HostFacts, goals: Goals) -> str | None:
    return goals.arch or _native_arch(facts)


def _build_dir(facts: HostFacts, goals: Goals, cfg: _Config, notes: _Notes, reasons: dict) -> str | None:
    """O= on the filesystem with the most room among the tree's and the home directory's."""
    need = cal.build_output_gib(cfg.target_class, cfg.debug_info) * GIB
    if goals.build_dir:
        reasons["build_dir"] = f"{goals.build_dir}: as asked"
        chosen_disk = facts.disk("build")
        path = goals.build_dir
    else:
        build, home = facts.disk("build"), facts.disk("home")
        candidates = [d for d in (home, build) if d is not None]
        if not candidates:
            reasons["build_dir"] = "in the tree: no disk facts to choose from"
            return None
        best = max(candidates, key=lambda d: d.free_bytes)
        tree = facts.tree
        # Same filesystem: beside the tree when there is one, else under the home directory.
        preferred = build if tree else home
        if preferred is not None and best.mount == preferred.mount:
            best = preferred
        if tree and best is build:
            path = f"{tree.path.rstrip('/')}-build"
        elif tree:
            path = f"{best.path.rstrip('/')}/kbuild/{tree.path.rstrip('/').rsplit('/', 1)[-1]}"
        else:
            path = f"{best.path.rstrip('/')}/kbuild"
        others = [d for d in candidates if d.mount != best.mount]
        vs = f" (vs {', '.join(f'{gib(d.free_bytes)} on {d.mount}' for d in others)})" if others else ""
        reasons["build_dir"] = (
            f"{path}: out of tree (O=) on {best.mount}, the filesystem with the most room: "
            f"{gib(best.free_bytes)} free{vs}; this build needs ~{gib(need)}"
        )
        chosen_disk = best
    if chosen_disk is not None and chosen_disk.free_bytes < need:
        notes.warn(
            f"not enough disk for {cfg.target}: its build output is ~{gib(need)} and {chosen_disk.mount} has "
            f"{gib(chosen_disk.free_bytes)} free"
        )
    return path


def _cc_value(compiler: str, cross: str, ccache: bool, distcc_client: bool) -> str | None:
    name = compiler if compiler == "clang" else f"{cross}gcc"
    if ccache:
        return f"ccache {name}"
    if distcc_client:
        return f"distcc {name}"
    return None


def _quote(value: str) -> str:
    return shlex.quote(value)


def _make_vars(facts: HostFacts, goals: Goals, cfg: _Config, build_dir: str | None, ccache: bool, client: bool, notes: _Notes, reasons: dict) -> dict[str, str]:
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
    cc = _cc_value(cfg.compiler, cross, ccache, client)
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
    notes: _Notes,
) -> ConfigPlan:
    reasons = dict(cfg.reasons)
    build_dir = _build_dir(facts, goals, cfg, notes, reasons)
    make_vars = _make_vars(facts, goals, cfg, build_dir, ccache.enabled, distcc.client, notes, reasons)
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
    minutes = cal.build_cpu_seconds(cfg.target_class, cfg.compiler, cfg.debug_info) / max(1, j) / 60
    advice.append(
        f"{cfg.target} takes roughly {minutes:.0f} min at -j{j} on cores like the reference machine "
        f"({cal.build_cpu_seconds(cfg.target_class, cfg.compiler, cfg.debug_info) / 60:.0f} CPU-minutes)"
    )
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
    )


def _env(cfg: ConfigPlan, jobs: JobsPlan, ccache: CcachePlan, distcc: DistccPlan) -> dict[str, str]:
    """What ``kprov env`` exports. ``KPROV_MAKE_ARGS`` holds the make variables (use it with eval)."""
    j = distcc.total_jobs if distcc.client else jobs.value
    env = {"MAKEFLAGS": f"-j{j} -l{_load_str(jobs.load)}"}
    env.update(cfg.kbuild_env)
    if cfg.build_dir:
        env["KBUILD_OUTPUT"] = cfg.build_dir
    if ccache.enabled:
        env["CCACHE_DIR"] = ccache.dir
        if not ccache.hash_dir:
            env["CCACHE_NOHASHDIR"] = "true"
        if ccache.base_dir:
            env["CCACHE_BASEDIR"] = ccache.base_dir
    if distcc.client:
        if ccache.enabled:
            env["CCACHE_PREFIX"] = "distcc"
        env["DISTCC_HOSTS"] = " ".join(distcc.hosts)
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
    if distcc.enabled:
        names += pkgs.distcc
    if cfg.compiler == "clang":
        names += pkgs.clang
    return tuple(dict.fromkeys(names))


# --------------------------------------------------------------------------- entry point


def plan(facts: HostFacts, goals: Goals, catalog: PackageCatalog) -> Plan:
    """Plan a kernel build host. Raises UserError for goals no plan can honour."""
    _check_goals(goals)
    notes = _Notes()
    pkgs = catalog.for_family(facts.distro.family)
    cpus = _usable(facts)
    cfg = _choose_config(facts, goals, notes)
    _check_versions(facts, cfg.compiler, cfg.debug_info, notes)
    mem, _ = _memory(facts, cfg.target_class, cfg.compiler, cfg.debug_info, cfg.lto, cpus)
    zram, gain = _plan_zram(facts, goals, pkgs, mem, cpus, notes)
    jobs = _plan_jobs(facts, goals, cfg, mem, gain, notes)
    ccache = _plan_ccache(facts, goals, cfg, pkgs, notes)
    distcc, extra = _plan_distcc(facts, goals, cfg, mem, gain, jobs, ccache, notes)
    config = _finish_config(facts, goals, cfg, jobs, ccache, distcc, extra, notes)
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
    )
