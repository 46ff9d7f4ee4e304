"""The build phases and the time estimate.

:func:`plan_phases` gives each phase (the parallel compile, then each serial phase of the memory
model) its peak at the planned ``-j`` and says whether it fits the RAM budget, the budget plus
counted zram and free swap, or neither; a phase that does not fit gets a warning with what would
make it fit (more swap or zram, a lighter debug-info variant). :func:`plan_estimate` gives the
wall time: make prepare, the compile phase's CPU-seconds over the jobs, then the serial tail,
from this tree's calibration profile when there is one, else from the table figures. They return
the model's :class:`PhasePlan` tuple and :class:`EstimatePlan` (with the seconds per phase).
"""

from __future__ import annotations

from provision import calibration as cal
from provision.model.facts import (
    CalibrationProfile,
    HostFacts,
)
from provision.model.plan import (
    EstimatePlan,
    PhasePlan,
    ZramPlan,
)
from provision.planner.common import ZRAM_COUNT_LIMIT, ChosenConfig, MemoryModel, PlanNotes, SerialPhase
from provision.planner.memory import THINLTO_LIMIT, NO_CGROUP_SWAP, cgroup_may_not_swap, disk_swap, estimate_tag, users_zram
from provision.planner.zram import CONTAINER_ADVICE, CONTAINER_NO_ZRAM
from provision.planner.recorded import measured_by
from provision.rules.kconfig import depends_hold
from provision.units import MIB, human_bytes


_VARIANTS = (("DEBUG_INFO_REDUCED", "reduced"), ("DEBUG_INFO_SPLIT", "split"), ("DEBUG_INFO_COMPRESSED", "compressed"))


def _kconfig_known(cfg: ChosenConfig) -> dict[str, bool]:
    """The options the planned .config sets (True) or not (False), as far as the plan knows them."""
    known = {k: v in ("y", "m") for k, v in (cfg.kconfig.config.items() if cfg.kconfig is not None else ())}
    known["DEBUG_INFO"] = cfg.debug_info != "none"
    known["DEBUG_INFO_BTF"] = cfg.debug_info == "btf"
    for flag in ("REDUCED", "SPLIT", "COMPRESSED", "DWARF4", "DWARF5"):
        known[f"DEBUG_INFO_{flag}"] = flag in cfg.flags
    if cfg.modules is not None:
        known.setdefault("MODULES", cfg.modules > 0)
    return known


def kconfig_conflict(cfg: ChosenConfig, option: str) -> tuple[str, bool]:
    """Why Kconfig would not keep ``option`` set beside the plan's goals ("" when it would): its
    own dependencies fail, or (the second value True) it turns off an option the planned .config
    has (DEBUG_INFO_BTF), and then the reason names that option and its dependency."""
    known = _kconfig_known(cfg)
    after = {**known, option: True}
    own = cfg.depends.get(option)
    if own and depends_hold(own, after) is False:
        return f"Kconfig refuses {option}: it depends on {own} ({cfg.depends_source})", False
    for wanted, expr in cfg.depends.items():
        if wanted != option and known.get(wanted) and depends_hold(expr, after) is False:
            why = f"--debug-info {cfg.debug_info}, as asked" if cfg.debug_asked and wanted == "DEBUG_INFO_BTF" else "in the planned config"
            return f"{wanted} ({why}) depends on {expr} ({cfg.depends_source})", True
    return "", False


