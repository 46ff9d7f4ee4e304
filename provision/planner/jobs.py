"""The jobs decision: ``-j`` and ``-l``.

``-j`` comes from the compile phase: the usable CPUs (cgroup quota, affinity) and the compile
jobs the memory model fits in the RAM budget plus the zram counted for the build. The serial
phases never run beside the compile phase, but the vmlinux link (and BTF) run beside the modfinal
jobs, up to -j minus 1 of them: when such a phase does not fit, a lower ``-j`` is weighed against
zram by the time each costs (:func:`provision.planner.phases.serial_jobs`). ``-l`` is set only
when asked. Returns a :class:`JobsPlan` with the arithmetic in its reason.
"""

from __future__ import annotations

from provision.model.facts import (
    CalibrationProfile,
    HostFacts,
)
from provision.model.goals import Goals
from provision.model.plan import (
    JobsPlan,
    ZramPlan,
)
from provision.planner.common import (
    MEMORY_LIMITS_J,
    ChosenConfig,
    count_noun,
    cpu_story,
    load_str,
    MemoryModel,
    PlanNotes,
    usable_cpus,
)
from provision.planner.memory import NO_CGROUP_SWAP, cgroup_may_not_swap
from provision.planner.phases import serial_jobs
from provision.units import human_bytes


def _load(facts: HostFacts, goals: Goals, notes: PlanNotes) -> tuple[float | None, str]:
    """``-l`` only when asked: /proc/loadavg is not namespaced and counts tasks blocked on I/O."""
    if goals.load is not None:
        load = float(goals.load)
        notes.forced("load")
        if facts.in_container:
            notes.warn(
                f"--load {load_str(load)} in a container: /proc/loadavg is not namespaced, so the limit reacts to "
                "every task of the host and can serialise this build"
            )
        return load, f"-l {load_str(load)}: as asked (make starts no new job while the load average is above it)"
    if facts.in_container:
        return None, (
            "-l not set: /proc/loadavg is not namespaced, so in a container a load limit reacts to every task "
            "of the host (and to tasks blocked on I/O) and would serialise this build"
        )
    return None, (
        "-l not set: -j already matches what this host can run; a load limit only helps when other work "
        "shares these CPUs (ask for it with --load N)"
    )


def _recorded(mem: MemoryModel, auto: int) -> str:
    """What the recorded build this plan's figures come from changed (provision.planner.recorded)."""
    last, kind = mem.recorded_jobs, mem.feedback_kind
    if not last or not kind or (kind == "room" and auto <= last):
        return ""
    if auto != last:
        return f"; {'raised' if auto > last else 'lowered'} from the -j{last} of the recorded build: {mem.feedback}"
    return f"; -j{last} as the recorded build: {mem.feedback}"


def plan_jobs(
    facts: HostFacts, goals: Goals, cfg: ChosenConfig, mem: MemoryModel, gain: int, notes: PlanNotes,
    zram: ZramPlan | None = None, profile: CalibrationProfile | None = None,
) -> JobsPlan:
    """-j from the compile phase, lowered when a serial phase beside the modfinal jobs does not fit
    and a lower -j costs less time than the alternative."""
    cpus = usable_cpus(facts)
    fit = mem.fit(gain)
    auto = max(1, min(cpus, fit))
    what = f"{cfg.target} with {cfg.compiler}" + (f", debug info {cfg.debug_info}" if cfg.debug_info != "none" else "")
    zram_part = f" + {human_bytes(gain)} counted from zram" if gain else ""
    if gain and mem.headroom:
        zram_part += f" (with the cap's {human_bytes(mem.headroom)} page-cache headroom, which swap on zram makes room for)"
    arithmetic = (
        f"compile phase {mem.arithmetic(auto)} = {human_bytes(mem.need(auto))} of {human_bytes(mem.ram_budget)}{zram_part}: "
        f"room for {count_noun(fit, 'job')} ({what}; per job: {mem.per_job_source})"
    )
    if cgroup_may_not_swap(facts):
        arithmetic += f"; {NO_CGROUP_SWAP}"
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
            f"even one job does not fit: not even one compile job of {human_bytes(mem.per_job)} (its p99) fits beside the "
            f"{human_bytes(mem.base)} base in {human_bytes(mem.ram_budget)}{zram_part}; the build will swap heavily or livelock "
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
                f"--jobs {goals.jobs} exceeds what memory holds ({count_noun(fit, 'compile job')}: "
                f"{human_bytes(mem.need(goals.jobs))} needed, {human_bytes(mem.ram_budget + gain)} budgeted)"
            )
        return JobsPlan(
            value=goals.jobs,
            reason=f"jobs={goals.jobs}: overridden (kprov would pick {auto}: {cpu_story(facts)}; {arithmetic}); {load_why}",
            limited_by="override",
            overridden=True,
            **common,
        )
    chosen, weighed = serial_jobs(facts, cfg, mem, auto, gain, zram, profile) if zram is not None else (auto, "")
    if fit < cpus:
        reason = f"jobs={chosen}: {cpu_story(facts)}, but memory is the limit: {mem.budget_reason}; {arithmetic}"
        limited = "memory"
    elif chosen < auto:
        reason = (
            f"jobs={chosen}: {cpu_story(facts)} and the compile phase has room for {count_noun(fit, 'job')}, but memory "
            f"is the limit at the link: {mem.budget_reason}; {arithmetic}"
        )
        limited = "memory"
    else:
        without = mem.fit()
        memory = (
            f"{MEMORY_LIMITS_J} (room for {count_noun(without, 'job')} in the budget alone), not with the zram counted"
            if without < cpus else "memory is not the limit"
        )
        reason = (
            f"jobs={auto}: {cpu_story(facts)} (one job per CPU: oversubscribing cost 3-25% in measurements); "
            f"{memory}: {mem.budget_reason}; {arithmetic}"
        )
        limited = "cpus"
    if weighed:
        reason += f"; {weighed}"
    elif mem.serial:
        reason += "; the serial phases (" + ", ".join(s.name for s in mem.serial) + f") need no lower -j than {chosen}"
    reason += _recorded(mem, chosen)
    return JobsPlan(value=chosen, reason=f"{reason}; {load_why}", limited_by=limited, **common)

