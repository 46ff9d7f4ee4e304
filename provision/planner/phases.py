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
from provision.planner.common import ChosenConfig, MemoryModel, PlanNotes, SerialPhase
from provision.planner.memory import disk_swap, estimate_tag, users_zram
from provision.units import MIB, human_bytes


def _debug_advice(cfg: ChosenConfig, mem: MemoryModel, phase: SerialPhase, room: int) -> list[str]:
    """Config changes that shrink a debug-info serial phase, with the peak each would give."""
    if cfg.debug_info == "none" or phase.name not in ("vmlinux link", "BTF (pahole)"):
        return []
    options = []
    for option, variant in (("DEBUG_INFO_REDUCED", "reduced"), ("DEBUG_INFO_SPLIT", "split"), ("DEBUG_INFO_COMPRESSED", "compressed")):
        peak = cal.link_peak_mib(cfg.target_class, "dwarf", variant) * MIB
        verdict = "fits" if peak <= room else "still short"
        options.append(f"{option} (~{human_bytes(peak)}: {verdict})")
    none_peak = cal.link_peak_mib(cfg.target_class, "none") * MIB
    options.append(f"--debug-info none (~{human_bytes(none_peak)}: {'fits' if none_peak <= room else 'still short'})")
    return options


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
    swap = disk_swap(facts)
    if not zram.enabled and gain and users_zram(facts):
        # the user's own active zram is in ``gain`` already (counted at its compression ratio):
        # its bytes are not free disk swap as well (each swap device counts once)
        swap = max(0, swap - facts.memory.zram_swap_bytes)
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
            advice = _debug_advice(cfg, mem, phase, budget + gain + swap - (need - phase.peak))
            fix = []
            if zram.enabled:
                fix.append(f"the planned zram ({human_bytes(zram.size_bytes)}) is not enough")
            else:
                fix.append(f"add ~{human_bytes(need - room)} of swap (or zram)")
            if advice:
                fix.append("or shrink it: " + ", ".join(advice))
            if cfg.target == "allyesconfig" and phase.name == "objtool over vmlinux.o":
                allmod = cal.objtool_peak_mib("allmod", cfg.debug_info, cfg.version) * MIB
                fix.append(f"or build allmodconfig (objtool ~{human_bytes(allmod)}: most code goes into modules)")
            notes.warn(
                f"the {phase.name} does not fit: it needs ~{human_bytes(need)} ({parts}) and this host has "
                f"{human_bytes(budget)} of budget + {human_bytes(gain)} zram + {human_bytes(swap)} swap; {'; '.join(fix)}. -j stays "
                f"{jobs}: a lower -j would not make the {phase.name} smaller"
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


def plan_estimate(
    facts: HostFacts, cfg: ChosenConfig, mem: MemoryModel, jobs: int, profile: CalibrationProfile | None,
    distributed: bool = False,
) -> tuple[EstimatePlan, dict[str, float]]:
    """Wall time: make prepare, then the compile phase's CPU-seconds over the jobs, then the
    serial tail. Each figure says whether it was measured on this tree. Returns the estimate and
    the seconds of each phase (by the phase names of the memory model)."""
    measured: list[str] = []
    estimated: list[str] = []
    tag = estimate_tag(facts)
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
    # jobs beyond the CPUs the build may use (a CPU quota of 2.5, a forced -j over the CPU count)
    # wait for a CPU: they make the compile phase no faster (with distcc the servers' CPUs run them)
    capacity = float(jobs) if distributed else (facts.cpu.cgroup_quota or facts.cpu.usable)
    running = min(float(jobs), capacity)
    compile_s = cpu / (running * cal.PARALLEL_EFFICIENCY)
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
        lto = cpu * cal.LTO_LINK_CPU_SHARE / (mem.thinlto_jobs if cfg.lto == "thin" else 1)
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
    parts = f"prepare ~{prepare:.0f} s + {cpu / 60:.0f} CPU-minutes over {over} (~{compile_s / 60:.0f} min)"
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