def _debug_advice(cfg: ChosenConfig, phase: SerialPhase, room: int) -> tuple[list[str], list[str]]:
    """Config changes that shrink a debug-info serial phase, with the peak each would give, and
    why the others are not advised: every change is checked against Kconfig's dependencies and
    none undoes what was asked for."""
    if cfg.debug_info == "none" or phase.name not in ("vmlinux link", "BTF (pahole)"):
        return [], []
    factor = cal.BTF_PEAK_FACTOR if phase.name == "BTF (pahole)" else 1.0
    options, left = [], []
    conflicts: dict[tuple[str, bool], list[str]] = {}
    for option, variant in _VARIANTS:
        if option[len("DEBUG_INFO_"):] in cfg.flags:
            continue  # already set
        peak = int(cal.link_peak_mib(cfg.target_class, "dwarf", variant) * factor * MIB)
        if peak >= phase.peak:
            continue  # it would not make the phase smaller
        conflict = kconfig_conflict(cfg, option)
        if conflict[0]:
            conflicts.setdefault(conflict, []).append(option)
            continue
        options.append(f"{option} (~{human_bytes(peak)}: {'fits' if peak <= room else 'still short'})")
    for (why, turns_off), names in conflicts.items():
        either = " or ".join(names)
        left.append(f"not {either}: {why}" + (f": {either} would turn it off" if turns_off else ""))
    none_peak = cal.link_peak_mib(cfg.target_class, "none") * MIB
    if cfg.debug_asked:
        left.append(f"not --debug-info none: --debug-info {cfg.debug_info} was asked for")
    else:
        options.append(f"--debug-info none (~{human_bytes(none_peak)}: {'fits' if none_peak <= room else 'still short'})")
    return options, left


def serial_swap(facts: HostFacts, gain: int, zram: ZramPlan) -> int:
    """Free swap a serial phase may lean on besides the counted zram ``gain``."""
    swap = disk_swap(facts)
    if not zram.enabled and gain and users_zram(facts):
        # the user's own active zram is in ``gain`` already (counted at its compression ratio):
        # its bytes are not free disk swap as well (each swap device counts once)
        swap = max(0, swap - facts.memory.zram_swap_bytes)
    return swap


def compile_seconds(facts: HostFacts, cfg: ChosenConfig, jobs: int, profile: CalibrationProfile | None,
                    distributed: bool = False) -> tuple[float, float, float]:
    """The compile phase at ``jobs``: (its seconds, its CPU-seconds, the CPUs that run the jobs).
    Jobs beyond the CPUs the build may use (a CPU quota of 2.5, a forced -j over the CPU count) wait
    for a CPU: they make the compile phase no faster (with distcc the servers' CPUs run them)."""
    if profile is not None and profile.cpu_seconds_total:
        cpu = profile.cpu_seconds_total
    else:  # no profile, or a recorded build of a few targets: its CPU is not the whole build's
        cpu = cal.build_cpu_seconds(cfg.target_class, cfg.compiler, cfg.debug_info, cfg.heavy_sanitizers)
    capacity = float(jobs) if distributed else (facts.cpu.cgroup_quota or facts.cpu.usable)
    running = min(float(jobs), capacity)
    return cpu / (running * cal.PARALLEL_EFFICIENCY), cpu, running


def _serial_needs(cfg: ChosenConfig, mem: MemoryModel, jobs: int) -> list[tuple[SerialPhase, int]]:
    return [(phase, mem.serial_need(phase, jobs, cfg.modules)) for phase in mem.serial]


def lower_jobs_fit(cfg: ChosenConfig, mem: MemoryModel, jobs: int, room: int) -> int | None:
    """The largest -j below ``jobs`` at which every serial phase fits ``room`` (None: none does)."""
    for lower in range(jobs - 1, 0, -1):
        if all(need <= room for _phase, need in _serial_needs(cfg, mem, lower)):
            return lower
    return None


