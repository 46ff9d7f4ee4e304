"""The zram decision: whether to set up swap on zram, with which compressor, how large, and how
much of it the plan counts for the build.

zram goes on when memory (not CPUs) limits ``-j``, when a serial phase does not fit the budget
plus disk swap, or on a small host; not in a container unless asked (only the host's kernel can
activate swap), and never over an active zram swap the user made. From the zram and memory facts, the goals, the distro's zram tool and the memory
model. Its capacity is counted at the compressor's measured ratio, capped (conservatively) at
what a phase was measured to need beyond RAM. Returns the :class:`ZramPlan` and the bytes of
build memory zram (planned, or the user's own) may be counted for.
"""

from __future__ import annotations

import math

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import (
    HostFacts,
)
from provision.model.goals import Goals
from provision.model.plan import (
    PackageSet,
    ZramPlan,
)
from provision.planner.common import (
    MEMORY_LIMITS_J,
    ZRAM_COUNT_LIMIT,
    count_noun,
    kernel_at_least,
    MemoryModel,
    PlanNotes,
)
from provision.planner.memory import NO_CGROUP_SWAP, cgroup_may_not_swap, existing_zram_gain, users_zram, zram_frees
from provision.rules.system import check_sysctls
from provision.units import human_bytes


def _zram_sysctls(facts: HostFacts) -> tuple[dict[str, str], str]:
    sysctls = dict(cal.ZRAM_SYSCTLS)
    newer = kernel_at_least(facts.kernel_release, cal.SWAPPINESS_OVER_100_KERNEL)
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


#: Why kprov sets up no zram in a container, and what helps a container that memory limits.
CONTAINER_NO_ZRAM = "a container cannot create zram devices; swap belongs to the host's kernel"
CONTAINER_ADVICE = "raise the container's memory limit or set up zram on the host"


def _container_off(facts: HostFacts, limited: bool) -> str:
    """The zram reason in a container: the one wording, with advice when memory limits -j."""
    reason = f"off: {CONTAINER_NO_ZRAM}"
    if cgroup_may_not_swap(facts):
        return (
            f"{reason}; {NO_CGROUP_SWAP}: raise the container's memory limit (or allow it swap: docker "
            "--memory-swap above --memory) rather than set up zram on the host"
        )
    if limited:
        reason += f"; {MEMORY_LIMITS_J} here: {CONTAINER_ADVICE}"
    return reason


def _pick_algorithm(offered: tuple[str, ...], mode: str) -> str:
    for name in cal.ZRAM_PREFERENCE[mode]:
        if name in offered:
            return name
    return offered[0]


def plan_zram(
    facts: HostFacts,
    goals: Goals,
    pkgs: PackageSet | None,
    mem: MemoryModel,
    cpus: int,
    serial_short: tuple[str, int, int] | None,
    notes: PlanNotes,
) -> tuple[ZramPlan, int]:
    """Decide zram; returns the plan and the bytes of build memory it may be counted for.

    ``serial_short`` is the serial phase that does not fit the budget plus disk swap: its name,
    its need and the bytes it is short. zram holds that shortfall (the jobs decision then weighs a
    lower -j where zram cannot hold it all). When
    kprov plans no zram, an active zram swap that it leaves alone is counted instead.
    """
    zram, gain = _decide(facts, goals, pkgs, mem, cpus, serial_short, notes)
    if not zram.enabled and goals.zram is not False:
        gain = existing_zram_gain(facts, mem)
    if gain:
        # docs/calibration.md §3: with swap on zram the kernel moves idle pages of the jobs out to
        # make room for the page cache, so a cap's page-cache headroom is the build's too (224 and
        # 192 MiB caps: -j2 fastest, -j3 killed once the need passed the cap + zram)
        gain += mem.headroom
    return zram, gain


