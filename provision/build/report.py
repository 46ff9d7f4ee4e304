"""A build told to a person: the summary after it ends, the history table and the SVG plot.

Text comes from templates (``templates/build-summary.txt.j2``, ``history.txt.j2``,
``build.svg.j2``) through :mod:`provision.render`, so every foreign value (a tree path, make's
last lines) is printed escaped; the SVG escapes its text for XML too.
"""

from __future__ import annotations

from typing import Any

from provision.build.phases import PHASES
from provision.build.record import BuildRecord
from provision.errors import escaped
from provision.model.facts import CalibrationProfile
from provision.planner.recorded import ROOM_SHARE, heavy_stalls
from provision.render import render_template
from provision.units import human_bytes

#: The plot's drawing area, in SVG user units.
WIDTH, HEIGHT, LEFT, TOP, RIGHT, BOTTOM = 960, 420, 70, 30, 50, 50
PHASE_COLOURS = {"config": "#e8e8e8", "prepare": "#dde8f5", "compile": "#e6f2e0", "vmlinux.o": "#f8ecd4",
                 "vmlinux link": "#f6dede", "modfinal": "#ece0f4", "modules": "#e0f0f0"}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def summary(record: BuildRecord) -> str:
    """The one-screen summary of a finished build."""
    zram = record.zram
    ratio = f"{zram['orig_bytes'] / zram['compr_bytes']:.1f}:1" if zram.get("compr_bytes") else None
    return render_template(
        "build-summary.txt.j2", r=record, duration=_duration, human_bytes=human_bytes, zram_ratio=ratio,
        phases=[(name, record.phases[name]) for name in PHASES if name in record.phases],
    )


def next_plan(profile: CalibrationProfile, tree: str, build_dir: str | None) -> str:
    """What the next ``kprov plan`` of this tree and config takes from this build, in one line."""
    where = f" --tree {tree}" + (f" --build-dir {build_dir}" if build_dir else "")
    what = "its per-job, base and phase peaks" + (", CPU-minutes and time" if profile.cpu_seconds_total else "")
    text = (f"  next plan:      kprov plan{where} takes {what} for this config ({profile.config_hash[:12]}, "
            f"{profile.compiler or 'compiler unknown'})")
    share = heavy_stalls(profile)
    if profile.oom_jobs:
        text += f"; after the OOM kill at -j{profile.oom_jobs} it plans fewer jobs, or more zram where that holds them"
    elif share:
        text += f"; memory stalled {share:.0%} of the time at -j{profile.build_jobs}: it plans fewer jobs, or more zram"
    elif (profile.build_jobs and profile.build_jobs < profile.usable_cpus and profile.budget_bytes
          and profile.peak_bytes <= ROOM_SHARE * profile.budget_bytes):
        text += (f"; it peaked at {profile.peak_bytes / profile.budget_bytes:.0%} of its budget at -j{profile.build_jobs} "
                 f"of {profile.usable_cpus} CPUs: it plans more jobs")
    return escaped(text) + "\n"


def history_table(records: list[BuildRecord]) -> str:
    rows = [
        {"n": i, "started": r.started, "tree": r.tree_version or "-", "config": (r.config_hash or "-")[:8],
         "compiler": r.compiler, "arch": r.arch, "jobs": "-" if r.jobs is None else str(r.jobs),
         "wall": _duration(r.wall_seconds), "peak": human_bytes(max((p.peak_anon_bytes for p in r.phases.values()), default=0)),
         "result": "ok" if r.exit_code == 0 else ("OOM" if r.oom else f"exit {r.exit_code}")}
        for i, r in enumerate(records, 1)
    ]
    return render_template("history.txt.j2", rows=rows)


def history_json(records: list[BuildRecord]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.to_dict().items() if k != "samples"} for r in records]


def plot(record: BuildRecord) -> str:
    """The build as SVG: anonymous memory and swap of the build over time, running compile jobs,
    the phases shaded, and the plan's memory budget as a line."""
    samples = record.samples or [[0.0, 0, 0, 0, "config"]]
    t_max = max(samples[-1][0], 1.0)
    peak = max([s[1] + s[2] for s in samples] + [1 << 20])
    budget = record.budget_bytes
    # the budget sets the scale only when it is near the build's peak: a 22 GiB budget would
    # flatten a 300 MiB build to a line; off the scale it is named in the legend instead
    on_scale = budget is not None and budget <= 3 * peak
    top_bytes = max(peak * 1.2, budget * 1.05) if on_scale else peak * 1.2
    top_jobs = max([s[3] for s in samples] + [1]) + 1
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return round(LEFT + w * t / t_max, 1)

    def y(value: float, top: float) -> float:
        return round(TOP + h - h * value / top, 1)

    bands = []
    start = samples[0]
    for prev, cur in zip(samples, samples[1:] + [None]):
        if cur is None or cur[4] != start[4]:
            end_t = prev[0] if cur is None else cur[0]
            bands.append({"x": x(start[0]), "w": max(0.5, round(x(end_t) - x(start[0]), 1)), "phase": start[4],
                          "colour": PHASE_COLOURS.get(start[4], "#eeeeee")})
            start = cur
    ticks = [{"y": y(top_bytes * i / 4, top_bytes), "label": human_bytes(top_bytes * i / 4)} for i in range(5)]
    time_ticks = [{"x": x(t_max * i / 5), "label": _duration(t_max * i / 5)} for i in range(6)]
    return render_template(
        "build.svg.j2", width=WIDTH, height=HEIGHT, left=LEFT, top=TOP, plot_w=w, plot_h=h, bands=bands,
        anon=" ".join(f"{x(s[0])},{y(s[1], top_bytes)}" for s in samples),
        total=" ".join(f"{x(s[0])},{y(s[1] + s[2], top_bytes)}" for s in samples),
        jobs=" ".join(f"{x(s[0])},{y(s[3], top_jobs)}" for s in samples),
        budget=y(budget, top_bytes) if on_scale else None,
        budget_label=human_bytes(budget) if budget else "", budget_off_scale=bool(budget) and not on_scale,
        ticks=ticks, time_ticks=time_ticks, top_jobs=top_jobs,
        title=f"kprov build {record.started}: {record.tree_version or record.tree or 'tree'} at -j{record.jobs or '?'}",
        legend=[(p, PHASE_COLOURS[p]) for p in PHASES if any(b["phase"] == p for b in bands)],
    )
