"""The memory model: how much RAM the build may use, what each compile job needs, and the peak of
each serial phase (vmlinux link, objtool over vmlinux.o, BTF, the LTO link).

From the memory facts (RAM, MemAvailable, a cgroup limit, swap), the chosen config and, when
``kprov calibrate`` measured this tree, its calibration profile; else the table figures of
:mod:`provision.calibration`, each source named in the figure's reason. :func:`plan_memory`
returns a :class:`MemoryModel`; the other functions answer the questions the zram, jobs and
phase decisions ask of it (the serial phase that does not fit, what zram frees, free swap).
"""

from __future__ import annotations

import math

from provision import calibration as cal
from provision.model.facts import (
    CalibrationProfile,
    HostFacts,
)
from provision.planner.common import ChosenConfig, MemoryModel, SerialPhase, count_noun
from provision.planner.recorded import measured_by, recorded_base, recorded_feedback, recorded_serial
from provision.units import MIB, human_bytes


def estimate_tag(facts: HostFacts) -> str:
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
    cap = m.cgroup_cap_bytes
    if cap and cap < m.total_bytes:
        headroom = int(effective * cal.CGROUP_HEADROOM_FRACTION)
        budget = effective - headroom
        what = (
            "memory limit"
            if cap == m.cgroup_limit_bytes
            else "memory.high (the cgroup is throttled above it, below its memory.max)"
        )
        why = (
            f"{human_bytes(budget)} budget: the cgroup {what} {human_bytes(effective)} (it covers only what runs in the "
            "cgroup, so nothing is reserved for the rest of the system) less the "
            f"{cal.CGROUP_HEADROOM_FRACTION:.0%} a cap needs for the page cache of the sources (measured)"
        )
        if 0 < m.available_bytes < budget:
            budget = m.available_bytes
            why = f"{human_bytes(budget)} budget: MemAvailable, below the cgroup memory limit of {human_bytes(effective)}"
            headroom = 0  # the host's RAM binds, not the cap
    else:
        reserve = min(
            max(effective * cal.OS_RESERVE_FRACTION, cal.OS_RESERVE_MIN_MIB * MIB), cal.OS_RESERVE_MAX_MIB * MIB
        )
        budget = effective - reserve
        if 0 < m.available_bytes < budget:
            budget = m.available_bytes
            why = f"{human_bytes(budget)} budget: MemAvailable (RAM {human_bytes(effective)}, other programs use the rest)"
        else:
            why = f"{human_bytes(budget)} budget: RAM {human_bytes(effective)} - {human_bytes(reserve)} reserve for the system"
    if tmpfs:
        budget -= tmpfs
        why += f", less {human_bytes(tmpfs)} for the build directory on tmpfs (its files live in RAM)"
    return max(0, int(budget)), why, headroom


