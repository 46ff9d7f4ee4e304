"""kprov build fed back into kprov plan, against a sweep of -j (a script, not a test).

On the linux-source 6.1 subset of tests/bench_jobs.py (kernel/ mm/ fs/ext4/ net/ipv4/ of
defconfig), per scenario:

  1. ``kprov plan`` inside the scenario: the first plan's -j (from the table);
  2. ``kprov build`` of the subset at that -j inside the scenario, recorded (a state directory of
     the scenario's own, so no other build's record is read);
  3. ``kprov plan`` again: the second plan's -j, from the recorded figures, with its reason;
  4. a short sweep of -j around it (every -j once, interleaved over ``--rounds``): is the second
     plan's -j within 1.05x of the sweep's best time?

Scenarios: plain (the machine as it is); cap+zram (a memory cgroup cap with zram0 as swap; skipped
with a line when zram0 is missing or in use); cap-noswap (a cap that may not swap: memsw = limit);
one-cpu (affinity to one CPU); kasan (defconfig plus KASAN, planned from the build directory's
.config: a config heavier than the table's defconfig figures).

    .venv/bin/python tests/bench_feedback.py [--quick] [--scenarios plain,cap-zram,cap-noswap,one-cpu,kasan]

``--quick``: the plain scenario, a small subset (kernel/time/ kernel/irq/), one round. Run as root
(cgroups, zram, kprov build --as-root). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bench_jobs import ENV, SUBSET, MemoryCgroup, Scenario, Zram, build_once, log  # noqa: E402

QUICK_SUBSET = ("kernel/time/", "kernel/irq/")
KPROV = ROOT / ".venv" / "bin" / "kprov"


class NoSwapCgroup(MemoryCgroup):
    """A capped memory cgroup that may not swap (v1 memsw = limit, v2 memory.swap.max = 0)."""

    def set_limit(self, limit: int | None) -> None:
        super().set_limit(limit)
        if limit is None:
            return
        memsw = self.path / ("memory.memsw.limit_in_bytes" if self.version == 1 else "memory.swap.max")
        if memsw.exists():
            memsw.write_text(str(limit) if self.version == 1 else "0")


class Case:
    def __init__(self, name: str, scenario: Scenario, build: Path, target: str):
        self.name, self.scenario, self.build, self.target = name, scenario, build, target
        self.state = build.parent / f"state-{name}"

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(ROOT), XDG_STATE_HOME=str(self.state), **ENV)

    def kprov(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(KPROV), *args], env=self.env(), capture_output=True, text=True,
                              preexec_fn=self.scenario.preexec, check=False)  # noqa: PLW1509

    def plan(self, tree: Path) -> dict:
        done = self.kprov("plan", "--json", "--tree", str(tree), "--build-dir", str(self.build), "--target",
                          self.target, "--no-ccache")
        if done.returncode != 0:
            raise SystemExit(f"[{self.name}] kprov plan failed: {done.stderr.strip()[-500:]}")
        return json.loads(done.stdout)


def configure(tree: Path, build: Path, kasan: bool) -> None:
    env = dict(os.environ, **ENV)
    if not (build / ".config").is_file():
        subprocess.run(["make", "-s", "-C", str(tree), f"O={build}", "defconfig"], check=True, env=env)
        if kasan:
            subprocess.run([str(tree / "scripts" / "config"), "--file", str(build / ".config"), "-e", "KASAN",
                            "-e", "KASAN_GENERIC", "-e", "KASAN_INLINE"], check=True)
            subprocess.run(["make", "-s", "-C", str(tree), f"O={build}", "olddefconfig"], check=True, env=env)
    jobs = len(os.sched_getaffinity(0))
    subprocess.run(["make", "-s", "-C", str(tree), f"O={build}", f"-j{jobs}", "prepare"], check=True, env=env)


def clean(build: Path, subset: tuple[str, ...]) -> None:
    for part in subset:
        for pattern in ("*.o", "*.a"):
            for obj in (build / part).rglob(pattern):
                obj.unlink()


def sweep_of(second: int, nproc: int, quick: bool) -> list[int]:
    if quick:
        return sorted({max(1, second - 1), second, second + 1})
    return sorted({1, max(1, second - 1), second, second + 1, nproc})


def run_case(case: Case, tree: Path, subset: tuple[str, ...], rounds: int, timeout: float, quick: bool) -> dict:
    shutil.rmtree(case.state, ignore_errors=True)
    first = case.plan(tree)
    j1 = first["jobs"]["value"]
    log(f"[{case.name}] first plan: -j{j1}: {first['jobs']['reason'][:240]}")
    clean(case.build, subset)
    t0 = time.monotonic()
    done = case.kprov("build", "--as-root", "--tree", str(tree), "--build-dir", str(case.build), "--target",
                      case.target, "--no-ccache", "--", f"-j{j1}", *subset)
    built_s = time.monotonic() - t0
    summary = [line for line in done.stdout.splitlines() if line.startswith(("kprov build", "  compile", "  next plan"))]
    log(f"[{case.name}] kprov build -j{j1}: exit {done.returncode}, {built_s:.0f} s; " + " | ".join(s.strip() for s in summary)[:600])
    second = case.plan(tree)
    j2 = second["jobs"]["value"]
    reason = second["jobs"]["reason"]
    measured = "measured by kprov build" in reason
    log(f"[{case.name}] second plan: -j{j2} (recorded figures used: {measured}): {reason[:600]}")
    times: dict[int, list[float]] = {}
    order = sweep_of(j2, case.scenario.nproc(), quick)
    for r in range(rounds):
        for jobs in order[r % len(order):] + order[: r % len(order)]:
            result = _build(tree, case, jobs, subset, timeout)
            log(f"[{case.name}] round {r + 1} -j{jobs}: {result['seconds']} s {result['status']}")
            if result["status"] == "ok":
                times.setdefault(jobs, []).append(result["seconds"])
    medians = {j: statistics.median(ts) for j, ts in times.items()}
    best = min(medians.values()) if medians else None
    ratio = medians.get(j2, float("inf")) / best if best else float("inf")
    return {"case": case.name, "first": j1, "second": j2, "measured": measured, "medians": medians,
            "best": best, "ratio": ratio}


def _build(tree: Path, case: Case, jobs: int, subset: tuple[str, ...], timeout: float) -> dict:
    """bench_jobs.build_once (clean the subset, build it at -j inside the scenario) on ``subset``."""
    import bench_jobs

    saved = bench_jobs.SUBSET
    bench_jobs.SUBSET = subset
    try:
        return build_once(tree, case.build, jobs, case.scenario, timeout)
    finally:
        bench_jobs.SUBSET = saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the plain scenario, a small subset, one round")
    parser.add_argument("--scenarios", default="plain,cap-zram,cap-noswap,one-cpu,kasan")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cap-mib", type=int, default=768, help="the cap of the capped scenarios")
    parser.add_argument("--zram-mib", type=int, default=384, help="zram0's size in the cap+zram scenario")
    parser.add_argument("--work", default="/var/tmp/kprov-bench-feedback")
    parser.add_argument("--timeout", type=float, default=1500.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_feedback.py needs root: cgroups, zram, kprov build --as-root")
    import pytest
    from test_kconfig import linux_source

    try:
        tree = linux_source()
    except pytest.skip.Exception as exc:
        raise SystemExit(f"no kernel tree: {exc}") from None
    names = ["plain"] if args.quick else args.scenarios.split(",")
    subset = QUICK_SUBSET if args.quick else SUBSET
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log(f"tree {tree}; subset {' '.join(subset)}; scenarios {','.join(names)}; rounds {args.rounds}")
    cpus = os.sched_getaffinity(0)
    results, groups = [], []
    zram: Zram | None = None
    try:
        for name in names:
            kasan = name == "kasan"
            build = work / ("defconfig-kasan" if kasan else "defconfig")
            configure(tree, build, kasan)
            target = "olddefconfig" if kasan else "defconfig"
            if name == "plain" or kasan:
                scenario = Scenario(name)
            elif name == "cap-zram":
                zram = Zram(args.zram_mib << 20)
                if not zram.active:
                    log(f"[cap-zram] skipped: {zram.why}")
                    continue
                group = MemoryCgroup(f"kprov-feedback-{os.getpid()}-zram", args.cap_mib << 20)
                groups.append(group)
                scenario = Scenario(name, group)
            elif name == "cap-noswap":
                group = NoSwapCgroup(f"kprov-feedback-{os.getpid()}-noswap", args.cap_mib << 20)
                groups.append(group)
                scenario = Scenario(name, group)
            elif name == "one-cpu":
                scenario = Scenario(name, cpus={min(cpus)})
            else:
                raise SystemExit(f"unknown scenario {name}")
            results.append(run_case(Case(name, scenario, build, target), tree, subset, args.rounds, args.timeout,
                                    args.quick))
            if name == "cap-zram" and zram is not None:
                zram.close()
                zram = None
    finally:
        for group in groups:
            group.remove()
        if zram is not None:
            zram.close()
    log("")
    log("scenario     first -j  second -j  measured  sweep (median s)                 best s  second/best  <=1.05")
    for r in results:
        sweep = " ".join(f"-j{j}:{s:.0f}" for j, s in sorted(r["medians"].items()))
        log(f"{r['case']:<12} {r['first']:>8}  {r['second']:>9}  {str(r['measured']):<8}  {sweep:<32} "
            f"{(r['best'] or 0):>6.0f}  {r['ratio']:>11.2f}  {'yes' if r['ratio'] <= 1.05 else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