def serial_jobs(
    facts: HostFacts, cfg: ChosenConfig, mem: MemoryModel, jobs: int, gain: int, zram: ZramPlan,
    profile: CalibrationProfile | None,
) -> tuple[int, str]:
    """Weigh a lower -j against zram for the serial phases that run beside modfinal jobs (the
    vmlinux link, BTF: up to -j minus 1 of them), by the time each costs. Returns the -j and
    what was weighed ("" when no serial phase needs either)."""
    budget = mem.ram_budget
    room = budget + gain + serial_swap(facts, gain, zram)
    needs = _serial_needs(cfg, mem, jobs)
    short = [(phase, need) for phase, need in needs if need > room]
    if short:
        phase, need = max(short, key=lambda pn: pn[1] - room)
        lower = lower_jobs_fit(cfg, mem, jobs, room)
        if lower is None:
            return jobs, ""  # no -j makes it fit: plan_phases warns with what would
        slower = _slower(facts, cfg, profile, lower, jobs)
        lower_need = max(n for _p, n in _serial_needs(cfg, mem, lower))
        if not zram.enabled:
            held = f"zram cannot hold the rest ({zram.reason})"
        else:
            held = (
                f"more zram would not be counted for it ({ZRAM_COUNT_LIMIT}), so the build would fail or "
                "livelock at the link"
            )
        return lower, (
            f"-j{lower}, not {jobs}: at -j{jobs} the {phase.name} with the modfinal jobs beside it needs ~{human_bytes(need)}, "
            f"{human_bytes(need - room)} more than the {human_bytes(budget)} budget, zram and swap hold "
            f"({human_bytes(room)}); {held}. At -j{lower} it needs ~{human_bytes(lower_need)} and fits, for ~{slower / 60:.0f} min "
            f"more compile time (estimate)"
        )
    leaning = [(phase, need) for phase, need in needs if budget < need and phase.modfinal]
    if not leaning:
        return jobs, ""
    phase, need = max(leaning, key=lambda pn: pn[1])
    lower = lower_jobs_fit(cfg, mem, jobs, budget)
    if lower is None:
        return jobs, ""
    slower = _slower(facts, cfg, profile, lower, jobs)
    swapping = _link_seconds(cfg, profile) * (cal.ZRAM_HELD_SLOWDOWN - 1)
    if swapping < slower:
        return jobs, (
            f"-j{jobs} over -j{lower}: the {phase.name} leans on zram and swap at -j{jobs} (~{human_bytes(need)}, "
            f"over the {human_bytes(budget)} budget), ~{swapping:.0f} s slower at {cal.ZRAM_HELD_SLOWDOWN:g}x (measured); "
            f"-j{lower} would fit it in RAM but cost ~{slower / 60:.0f} min more compile time (estimates)"
        )
    return lower, (
        f"-j{lower}, not {jobs}: at -j{jobs} the {phase.name} leans on zram and swap (~{human_bytes(need)}, over the "
        f"{human_bytes(budget)} budget), ~{swapping:.0f} s slower at {cal.ZRAM_HELD_SLOWDOWN:g}x (measured); -j{lower} fits "
        f"it in RAM for ~{slower:.0f} s more compile time (estimates)"
    )


def _slower(facts: HostFacts, cfg: ChosenConfig, profile: CalibrationProfile | None, lower: int, jobs: int) -> float:
    """The compile time -j``lower`` costs more than -j``jobs``."""
    return compile_seconds(facts, cfg, lower, profile)[0] - compile_seconds(facts, cfg, jobs, profile)[0]


def _link_seconds(cfg: ChosenConfig, profile: CalibrationProfile | None) -> float:
    """The vmlinux step's time: measured on this tree, else the table's."""
    if profile is not None and profile.link.measured:
        return profile.link.seconds
    return cal.LINK_SECONDS[cfg.target_class] * (cal.LINK_DEBUG_TIME_FACTOR if cfg.debug_info != "none" else 1.0)


