"""``kprov calibrate``: measure this tree on this host, for the planner's figures.

The planner's table holds figures measured on one reference machine and one config (defconfig,
gcc 12). A user's tree, config and compiler differ, so ``kprov calibrate --tree PATH`` measures
them where the build will run, within a time budget (``--minutes``):

1. the planned config, evaluated as ``kprov plan`` does (provision.tree.kconfig), is copied into a
   calibration build directory of its own (one per config hash), and ``make prepare`` runs there,
   timed (headers, host tools, objtool);
2. ``make -n`` lists every compile unit of the build; a stratified sample is taken: the largest
   sources (all of them, when the budget allows) and a low-discrepancy spread over the rest,
   ordered by directory so that any prefix of it covers the tree in proportion;
3. the sample is built through kbuild itself (``make O=... dir/file.o``, batched: each make run
   costs about a second before it compiles) with ``CC`` set to a small compiler wrapper that
   records each compile's peak RSS and CPU seconds from ``wait4``'s rusage (the compiler driver,
   cc1 and as); estimates for the whole build are weighted by stratum;
4. when a previous build of the same config exists (``--build-dir``, else the plan's ``O=``),
   vmlinux is relinked there under ``wait4`` (the largest process of the step: ld, objtool, pahole),
   with the ``CC`` that build used, read from its ``.cmd`` files (another CC would rebuild it all);
   else the link is "not measured";
5. a profile (method, date, kernel version, config hash, compiler version, host) is written under
   ``~/.local/state/kprov/calibration/`` and its path printed; ``kprov plan --tree`` uses it when
   the config hash and the compiler match, and says so in every reason.

All of this is I/O and sits above the planner; the planner receives the profile as data.

Every step runs the tree's make, so every step runs as :func:`provision.tree.kconfig.evaluate`'s
does (:mod:`provision.tree.sandbox`): as the user the tree belongs to when kprov is root and the
tree is another user's (its calibration build directory is then that user's, under root's
``owners`` directory, and the compiler wrapper and kprov's notes stay in a directory of root's),
in a process group killed when the step ends, when its time is up, or when kprov stops or dies.
A tree kprov will not run is refused with one line before anything runs.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import time
from pathlib import Path

from provision import planner
from provision.errors import EnvironmentProblem, UserError
from provision.facts.catalog import load_catalog
from provision.model.facts import (
    CalibrationProfile,
    HostFacts,
    LinkMeasurement,
    TreeEvaluation,
)
from provision.model.goals import Goals
from provision.planner.config import config_commands, config_request
from provision.tree import kconfig, ownership, sandbox
from provision.tree.profiles import cache_root, profile_path, save_profile, slug
from provision.tree.sampling import (
    Progress,
    build_wrapper,
    list_units,
    quantile_of,
    read_log,
    relink,
    run_make,
    sample_order,
    unit_source,
    wait_for,
)

METHOD = (
    "kprov calibrate: a stratified sample of the configured compile units (largest sources + a "
    "spread over directories) built through kbuild with a wait4 compiler wrapper; make prepare "
    "timed; vmlinux relinked under wait4 when a previous build exists"
)






#: Objects per make run after the first (small) batch; each run costs ~1-2 s before compiling.
BATCH = 12


FIRST_BATCH = 4




#: Fewer measured compiles than this make no profile: the p99 of a handful of units says nothing.
MIN_SAMPLE = 8

#: Seconds ``make prepare`` or the dry run listing the units may take (a huge config's objtool).
PREPARE_TIMEOUT_S = 3600

#: Seconds a batch of compiles may always take, even past the budget's hard stop.
BATCH_MIN_TIMEOUT_S = 60


@dataclasses.dataclass
class Workspace:
    """Where a calibration builds (``build``, written by the tree's make), where kprov keeps its
    notes and the compiler wrapper (``meta``) and where the wrapper logs each compile (``log``)."""

    build: Path
    meta: Path
    log: Path
    lock: Path | None = None


def workspace(runner: sandbox.RunAs, name: str, cache: Path | None) -> Workspace:
    """kprov's own build directory under its cache; for a tree run as its owner, that owner's
    directory (0700) beside a directory of root's for the notes and the wrapper."""
    if not runner.drops:
        build = (cache or cache_root()) / name
        return Workspace(build=build, meta=build / ".kprov", log=build / ".kprov" / "compiles.log")
    build = ownership.owned_dir(runner, "calibrate", name)
    meta = ownership.owned_dir(runner, "calibrate", f"{name}.kprov", owner=False)
    return Workspace(build=build, meta=meta, log=build / ".kprov-compiles.log", lock=meta / ".kprov-lock")


@dataclasses.dataclass
class Result:
    profile: CalibrationProfile
    path: Path
    output: Path | None


def calibrate(
    facts: HostFacts,
    goals: Goals,
    minutes: float,
    output: str | None = None,
    progress: Progress | None = None,
    state: Path | None = None,
    cache: Path | None = None,
) -> Result:
    """Measure the planned config of ``facts.tree`` on this host within ``minutes``."""

    tree = facts.tree
    if tree is None:
        raise UserError("kprov calibrate needs --tree PATH: the kernel tree to measure")
    runner, source = ownership.tree_runner(tree.path)
    progress = progress or Progress()
    say = progress.say
    started = time.monotonic()
    deadline = started + minutes * 60
    hard_stop = deadline + minutes * 60
    env = kconfig.make_env()

    request = config_request(facts, goals)
    if not request.evaluable:
        raise UserError(f"kprov calibrate --tree {tree.path}: {request.why_not} (make mrproper there, or use a clean copy)")
    evaluated, config_text = kconfig.evaluate_text(tree, request, lambda base: config_commands(facts, goals, base), say)
    plan = planner.plan(facts, goals, load_catalog(), TreeEvaluation(kconfig=evaluated))
    jobs = max(1, int(facts.cpu.usable))

    space = workspace(runner, f"{evaluated.config_hash[:16]}-{slug(evaluated.arch or 'native')}", cache)
    build_dir, meta, log = space.build, space.meta, space.log
    if runner.drops:
        say(f"running the tree's make as {runner.shown()}, its owner, in {build_dir}")
    with kconfig.locked(meta, space.lock):
        wrapper = build_wrapper(meta, env)
        compiler = "clang" if plan.config.compiler == "clang" else request.make_vars.get("CROSS_COMPILE", "") + "gcc"
        make_vars = dict(request.make_vars)
        make_vars["CC"] = f"{wrapper} {compiler}"
        build_dir.mkdir(parents=True, exist_ok=True)
        ownership.write_below(build_dir, ".config", config_text.encode(), runner)
        say(f"configuring {build_dir}: make olddefconfig (config hash {evaluated.config_hash[:12]})")
        status, _u, _s, tail = wait_for(
            run_make(source, build_dir, make_vars, 1, "olddefconfig"), env, sandbox.deadline_seconds(), runner
        )
        if status != 0:
            raise EnvironmentProblem(f"kprov calibrate: make olddefconfig failed in {build_dir}: {(tail or ['?'])[-1][:200]}")
        try:
            configured = ownership.read_below(build_dir, ".config", f"{build_dir}/.config", owner=runner.uid)
        except UserError as exc:
            raise EnvironmentProblem(f"kprov calibrate: {exc.message}") from None
        here = kconfig.config_hash((configured or b"").decode(errors="replace"))
        if here != evaluated.config_hash:
            raise EnvironmentProblem(
                f"kprov calibrate: the calibration build's config ({here[:12]}) differs from the evaluated one "
                f"({evaluated.config_hash[:12]})"
            )
        say(f"make prepare (-j{jobs}): headers, host tools, objtool")
        status, usage, prepare_s, tail = wait_for(
            run_make(source, build_dir, make_vars, jobs, "prepare"), env, PREPARE_TIMEOUT_S, runner
        )
        if status != 0:
            raise EnvironmentProblem(f"kprov calibrate: make prepare failed: {(tail or ['?'])[-1][:200]}")
        prepare_cpu = usage.ru_utime + usage.ru_stime
        # a second run finds prepare done: the figures of the first, fresh one are the build's
        first_prepare = meta / "prepare.json"
        if first_prepare.is_file():
            try:
                kept = json.loads(first_prepare.read_text())
                prepare_s, prepare_cpu = float(kept["seconds"]), float(kept["cpu_seconds"])
            except (ValueError, KeyError, TypeError):
                first_prepare.unlink()
        if not first_prepare.is_file():
            first_prepare.write_text(json.dumps({"seconds": prepare_s, "cpu_seconds": prepare_cpu}) + "\n")

        listing = meta / "units.txt"
        if listing.is_file():
            units = [u for u in listing.read_text().splitlines() if u]
        else:
            say("listing the compile units (make -n vmlinux modules)")
            units = list_units(source, build_dir, make_vars, env, runner, PREPARE_TIMEOUT_S)
            listing.write_text("\n".join(units) + "\n")
        if not units:
            raise EnvironmentProblem("kprov calibrate: make -n listed no compile unit for this config")
        sized = []
        for unit in units:
            path = unit_source(source, unit)
            sized.append((unit, path.stat().st_size if path else 0))
        largest, spread = sample_order(sized, evaluated.config_hash)

        link = LinkMeasurement(measured=False, note="not measured")
        previous = Path(plan.config.build_dir) if plan.config.build_dir else None
        if goals.build_dir:
            previous = Path(goals.build_dir)
        if previous is not None:
            link = relink(previous, source, evaluated, env, say, runner)
        else:
            link = LinkMeasurement(measured=False, note="not measured: the plan builds in the tree")
        if not link.measured:
            say(f"link {link.note}")

        ownership.remove_below(log.parent, log.name)
        wrap_env = dict(env, KPROV_CCWRAP_LOG=str(log))
        queue: list[tuple[str, str]] = []
        a, b = list(largest), list(spread)
        # interleave the strata so that a cut by the budget keeps both represented
        while a or b:
            for _ in range(2):
                if a:
                    queue.append(("largest", a.pop(0)))
            for _ in range(4):
                if b:
                    queue.append(("spread", b.pop(0)))
        tried: dict[str, str] = {}
        batch_times: list[tuple[int, float]] = []
        position = 0
        say(
            f"sampling {len(queue)} compile units ({len(largest)} largest sources first, then a spread over "
            f"the tree) until the {minutes:g} min budget is spent"
        )
        while position < len(queue):
            now = time.monotonic()
            size = FIRST_BATCH if not batch_times else BATCH
            # past the budget, still measure the minimum sample (a profile of a handful says nothing),
            # but never past twice the budget (units that fail to build)
            enough = len(read_log(log, runner.uid)) >= 2 * MIN_SAMPLE or now > hard_stop
            if batch_times:
                per_unit = sum(t for _, t in batch_times) / max(1, sum(n for n, _ in batch_times))
                if now + per_unit * size > deadline and enough:
                    break
            elif now > deadline and enough:
                break
            batch = queue[position : position + size]
            position += len(batch)
            for stratum, unit in batch:
                tried[unit] = stratum
                ownership.remove_below(build_dir, unit)
            status, _usage, seconds, _tail = wait_for(
                run_make(source, build_dir, make_vars, jobs, *(u for _, u in batch), keep_going=True), wrap_env,
                max(BATCH_MIN_TIMEOUT_S, hard_stop - time.monotonic()), runner,
            )
            batch_times.append((len(batch), seconds))
            per_unit = sum(t for _, t in batch_times) / max(1, sum(n for n, _ in batch_times))
            room = max(0.0, deadline - time.monotonic())
            expected = min(len(queue), position + int(room / per_unit))
            progress.bar(len(read_log(log, runner.uid)), max(expected, 1), min(room, per_unit * (expected - position)), "units compiled")
        progress.close()

    measured = read_log(log, runner.uid)
    sampled = {u: measured[os.path.normpath(u)] for u in tried if os.path.normpath(u) in measured}
    if len(sampled) < MIN_SAMPLE:
        raise EnvironmentProblem(
            f"kprov calibrate: only {len(sampled)} compile units were measured in {minutes:g} min "
            f"(at least {MIN_SAMPLE} are needed): give --minutes more time"
        )
    strata = {"largest": len(largest), "spread": len(spread)}
    by_stratum: dict[str, list[str]] = {"largest": [], "spread": []}
    for unit in sampled:
        by_stratum[tried[unit]].append(unit)
    weights = {s: (strata[s] / len(by_stratum[s]) if by_stratum[s] else 0.0) for s in strata}
    if not by_stratum["spread"]:  # everything measured came from the largest sources: use them for all
        weights["largest"] = len(units) / len(by_stratum["largest"])
    if not by_stratum["largest"]:
        weights["spread"] = len(units) / len(by_stratum["spread"])
    rss = [(sampled[u][0], weights[tried[u]]) for u in sampled]
    cpu_total = sum(sampled[u][1] * weights[tried[u]] for u in sampled)
    object_bytes = 0.0
    for unit in sampled:
        object_bytes += ownership.size_below(build_dir, unit) * weights[tried[unit]]
    worst = max(sampled, key=lambda u: sampled[u][0])
    profile = CalibrationProfile(
        method=METHOD,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        kernel_version=evaluated.kernel_version,
        tree=tree.path,
        target=evaluated.target,
        arch=evaluated.arch,
        config_hash=evaluated.config_hash,
        compiler=evaluated.compiler,
        host=socket.gethostname(),
        cpu_model=facts.cpu.model,
        usable_cpus=jobs,
        objects_total=len(units),
        objects_sampled=len(sampled),
        rss_mean_bytes=int(sum(r * w for r, w in rss) / sum(w for _, w in rss)),
        rss_p50_bytes=int(quantile_of(rss, 0.50)),
        rss_p90_bytes=int(quantile_of(rss, 0.90)),
        rss_p99_bytes=int(quantile_of(rss, 0.99)),
        rss_max_bytes=int(sampled[worst][0]),
        rss_max_object=worst,
        cpu_seconds_per_object=round(cpu_total / len(units), 3),
        cpu_seconds_total=round(cpu_total, 1),
        object_bytes_total=int(object_bytes),
        prepare_cpu_seconds=round(prepare_cpu, 1),
        prepare_seconds=round(prepare_s, 1),
        link=link,
        seconds_spent=round(time.monotonic() - started, 1),
    )
    path = save_profile(profile, profile_path(evaluated, state))
    written = save_profile(profile, Path(output)) if output else None
    return Result(profile=dataclasses.replace(profile, path=str(path)), path=path, output=written)


def summary(result: Result) -> str:
    p = result.profile
    mib = 1 << 20
    lines = [
        f"calibrated {p.target} of Linux {p.kernel_version} ({p.arch}) with {p.compiler} on {p.host}",
        f"  compile units: {p.objects_sampled} of {p.objects_total} measured",
        f"  peak RSS per compile job: mean {p.rss_mean_bytes / mib:.0f} MiB, p50 {p.rss_p50_bytes / mib:.0f} MiB, p90 {p.rss_p90_bytes / mib:.0f} MiB, "
        f"p99 {p.rss_p99_bytes / mib:.0f} MiB, max {p.rss_max_bytes / mib:.0f} MiB ({p.rss_max_object})",
        f"  compile CPU: {p.cpu_seconds_per_object:.2f} s per unit, ~{p.cpu_seconds_total / 60:.0f} CPU-minutes "
        "for the whole build",
        f"  object files: ~{p.object_bytes_total / mib:.0f} MiB for the whole build",
        f"  make prepare: {p.prepare_seconds:.0f} s ({p.prepare_cpu_seconds:.0f} CPU-s)",
        (
            f"  vmlinux link: peak {p.link.peak_bytes / mib:.0f} MiB, {p.link.seconds:.0f} s ({p.link.note})"
            if p.link.measured
            else f"  vmlinux link: {p.link.note}"
        ),
        f"  took {p.seconds_spent:.0f} s",
        f"profile: {result.path}",
    ]
    if result.output:
        lines.append(f"also written to: {result.output}")
    return "\n".join(lines) + "\n"
