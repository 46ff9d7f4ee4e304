"""The figures of a recorded build (a profile ``kprov build`` wrote) in the memory model, and what
that build says of its own -j.

A build measured everything the table guesses: its compile jobs' peaks (p99, max, mean), the
compile phase's peak at its -j (so the base beside the jobs), each serial phase's peak, its
CPU-minutes. Every figure taken from it says "measured by kprov build on DATE at -jN".

And its outcome corrects the next plan:

- killed by the OOM killer at -jN (or at a lower -j in an earlier build of the same config), on a
  budget not :data:`GROWN` times smaller than this plan's, or memory stalls over
  :data:`HEAVY_STALL_SHARE` of its time at -jN: each further job is counted so that N jobs need
  the budget that build had and one job's p99 more (the killed job never reached its peak). The
  zram decision sees that model first, so where zram can hold the difference it grows instead,
  and -j stays;
- peaked at most :data:`ROOM_SHARE` of its budget at fewer jobs than CPUs: nothing is forced,
  the measured figures (lower than that budget by construction) fit more jobs, and the jobs
  reason says that this build is why -j rose.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from provision import calibration as cal
from provision.model.facts import CalibrationProfile
from provision.planner.common import SerialPhase
from provision.units import human_bytes

HEAVY_STALL_SHARE = cal.FEEDBACK_HEAVY_STALL_SHARE
ROOM_SHARE = cal.FEEDBACK_ROOM_SHARE
GROWN = cal.FEEDBACK_GROWN_BUDGET

#: The build's phases (provision.build.phases) that are the planner's serial phases.
_SERIAL = (("vmlinux.o", "objtool over vmlinux.o"), ("vmlinux link", "vmlinux link"))


def measured_by(p: CalibrationProfile) -> str:
    return f"measured by kprov build on {p.date[:10]} at -j{p.build_jobs}"


def recorded_base(p: CalibrationProfile, table_base: int, per_job: int, average: int, source: str) -> tuple[int, str]:
    """The base beside the compile jobs: the compile phase's measured peak less its jobs as the
    model counts them (so the model gives that peak back at that -j)."""
    peak, n = p.phase_peaks.get("compile", 0), p.build_jobs
    if not peak or not n:
        return table_base, source
    left = peak - per_job - (n - 1) * average
    if left > 0:
        return left, (
            f"{source}; base {human_bytes(left)}: the compile phase's peak {human_bytes(peak)} at -j{n} less its "
            f"jobs (p99 + {n - 1} x mean)"
        )
    return table_base, (
        f"{source}; base {human_bytes(table_base)} from the table (the compile phase's peak {human_bytes(peak)} "
        f"at -j{n} is within its jobs' own peaks)"
    )


def recorded_serial(p: CalibrationProfile, base: int) -> Iterator[SerialPhase]:
    """The serial phases the build went through, at their measured peaks less the base (the
    peak includes whatever ran beside them, so no modfinal job is added)."""
    for phase, name in _SERIAL:
        peak = p.phase_peaks.get(phase, 0)
        if peak:
            less = f"less the {human_bytes(base)} base" if peak > base else f"within the {human_bytes(base)} base"
            yield SerialPhase(
                name, max(1, peak - base), f"{measured_by(p)}: the {phase} phase peaked at {human_bytes(peak)}, {less}",
                modfinal=False,
            )


def heavy_stalls(p: CalibrationProfile) -> float:
    """The share of the build's time memory stalled, when it is heavy (else 0)."""
    if p.build_seconds <= 0:
        return 0.0
    share = p.stall_seconds / p.build_seconds
    return share if share >= HEAVY_STALL_SHARE else 0.0


def recorded_feedback(
    p: CalibrationProfile, budget: int, base: int, per_job: int, average: int
) -> tuple[int, int, str, str]:
    """``(per_job, average, kind, why)``: the figures after what the build says of its -j; kind
    is "oom", "stalls", "room" or ""."""
    date = p.date[:10]
    if p.oom_jobs:
        ceiling, limit = p.oom_jobs, p.oom_budget_bytes or budget
        kind = "oom"
        why = (
            f"the build at -j{ceiling} on {(p.oom_date or p.date)[:10]} was killed by the OOM killer"
            f"{' in the ' + p.oom_phase + ' phase' if p.oom_phase else ''} with {human_bytes(limit)} of budget"
        )
        if budget > GROWN * limit:
            return per_job, average, kind, f"{why}; this plan has {human_bytes(budget)}: not held against it"
    elif share := heavy_stalls(p):
        ceiling, limit = p.build_jobs, p.budget_bytes or budget
        kind = "stalls"
        why = (
            f"memory stalls took {share:.0%} of the build at -j{ceiling} on {date} (/proc/pressure/memory, some; "
            f"kprov calls over {HEAVY_STALL_SHARE:.0%} heavy, an estimate)"
        )
    else:
        if p.build_jobs and p.budget_bytes and p.peak_bytes and p.peak_bytes <= ROOM_SHARE * p.budget_bytes:
            return per_job, average, "room", (
                f"the build at -j{p.build_jobs} on {date} peaked at {human_bytes(p.peak_bytes)}, "
                f"{p.peak_bytes / p.budget_bytes:.0%} of its {human_bytes(p.budget_bytes)} budget "
                f"(at most {ROOM_SHARE:.0%} counts as room for more jobs, an estimate)"
            )
        return per_job, average, "", ""
    limit = max(limit, budget)  # MemAvailable moves between two plans: the jobs must not fit this one either
    if ceiling <= 1:
        return per_job, average, kind, f"{why}; -j1 is the least: more memory, zram or a lighter config"
    # the killed job never reached its peak: N jobs need that budget and one job's p99 more
    wanted = math.ceil((limit - base) / (ceiling - 1)) + 1
    if wanted > average:
        why += (
            f": each further job is counted at {human_bytes(wanted)} (not the {human_bytes(average)} mean), "
            f"so that {ceiling} jobs need that budget and one job's p99 more"
        )
        average = wanted
    return per_job, average, kind, why