def plan_phases(
    facts: HostFacts,
    cfg: ChosenConfig,
    mem: MemoryModel,
    jobs: int,
    gain: int,
    zram: ZramPlan,
    seconds: dict[str, float],
    notes: PlanNotes,
) -> tuple[PhasePlan, ...]:
    """Each phase's peak at the planned -j and whether it fits RAM, RAM + swap, or neither."""
    swap = serial_swap(facts, gain, zram)
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
                f"{human_bytes(compile_need)} of the {human_bytes(budget)} budget" + (f" + {human_bytes(gain)} counted from zram" if gain else "")
            ),
        )
    ]
    for phase in mem.serial:
        need = mem.serial_need(phase, jobs, cfg.modules)
        beside = need - mem.base - phase.peak
        parts = f"{human_bytes(mem.base)} base + {human_bytes(phase.peak)} {phase.name}" + (
            f" + {human_bytes(beside)} for modfinal jobs beside it" if beside else ""
        )
        room = budget + gain + swap
        if need <= budget:
            fits, verdict = "ram", f"fits the {human_bytes(budget)} budget"
        elif need <= room:
            fits = "swap"
            held = []
            if gain:
                held.append(f"{human_bytes(gain)} counted from zram")
            if swap:
                held.append(f"{human_bytes(swap)} free swap")
            verdict = f"{human_bytes(need - budget)} over the {human_bytes(budget)} budget, held by {' and '.join(held)}: slower, not failed"
        else:
            fits = "short"
            verdict = f"{human_bytes(need - room)} short of the budget and the swap ({human_bytes(room)})"
            advice, not_advised = _debug_advice(cfg, phase, budget + gain + swap - (need - phase.peak))
            fix = []
            if zram.enabled:
                fix.append(f"the planned zram ({human_bytes(zram.size_bytes)}) is not enough")
            elif cgroup_may_not_swap(facts):
                fix.append(f"raise the cgroup's memory limit by ~{human_bytes(need - room)} ({NO_CGROUP_SWAP})")
            elif facts.in_container:
                fix.append(f"~{human_bytes(need - room)} more: {CONTAINER_ADVICE} ({CONTAINER_NO_ZRAM})")
            else:
                fix.append(f"add ~{human_bytes(need - room)} of swap (or zram)")
            if advice:
                fix.append("or shrink it: " + ", ".join(advice))
            fix += not_advised
            if phase.name == "ThinLTO link" and mem.thinlto_jobs < mem.thinlto_backends:
                fix.append(f"or run fewer backends ({mem.thinlto_jobs} fit): {THINLTO_LIMIT.format(n=mem.thinlto_jobs)}")
            if cfg.target == "allyesconfig" and phase.name == "objtool over vmlinux.o":
                allmod = cal.objtool_peak_mib("allmod", cfg.debug_info, cfg.version) * MIB
                fix.append(f"or build allmodconfig (objtool ~{human_bytes(allmod)}: most code goes into modules)")
            notes.warn(
                f"the {phase.name} does not fit: it needs ~{human_bytes(need)} ({parts}) and this host has "
                f"{human_bytes(budget)} of budget + {human_bytes(gain)} zram + {human_bytes(swap)} swap; {'; '.join(fix)}. "
                + _lower_jobs_word(cfg, mem, phase, jobs, room)
            )
        phases.append(
            PhasePlan(
                name=phase.name,
                peak_bytes=need,
                fits=fits,
                seconds=round(seconds.get(phase.name, 0.0), 1),
                reason=f"{parts} = {human_bytes(need)}: {verdict} ({phase.source})",
            )
        )
    return tuple(phases)


def _lower_jobs_word(cfg: ChosenConfig, mem: MemoryModel, phase: SerialPhase, jobs: int, room: int) -> str:
    """What a lower -j would do for a serial phase that does not fit at ``jobs``."""
    if not phase.modfinal:
        return f"-j does not change it: no modfinal jobs run beside the {phase.name}"
    if mem.serial_need(phase, 1, cfg.modules) == mem.serial_need(phase, jobs, cfg.modules):
        return f"-j does not change it: no modfinal jobs run beside it at -j{jobs}"
    lower = lower_jobs_fit(cfg, mem, jobs, room)
    if lower is not None:
        return f"At -j{lower} it would fit (-j{jobs} as asked)"
    one = mem.serial_need(phase, 1, cfg.modules)
    return f"A lower -j does not make it fit: even at -j1 (no modfinal jobs beside it) it needs ~{human_bytes(one)}"