def plan_memory(
    facts: HostFacts, cfg: ChosenConfig, cpus: int, profile: CalibrationProfile | None, tmpfs: int
) -> MemoryModel:
    """The budget (less ``tmpfs``, the bytes a build directory on tmpfs takes), the compile phase's
    per-job figure, the serial phases' peaks and the ThinLTO backends that fit (0 without ThinLTO)."""
    budget, why, headroom = _budget(facts, tmpfs)
    tag = estimate_tag(facts)
    klass, debug = cfg.target_class, cfg.debug_info
    recorded = profile is not None and profile.from_build
    if profile is not None:
        per_job = profile.rss_p99_bytes
        average = profile.rss_mean_bytes or profile.rss_p50_bytes
        if recorded:
            per_job_source = (
                f"{measured_by(profile)}: p99 of {profile.objects_sampled} compile jobs (max "
                f"{human_bytes(profile.rss_max_bytes)}), mean {human_bytes(average)}"
            )
        else:
            per_job_source = (
                f"measured on this tree: p99 of {profile.objects_sampled} compile jobs, mean {human_bytes(average)}, "
                f"kprov calibrate {profile.date[:10]}"
            )
    else:
        per_job = int(cal.per_job_mib(klass, cfg.compiler, debug, cfg.heavy_sanitizers) * MIB)
        average = int(cal.average_job_mib(klass, cfg.compiler, debug, cfg.heavy_sanitizers) * MIB)
        extra = f", debug info {debug}" if debug != "none" else ""
        extra += ", sanitizers" if cfg.heavy_sanitizers and klass not in ("allmod", "allyes") else ""
        per_job_source = f"table figure for {klass} configs with {cfg.compiler}{extra}; {tag}"
    base = cal.BUILD_BASE_MIB * MIB
    kind = feedback = ""
    if recorded:
        assert profile is not None
        base, per_job_source = recorded_base(profile, base, per_job, average, per_job_source)
        per_job, average, kind, feedback = recorded_feedback(profile, budget, base, per_job, average)
    # the recorded build's own serial phases, else those calibrate measured or the table has
    serial = list(recorded_serial(profile, base)) if recorded else []
    serial = serial or _vmlinux_phases(cfg, profile, tag)
    thin_jobs = runs = 0
    if cfg.lto == "full":
        # the LTO code generation runs in vmlinux.o's link, before modpost: no modfinal beside it
        serial.append(
            SerialPhase("full LTO link", cal.LTO_FULL_LINK_MIB[klass] * MIB, "published: ld.lld full-LTO link peak", modfinal=False)
        )
    elif cfg.lto == "thin":
        room = budget - base - cal.THINLTO_BASE_MIB * MIB
        runs = thinlto_backends(facts)  # what the make line runs: ld.lld's own default
        thin_jobs = max(1, min(runs, math.floor(room / (cal.THINLTO_PER_BACKEND_MIB * MIB))))
        serial.append(
            SerialPhase(
                "ThinLTO link",
                (cal.THINLTO_BASE_MIB + runs * cal.THINLTO_PER_BACKEND_MIB) * MIB,
                f"estimate: the thin link plus {runs} backends of ~{cal.THINLTO_PER_BACKEND_MIB} MiB (ld.lld runs one "
                "per physical core, as the make line leaves it)",
                modfinal=False,
            )
        )
    return MemoryModel(
        budget,
        why,
        max(1, int(per_job)),
        per_job_source,
        base,
        max(1, int(average)),
        tuple(serial),
        profile is not None,
        headroom,
        thin_jobs,
        runs,
        profile.build_jobs if recorded and profile is not None else 0,
        kind,
        feedback,
    )


def _vmlinux_phases(cfg: ChosenConfig, profile: CalibrationProfile | None, tag: str) -> list[SerialPhase]:
    """The serial phases of make vmlinux: the link calibrate measured on this tree, else the
    table's link, objtool over vmlinux.o and BTF."""
    klass, debug, variant = cfg.target_class, cfg.debug_info, cfg.debug_variant
    serial: list[SerialPhase] = []
    if profile is not None and profile.link.measured:
        serial.append(
            SerialPhase(
                "vmlinux link",
                profile.link.peak_bytes,
                f"measured on this tree: the largest process of make vmlinux (ld, objtool, pahole), "
                f"kprov calibrate {profile.date[:10]}",
            )
        )
    else:
        serial.append(
            SerialPhase(
                "vmlinux link",
                int(cal.link_peak_mib(klass, debug, variant) * MIB),
                f"table figure for {klass} configs{', debug info ' + debug + (' ' + variant if variant else '') if debug != 'none' else ''}; {tag}",
            )
        )
        if cfg.objtool:
            serial.append(
                SerialPhase(
                    "objtool over vmlinux.o",
                    int(cal.objtool_peak_mib(klass, debug, cfg.version) * MIB),
                    f"published/table figure for {klass} configs on this kernel version; {tag}",
                    modfinal=False,
                )
            )
        if debug == "btf":
            serial.append(
                SerialPhase(
                    "BTF (pahole)",
                    int(cal.link_peak_mib(klass, "dwarf", variant) * cal.BTF_PEAK_FACTOR * MIB),
                    f"table figure: pahole reads the whole vmlinux's DWARF; {tag}",
                )
            )
    return serial


def thinlto_backends(facts: HostFacts) -> int:
    """The ThinLTO backends ld.lld runs when nothing limits them: one per physical core of the
    CPUs it may run on (docs/calibration.md §4), not the cgroup's CPU quota."""
    cores = facts.cpu.physical_cores or facts.cpu.logical
    return max(1, min(cores, facts.cpu.affinity or facts.cpu.logical))


def thinlto_note(mem: MemoryModel) -> str:
    """What the LTO reason adds about the ThinLTO backends ("" without ThinLTO)."""
    if not mem.thinlto_jobs:
        return ""
    backends = mem.thinlto_backends
    if backends <= mem.thinlto_jobs:
        return (
            f" (ld.lld runs {count_noun(backends, 'ThinLTO backend')} here, one per physical core, "
            f"~{cal.THINLTO_PER_BACKEND_MIB} MiB each: {'it fits' if backends == 1 else 'they fit'})"
        )
    return (
        f" (ld.lld runs {count_noun(backends, 'ThinLTO backend')} here, one per physical core, ~{cal.THINLTO_PER_BACKEND_MIB} MiB each; "
        f"{mem.thinlto_jobs} fit: {THINLTO_LIMIT.format(n=mem.thinlto_jobs)})"
    )