def _decide(
    facts: HostFacts,
    goals: Goals,
    pkgs: PackageSet | None,
    mem: MemoryModel,
    cpus: int,
    serial_short: tuple[str, int, int] | None,
    notes: PlanNotes,
) -> tuple[ZramPlan, int]:
    """The zram plan and the bytes of the planned device counted for the build (0 when off)."""
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
    existing = users_zram(facts)
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
        elif cgroup_may_not_swap(facts):
            notes.warn(f"zram was forced on: {NO_CGROUP_SWAP}")
    elif facts.in_container:
        return off(_container_off(facts, memory_limits))
    elif cgroup_may_not_swap(facts):
        return off(f"off: {NO_CGROUP_SWAP}; raise the cgroup's memory limit (or let it swap) for more jobs")
    elif memory_limits:
        fit = mem.fit()
        reason = (
            f"on: {MEMORY_LIMITS_J} ({count_noun(fit, 'compile job')} {'fits' if fit == 1 else 'fit'} in "
            f"{human_bytes(mem.ram_budget)} for {cpus} CPUs); zram turns a build that would livelock under memory "
            "pressure into one that finishes"
        )
    elif serial_short:
        name, need, short = serial_short
        beside = next((ph.modfinal for ph in mem.serial if ph.name == name), False)
        reason = (
            f"on: the {name} needs ~{human_bytes(need)} at its peak, {human_bytes(short)} more than the {human_bytes(mem.ram_budget)} "
            "budget and the swap hold; zram holds that"
            + (
                " (a lower -j shrinks only the modfinal jobs beside it: -j weighs that by the time each costs)"
                if beside else " (no -j makes it smaller)"
            )
        )
    elif small:
        swap = "no swap at all" if facts.memory.swap_total_bytes == 0 else f"{human_bytes(facts.memory.swap_total_bytes)} swap"
        m = facts.memory
        if m.effective_bytes < m.total_bytes:
            what = f"a small memory limit (the cgroup's {human_bytes(m.effective_bytes)} on a host of {human_bytes(m.total_bytes)} RAM, {swap})"
        else:
            what = f"a small host ({human_bytes(m.effective_bytes)} RAM, {swap})"
        reason = f"on: {what}: a safety net for the link and for anything running beside the build"
    else:
        return off(
            f"off: {human_bytes(facts.memory.effective_bytes)} RAM is enough for {cpus} jobs "
            f"(room for {count_noun(mem.fit(), 'compile job')}) and for the serial phases; zram is a safety net "
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
        if memory_limits:
            what = MEMORY_LIMITS_J
        elif serial_short:
            what = f"the {serial_short[0]} is short of memory"
        else:
            what = "memory does not limit -j"
        reasons["algorithm"] = (
            f"{algorithm}: of the offered {', '.join(offered)}, {why} ({what}); expected ratio {cal.zram_ratio(algorithm):g}:1"
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
                f"{percent}%: {what} would be {human_bytes(shortfall)} short; at {ratio:g}:1 a device of "
                f"{human_bytes(shortfall / keep)} frees that much; at least the {cal.ZRAM_DEFAULT_PERCENT}% default, "
                f"at most {cal.ZRAM_MAX_PERCENT}% (2 x RAM)"
            )
        else:
            reasons["percent"] = (
                f"{percent}%: the common default (zram-generator 0.5 x RAM); memory does not limit -j here"
            )
    size = total * percent // 100
    no_swap = cgroup_may_not_swap(facts)
    gain = 0 if facts.in_container or no_swap else min(zram_frees(facts, size, keep), rescue)
    reasons["capacity"] = (
        f"a {human_bytes(size)} device at {ratio:g}:1 frees up to {human_bytes(size * keep)} of RAM; the plan counts "
        f"{human_bytes(gain)} of it for -j and for each serial phase ({ZRAM_COUNT_LIMIT})"
    )
    if no_swap:
        reasons["capacity"] += f"; {NO_CGROUP_SWAP}"
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