def plan_estimate(
    facts: HostFacts, cfg: ChosenConfig, mem: MemoryModel, jobs: int, profile: CalibrationProfile | None,
    distributed: bool = False, ccache: bool = False,
) -> tuple[EstimatePlan, dict[str, float]]:
    """Wall time: make prepare, then the compile phase's CPU-seconds over the jobs, then the
    serial tail. Each figure says whether it was measured on this tree. Returns the estimate and
    the seconds of each phase (by the phase names of the memory model)."""
    measured: list[str] = []
    estimated: list[str] = []
    tag = estimate_tag(facts)
    klass = cfg.target_class
    if profile is not None and not profile.cpu_seconds_total:
        profile = None  # a recorded build of a few targets: its figures are not the whole build's time
    compile_s, cpu, running = compile_seconds(facts, cfg, jobs, profile, distributed)
    if profile is not None:
        measured.append(
            f"compile CPU {cpu / 60:.0f} CPU-minutes for {profile.objects_total} units "
            + (f"({measured_by(profile)}, the whole build {profile.build_seconds / 60:.0f} min)" if profile.from_build
               else f"({profile.objects_sampled} sampled)")
        )
        prepare = profile.prepare_seconds
        measured.append(f"make prepare {prepare:.0f} s")
    else:
        estimated.append(f"compile CPU ~{cpu / 60:.0f} CPU-minutes (table figure for {klass} configs)")
        prepare = cal.PREPARE_SECONDS[klass]
        estimated.append(f"make prepare ~{prepare:.0f} s")
    cold = measured_cold = ""
    if ccache:
        # the CC='ccache gcc' of the make line: the first build fills the cache (docs/calibration.md §6)
        compile_s *= cal.CCACHE_COLD_SLOWDOWN
        cold = f" x {cal.CCACHE_COLD_SLOWDOWN:g} for ccache filling a cold cache"
        measured_cold = (
            f"ccache's first build ~{cal.CCACHE_COLD_SLOWDOWN:g}x a plain one (measured, docs/calibration.md §6; "
            f"a warm cache rebuilds ~{cal.CCACHE_WARM_SPEEDUP:g}x faster)"
        )
    seconds: dict[str, float] = {"compile": compile_s}
    link = _link_seconds(cfg, profile)
    if profile is not None and profile.link.measured:
        measured.append(f"vmlinux step {link:.0f} s")
    else:
        estimated.append(f"vmlinux step ~{link:.0f} s")
    seconds["vmlinux link"] = link
    lto = 0.0
    if cfg.lto != "none":
        # ThinLTO: the backends the make line runs, on the CPUs the build may use
        cpus = facts.cpu.cgroup_quota or facts.cpu.usable
        lto = cpu * cal.LTO_LINK_CPU_SHARE / (max(1.0, min(float(mem.thinlto_backends), cpus)) if cfg.lto == "thin" else 1)
        seconds["full LTO link" if cfg.lto == "full" else "ThinLTO link"] = lto
        estimated.append(f"{cfg.lto} LTO link ~{lto / 60:.0f} min")
    total = prepare + compile_s + link + lto
    if profile is None and cal.REFERENCE_CPU.lower() not in facts.cpu.model.lower():
        model = facts.cpu.model or "an unknown CPU"
        estimated.append(
            f"cores like the reference machine's ({cal.REFERENCE_CPU}); this host has {model}: the time scales "
            "with its speed (several times slower or faster) until kprov calibrate measures it here"
        )
    over = f"{jobs} jobs" if running >= jobs else f"{jobs} jobs on {running:g} CPUs"
    parts = f"prepare ~{prepare:.0f} s + {cpu / 60:.0f} CPU-minutes over {over}{cold} (~{compile_s / 60:.0f} min)"
    parts += f" + vmlinux step ~{link:.0f} s" + (f" + {cfg.lto} LTO link ~{lto / 60:.0f} min" if lto else "")
    source = (
        "measured on this tree: " + ", ".join(measured) if measured else ""
    ) + ("; " if measured and estimated else "") + (f"{tag}: " + ", ".join(estimated) if estimated else "")
    if ccache:
        source += f"; {measured_cold}"
    if profile is not None and profile.from_build and profile.build_jobs == jobs and profile.build_seconds:
        # the recorded build ran at this -j: its wall time is the measured answer (CPU-minutes
        # over the jobs miss the CPUs it shared and the I/O it waited on)
        parts = f"the build at -j{jobs} took {profile.build_seconds / 60:.0f} min ({parts} from its CPU-minutes)"
        total = profile.build_seconds
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
