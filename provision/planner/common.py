"""What every decision of the planner shares: the notes collector, the config choices, the memory
model, and the small functions several decisions use (usable CPUs, the kernel version, the
target architecture, quoting).

:class:`PlanNotes` is the one object a decision may change: it collects the plan's warnings and
the goals that overrode a choice. Every other argument a decision gets (facts, goals, the earlier
decisions) stays as it was handed in; a decision returns what it decides.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import (
    HostFacts,
    KconfigFacts,
)
from provision.model.goals import Goals
from provision.model.schema import COMPILERS, DEBUG_INFO, LTO, TARGETS
from provision.rules.kconfig import HEAVY_SANITIZERS
from provision.rules.names import (
    check_kernel_arch,
    check_owned_dir,
    check_path,
    check_size_bytes,
    parse_version,
)
from provision.rules.system import check_zram_algorithm, check_zram_percent
from provision.units import MIB, human_bytes

#: The largest -l kprov passes on: far above any host's CPUs, low enough to be a typo's bound.
MAX_LOAD = 65536


def load_str(load: float) -> str:
    return f"{load:g}"


@dataclass
class PlanNotes:
    """The plan's warnings and overridden choices, collected while planning (the Plan gets them as
    tuples). This is the one collector the decisions share: a decision handed a PlanNotes adds to
    it and changes nothing else it was handed. Each note is kept once, in the order it was first
    given, so the decision order of :func:`provision.planner.plan` is the order of the warnings."""

    warnings: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def warn_all(self, texts: Iterable[str]) -> None:
        """The warnings a decision returned, in their order."""
        for text in texts:
            self.warn(text)

    def forced(self, name: str) -> None:
        if name not in self.overrides:
            self.overrides.append(name)


@dataclass(frozen=True)
class KconfigTraits:
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
class ChosenConfig:
    """The config choices that the memory model depends on, with the reason for each."""

    target: str
    target_class: str
    compiler: str
    debug_info: str
    lto: str
    reasons: Mapping[str, str]
    advice: tuple[str, ...]
    commands: tuple[str, ...]  # scripts/config arguments, without the command itself
    flags: tuple[str, ...] = ()
    sanitizers: tuple[str, ...] = ()
    objtool: bool = False
    modules: int | None = None
    version: tuple[int, ...] | None = None  # the kernel's version, when known
    source: str = "table"
    kconfig: KconfigFacts | None = None
    debug_asked: bool = False  # --debug-info named the debug info: advice never undoes it
    # option -> its Kconfig dependencies (the tree's own, else the 6.1 table), and where from
    depends: Mapping[str, str] = field(default_factory=dict)
    depends_source: str = ""

    @property
    def heavy_sanitizers(self) -> bool:
        return any(s in HEAVY_SANITIZERS for s in self.sanitizers)

    @property
    def debug_variant(self) -> str:
        for flag, variant in (("SPLIT", "split"), ("REDUCED", "reduced"), ("COMPRESSED", "compressed")):
            if flag in self.flags:
                return variant
        return ""

    def with_reason(self, name: str, more: str) -> ChosenConfig:
        """A copy whose reason ``name`` goes on with ``more`` (this one when ``more`` is empty)."""
        if not more:
            return self
        return dataclasses.replace(self, reasons={**self.reasons, name: self.reasons[name] + more})


@dataclass(frozen=True)
class SerialPhase:
    """A serial phase: its own peak (beside the build's base and modfinal jobs) and its source."""

    name: str
    peak: int
    source: str
    modfinal: bool = True  # modfinal (.mod.o compiles, .ko links) may run beside it


@dataclass(frozen=True)
class MemoryModel:
    """The compile phase needs ``base + per_job + (N - 1) x average``: one job at its p99 (the
    largest unit that may be compiling) and the others at the measured average growth per job.
    N jobs are never all at their peak together: -j20 peaked at 1.5 GiB where 20 x p99 is 3.5 GiB."""

    ram_budget: int  # bytes the build may use from RAM
    budget_reason: str
    per_job: int  # one job at its p99
    per_job_source: str
    base: int
    average: int = 0  # each further job, on average
    serial: tuple[SerialPhase, ...] = ()
    measured: bool = False  # per-job figures from a calibration profile of this tree
    headroom: int = 0  # the part of a cgroup limit held back for the page cache (not in ram_budget)
    thinlto_jobs: int = 0  # the ThinLTO backends that fit the budget (0 without ThinLTO)
    thinlto_backends: int = 0  # the ThinLTO backends the make line runs (ld.lld's default)
    recorded_jobs: int = 0  # the -j of the recorded build the figures come from (0: none)
    feedback_kind: str = ""  # what that build says of its -j: "oom", "stalls", "room" or ""
    feedback: str = ""  # ... in words

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
            return f"{human_bytes(self.base)} base + one job at {human_bytes(self.per_job)}"
        return (
            f"{human_bytes(self.base)} base + one job at its p99 {human_bytes(self.per_job)} + {jobs - 1} x "
            f"{human_bytes(self.average)} average per further job"
        )

    def serial_need(self, phase: SerialPhase, jobs: int, modules: int | None) -> int:
        """A serial phase at ``jobs``: base + its peak + the modfinal jobs that may run beside it."""
        beside = max(0, jobs - 1) if modules is None else min(max(0, jobs - 1), modules)
        extra = beside * cal.MODFINAL_JOB_MIB * MIB if phase.modfinal else 0
        return self.base + phase.peak + extra


#: When the compile phase fits fewer jobs than there are CPUs in the RAM budget alone: the one
#: wording of the jobs and the zram reasons.
MEMORY_LIMITS_J = "memory limits -j without zram"

#: How far zram is counted for a phase, in every reason that says so (docs/calibration.md §3).
ZRAM_COUNT_LIMIT = (
    f"a phase finished with at most {cal.ZRAM_RESCUE_FRACTION:.0%} of its need outside RAM (measured), so zram "
    f"is counted for at most {1 / (1 - cal.ZRAM_RESCUE_FRACTION) - 1:.0%} more than the budget"
)


def count_noun(n: int, noun: str) -> str:
    """``3 jobs``, ``1 job``; never a count below one ("not even one job")."""
    if n < 1:
        return f"not even one {noun}"
    return f"{n} {noun}{'' if n == 1 else 's'}"


#: The largest -j and builds-to-keep a plan takes, from any source (the CLI's switches have the same).
MAX_JOBS = 4096
MAX_BUILDS_TO_KEEP = 100


def check_goals(goals: Goals) -> None:
    """Refuse values no plan could honour, with one line that names the value."""
    if goals.target is not None and goals.target not in TARGETS:
        raise UserError(f"unknown config target '{goals.target}' (choose from {', '.join(TARGETS)})")
    if goals.compiler not in COMPILERS:
        raise UserError(f"unknown compiler '{goals.compiler}' (choose from {', '.join(COMPILERS)})")
    if goals.debug_info not in DEBUG_INFO:
        raise UserError(f"unknown debug info '{goals.debug_info}' (choose from {', '.join(DEBUG_INFO)})")
    if goals.lto not in LTO:
        raise UserError(f"unknown LTO mode '{goals.lto}' (choose from {', '.join(LTO)})")
    # the command line's bounds (cli.switches), for goals that come from an inventory or a role
    if goals.jobs is not None and not 1 <= goals.jobs <= MAX_JOBS:
        raise UserError(f"--jobs {goals.jobs}: must be a whole number from 1 to {MAX_JOBS}")
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
    if not 1 <= goals.builds_to_keep <= MAX_BUILDS_TO_KEEP:
        raise UserError(f"--builds-to-keep {goals.builds_to_keep}: must be a whole number from 1 to {MAX_BUILDS_TO_KEEP}")
    if goals.load is not None and not 0 < goals.load <= MAX_LOAD:
        raise UserError(f"--load {goals.load:g}: must be above 0 and at most {MAX_LOAD} (a load average)")


def cpu_story(facts: HostFacts) -> str:
    c = facts.cpu
    parts = []
    if c.cgroup_quota is not None:
        parts.append(f"cgroup CPU quota {c.cgroup_quota:g}")
    if c.affinity is not None and c.affinity != c.logical:
        parts.append(f"affinity {c.affinity}")
    detail = f" ({', '.join(parts)} of {c.logical} logical)" if parts else ""
    return f"{usable_cpus(facts)} usable CPU{'s' if usable_cpus(facts) != 1 else ''}{detail}"


def usable_cpus(facts: HostFacts) -> int:
    return max(1, int(facts.cpu.usable))


def native_arch(facts: HostFacts) -> str | None:
    """The kernel ARCH of this host's own machine (None when kprov does not know it)."""
    return cal.KERNEL_ARCH.get(facts.arch)


def target_arch(facts: HostFacts, goals: Goals) -> str | None:
    """The kernel ARCH the plan builds for: --arch, else this host's own."""
    return goals.arch or native_arch(facts)


def cross_build(facts: HostFacts, goals: Goals) -> bool:
    """Whether --arch asks for another architecture than this host's."""
    return bool(goals.arch) and goals.arch != native_arch(facts)


def _version(text: str | None) -> tuple[int, ...] | None:
    v = parse_version(text) if text else None
    return tuple(v) if v else None


def kernel_version_of(facts: HostFacts, kconfig: KconfigFacts | None) -> tuple[int, ...] | None:
    if kconfig is not None and _version(kconfig.kernel_version):
        return _version(kconfig.kernel_version)
    return _version(facts.tree.kernel_version) if facts.tree else None


def kernel_at_least(release: str, want: tuple[int, int]) -> bool | None:
    v = parse_version(release)
    return None if v is None else v[:2] >= want


def in_range(version: tuple[int, int, int] | None, bounds: tuple) -> bool:
    return version is not None and bounds[0] <= version <= bounds[1]


def quote_make(value: str) -> str:
    return shlex.quote(value)