#: How a ThinLTO link's backends are limited: 6.1's Makefile assigns KBUILD_LDFLAGS itself and has no
#: LDFLAGS of the user's for the vmlinux.o link, so a command-line KBUILD_LDFLAGS would replace the
#: arch's flags; LD names the linker of every link (docs/calibration.md §4).
THINLTO_LIMIT = "to limit them, put LD='ld.lld --thinlto-jobs={n}' on the make line"


def serial_shortfall(facts: HostFacts, cfg: ChosenConfig, mem: MemoryModel, jobs: int) -> tuple[str, int, int] | None:
    """The serial phase furthest beyond the budget plus disk swap at ``jobs``: (name, need, short)."""
    swap = disk_swap(facts)
    worst = None
    for phase in mem.serial:
        need = mem.serial_need(phase, jobs, cfg.modules)
        short = need - mem.ram_budget - swap
        if short > 0 and (worst is None or short > worst[2]):
            worst = (phase.name, need, short)
    return worst


def _below_ram_cgroup(facts: HostFacts) -> bool:
    m = facts.memory
    cap = m.cgroup_cap_bytes
    return bool(cap and cap < m.total_bytes) and not facts.in_container


#: What a plan says when the build's cgroup may not swap (docs/calibration.md §14).
NO_CGROUP_SWAP = (
    "the cgroup may not swap (memsw = limit): zram gives no room here (docs/calibration.md §14: a 224 MiB "
    "cgroup without swap, zram active on the host: -j2 killed by the OOM killer, -j1 finished)"
)


def cgroup_may_not_swap(facts: HostFacts) -> bool:
    """The build's cgroup may not swap: neither zram nor disk swap holds any of its memory."""
    return facts.memory.cgroup_may_not_swap


def zram_frees(facts: HostFacts, size: int, keep: float) -> int:
    """RAM a zram device of ``size`` frees for the build. Its compressed pool is not charged to a
    memory cgroup: under a cgroup limit below RAM every byte it holds leaves the limit (while the
    host has RAM for the pool); on a whole host the pool comes out of the same RAM."""
    whole_host = int(size * keep)
    if _below_ram_cgroup(facts):
        outside = max(0, facts.memory.available_bytes - facts.memory.effective_bytes)
        # never less than on a whole host: with no RAM to spare outside the cap the pool comes out
        # of the same RAM, as it does there (a cap just below RAM must not plan fewer jobs than none)
        return max(whole_host, int(min(size, outside * (1 / (1 - keep)) if keep < 1 else size)))
    return whole_host


def existing_zram_gain(facts: HostFacts, mem: MemoryModel) -> int:
    """What an active zram swap that kprov leaves alone frees for the build, at its compressor's
    measured ratio (capped like planned zram); none in a container (/proc/swaps is the host's)."""
    if facts.in_container or cgroup_may_not_swap(facts) or not users_zram(facts) or not facts.memory.zram_swap_bytes:
        return 0
    keep = 1 - 1 / cal.zram_ratio(facts.zram.active or cal.ZRAM_KCONFIG_DEFAULT)
    return min(zram_frees(facts, facts.memory.zram_swap_bytes, keep), cal.zram_rescue_bytes(mem.ram_budget))


def disk_swap(facts: HostFacts) -> int:
    """Free swap this build can count on besides zram the plan counts itself: none in a container
    (/proc/swaps is the host's) or in a cgroup that may not swap.

    Each swap device counts once: when the active zram is kprov's own, the plan sizes and counts it
    afresh (zram.py), so its bytes come out of swap_free_bytes here (all of them: its free part is
    not known). Without that, the plan after an apply counted the device twice and asked for a
    smaller one: no fixed point.
    """
    if facts.in_container or cgroup_may_not_swap(facts):
        return 0
    free = facts.memory.swap_free_bytes
    if facts.zram.kprov_devices and not users_zram(facts):
        free -= facts.memory.zram_swap_bytes
    return max(0, free)


def users_zram(facts: HostFacts) -> tuple[str, ...]:
    """Active zram swap devices the user made: kprov leaves them alone and installs no zram tool.

    A device kprov itself set up is its to keep sized to the plan. In a container /proc/swaps shows
    the host's swap: not the container's to keep or to plan.
    """
    if facts.in_container:
        return ()
    return tuple(d for d in facts.zram.devices_in_use if d not in facts.zram.kprov_devices)
