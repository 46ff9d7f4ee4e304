"""kprov's -j against a sweep of -j on a real kernel build (a script, not a test).

A fixed subset of Debian's linux-source 6.1 defconfig (the objects of kernel/ mm/ fs/ext4/
net/ipv4/, ~425 units) is built out of tree, without ccache, under three scenarios:

  (a) unlimited  - the machine as it is;
  (b) capped     - a cgroup memory cap (v1 or v2, whichever the host has) small enough that memory
                   limits kprov's plan, with zram swap active;
  (c) one-cpu    - affinity to one CPU;
  (d) no-swap    - a cgroup that may not swap (v1 memory.memsw.limit_in_bytes = its limit, v2
                   memory.swap.max 0: a container run with --memory-swap = --memory), with zram swap
                   active on the host that the cgroup cannot use (docs/calibration.md §14).

In each scenario ``kprov plan`` runs *inside* it (the same cgroup, the same affinity), then the
subset is built at -j around its answer; rounds are interleaved (the machine is shared, timings are
noisy: REFERENCE §1). Printed: the wall time of every -j per round, kprov's median as a ratio to the
sweep's best and to nproc's. Target: kprov <= 1.05x the best and <= nproc's in every scenario; in
the no-swap scenario kprov's -j is never killed by the OOM killer where -j1 finishes.

    .venv/bin/python tests/bench_jobs.py [--rounds 2] [--scenarios unlimited,capped,one-cpu,no-swap]

Run as root (the cgroup and zram need it). zram0 is used only when it is free (not swap, disksize
0) and is reset afterwards; a run that exceeds its timeout (a livelock under the cap) is killed and
reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

SUBSET = ("kernel/", "mm/", "fs/ext4/", "net/ipv4/")
ENV = {
    "LC_ALL": "C",
    "CCACHE_DISABLE": "1",
    "KBUILD_BUILD_TIMESTAMP": "1970-01-01 00:00:00 UTC",
    "KBUILD_BUILD_USER": "kbuild",
    "KBUILD_BUILD_HOST": "kprov",
}


def log(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- cgroup


class MemoryCgroup:
    """A child memory cgroup of the one this script runs in, with a cap; v1 or v2."""

    def __init__(self, name: str, limit: int | None, swap: bool = True):
        self.version, self.path = self._create(name)
        self.swap = swap
        self.set_limit(limit)

    @staticmethod
    def _own(controller: str | None) -> str:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, controllers, path = line.split(":", 2)
            if (controller is None and controllers == "") or (controller and controller in controllers.split(",")):
                return path
        raise RuntimeError("no cgroup of that kind")

    def _create(self, name: str) -> tuple[int, Path]:
        v1 = Path("/sys/fs/cgroup/memory")
        if (v1 / "memory.limit_in_bytes").exists():
            path = v1 / self._own("memory").lstrip("/") / name
            path.mkdir(exist_ok=True)
            return 1, path
        parent = Path("/sys/fs/cgroup") / self._own(None).lstrip("/")
        (parent / "cgroup.subtree_control").write_text("+memory")  # fails when the parent holds processes
        path = parent / name
        path.mkdir(exist_ok=True)
        return 2, path

    def set_limit(self, limit: int | None) -> None:
        """``None``: no cap (the cgroup only measures)."""
        self.limit = limit
        value = str(limit) if limit is not None else ("-1" if self.version == 1 else "max")
        (self.path / ("memory.limit_in_bytes" if self.version == 1 else "memory.max")).write_text(value)
        if not self.swap:
            # may not swap: v1 memsw (memory + swap) = the limit, v2 memory.swap.max 0
            name, no_swap = ("memory.memsw.limit_in_bytes", value) if self.version == 1 else ("memory.swap.max", "0")
            if not (self.path / name).exists():
                raise SystemExit(f"no {name}: this kernel does not account swap per cgroup (swapaccount=1)")
            (self.path / name).write_text(no_swap)

    def oom_kills(self) -> int:
        """Processes of the cgroup the OOM killer killed (v1 memory.oom_control, v2 memory.events)."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in (self.path / name).read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def anon(self) -> int:
        """Anonymous memory of the cgroup now, swapped-out pages included (not the page cache)."""
        stat = dict(line.split() for line in (self.path / "memory.stat").read_text().splitlines())
        if self.version == 1:
            return int(stat.get("total_rss", 0)) + int(stat.get("total_swap", 0))
        swap = self.path / "memory.swap.current"
        return int(stat.get("anon", 0)) + (int(swap.read_text()) if swap.exists() else 0)

    def pids(self) -> list[int]:
        return [int(x) for x in (self.path / "cgroup.procs").read_text().split()]

    def reset_peak(self) -> None:
        if self.version == 1:
            (self.path / "memory.max_usage_in_bytes").write_text("0")
            (self.path / "memory.failcnt").write_text("0")
        elif (self.path / "memory.peak").exists():
            try:
                (self.path / "memory.peak").write_text("0")  # newer kernels reset on write
            except OSError:
                pass

    def peak(self) -> int:
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.path / name).read_text())
        except (OSError, ValueError):
            return 0

    def failcnt(self) -> int:
        if self.version == 1:
            return int((self.path / "memory.failcnt").read_text())
        for line in (self.path / "memory.events").read_text().splitlines():
            if line.startswith("max "):
                return int(line.split()[1])
        return 0

    def enter(self) -> None:
        """In a child between fork and exec: move it into the cgroup."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.2)


class Sampler(threading.Thread):
    """Samples the cgroup's anonymous memory every 0.1 s, and the RssAnon + VmSwap of every process
    that is not a compile job (make, shells, kbuild scripts: the build's base). Records each cc1's
    own peak, for the per-job figures."""

    JOBS = ("cc1", "as", "gcc", "x86_64-linux-gnu-gcc-12", "gcc-12")

    def __init__(self, cgroup: MemoryCgroup):
        super().__init__(daemon=True)
        self.cgroup = cgroup
        self.stop = threading.Event()
        self.anon_peak = 0
        self.base_peak = 0
        self.job_peaks: dict[int, int] = {}

    @staticmethod
    def _status(pid: int) -> tuple[str, int]:
        name, anon = "", 0
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Name:"):
                    name = line.split()[1]
                elif line.startswith(("RssAnon:", "VmSwap:")):
                    anon += int(line.split()[1]) << 10
        except OSError:
            pass
        return name, anon

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                total = self.cgroup.anon()
                base = 0
                for pid in self.cgroup.pids():
                    name, anon = self._status(pid)
                    if name not in self.JOBS:
                        base += anon
                    elif name == "cc1":
                        self.job_peaks[pid] = max(self.job_peaks.get(pid, 0), anon)
            except (OSError, ValueError):
                continue
            self.anon_peak = max(self.anon_peak, total)
            self.base_peak = max(self.base_peak, base)

    def figures(self) -> dict:
        peaks = sorted(self.job_peaks.values())
        def q(f: float) -> int:
            return peaks[min(len(peaks) - 1, int(f * len(peaks)))] >> 20 if peaks else 0
        return {
            "anon_peak_mib": self.anon_peak >> 20,
            "base_peak_mib": self.base_peak >> 20,
            "cc1_anon_mib": {"n": len(peaks), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0)},
        }


# --------------------------------------------------------------------------- zram


class Zram:
    """zram0 as swap for the capped scenario, only when nobody else uses it."""

    def __init__(self, size: int, algorithm: str = "lz4"):
        self.device = Path("/sys/block/zram0")
        self.active = False
        self.why = ""
        self.size = 0
        if not self.device.exists():
            self.why = "no /sys/block/zram0"
            return
        swaps = Path("/proc/swaps").read_text()
        if "/dev/zram0" in swaps or int((self.device / "disksize").read_text()) != 0:
            self.why = "zram0 is in use by someone else"
            return
        offered = (self.device / "comp_algorithm").read_text().replace("[", "").replace("]", "").split()
        self.algorithm = algorithm if algorithm in offered else offered[0]
        self.resize(size)

    def resize(self, size: int) -> None:
        if self.active:
            subprocess.run(["swapoff", "/dev/zram0"], check=True)
            (self.device / "reset").write_text("1")
            self.active = False
        (self.device / "comp_algorithm").write_text(self.algorithm)
        (self.device / "disksize").write_text(str(size))
        subprocess.run(["mkswap", "/dev/zram0"], check=True, capture_output=True)
        subprocess.run(["swapon", "-p", "100", "/dev/zram0"], check=True)
        self.active = True
        self.size = size

    def close(self) -> None:
        if self.active:
            subprocess.run(["swapoff", "/dev/zram0"], check=False)
            (self.device / "reset").write_text("1")
            self.active = False


# --------------------------------------------------------------------------- scenarios


class Scenario:
    def __init__(self, name: str, cgroup: MemoryCgroup | None = None, cpus: set[int] | None = None):
        self.name, self.cgroup, self.cpus = name, cgroup, cpus

    def preexec(self) -> None:
        os.setsid()
        if self.cpus is not None:
            os.sched_setaffinity(0, self.cpus)
        if self.cgroup is not None:
            self.cgroup.enter()

    def nproc(self) -> int:
        return len(self.cpus) if self.cpus is not None else len(os.sched_getaffinity(0))

    def kprov_jobs(self) -> tuple[int, str]:
        """kprov plan, run inside the scenario."""
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        argv = [str(ROOT / ".venv" / "bin" / "kprov"), "plan", "--json", "--target", "defconfig", "--no-ccache"]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, preexec_fn=self.preexec, check=True)
        plan = json.loads(done.stdout)
        return plan["jobs"]["value"], plan["jobs"]["reason"]


def clean(build: Path) -> None:
    for part in SUBSET:
        for obj in (build / part).rglob("*.o"):
            obj.unlink()
        for arc in (build / part).rglob("*.a"):
            arc.unlink()


def build_once(tree: Path, build: Path, jobs: int, scenario: Scenario, timeout: float) -> dict:
    clean(build)
    if scenario.cgroup is not None:
        scenario.cgroup.reset_peak()
    argv = ["make", "-s", "-C", str(tree), f"O={build}", f"-j{jobs}", *SUBSET]
    kills = scenario.cgroup.oom_kills() if scenario.cgroup is not None else 0
    start = time.monotonic()
    # no thread runs during the fork: the sampler starts after it
    proc = subprocess.Popen(
        argv, env=dict(os.environ, **ENV), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=scenario.preexec,  # noqa: PLW1509
    )
    sampler = Sampler(scenario.cgroup) if scenario.cgroup is not None else None
    if sampler is not None:
        sampler.start()
    try:
        _out, err = proc.communicate(timeout=timeout)
        status = "ok" if proc.returncode == 0 else f"failed ({err.decode(errors='replace').strip().splitlines()[-1:]})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        status = f"killed after {timeout:.0f} s (no progress: a livelock under the cap)"
    seconds = time.monotonic() - start
    result = {"jobs": jobs, "seconds": round(seconds, 1), "status": status}
    if scenario.cgroup is not None:
        sampler.stop.set()
        sampler.join()
        result["peak_mib"] = scenario.cgroup.peak() >> 20
        result["failcnt"] = scenario.cgroup.failcnt()
        result["oom_kills"] = scenario.cgroup.oom_kills() - kills
        if result["oom_kills"] and status != "ok":
            result["status"] = f"killed by the OOM killer after {seconds:.0f} s"
        result.update(sampler.figures())
    return result


def configure(tree: Path, build: Path) -> None:
    if not (build / ".config").is_file():
        subprocess.run(["make", "-s", "-C", str(tree), f"O={build}", "defconfig"], check=True, env=dict(os.environ, **ENV))
    jobs = len(os.sched_getaffinity(0))
    subprocess.run(["make", "-s", "-C", str(tree), f"O={build}", f"-j{jobs}", "prepare"], check=True, env=dict(os.environ, **ENV))


def choose_cap(nproc: int, start_mib: int, zram: Zram | None, zram_share: float) -> tuple[int, int]:
    """The largest cap (in 32 MiB steps down from ``start_mib``) at which kprov, inside it, plans fewer
    jobs than nproc: where memory limits the plan. The zram device is resized with the cap (a small
    host's zram is a share of its RAM)."""
    mib = start_mib
    cgroup = MemoryCgroup(f"kprov-bench-probe-{os.getpid()}", mib << 20)
    try:
        while mib > 128:
            cgroup.set_limit(mib << 20)
            if zram is not None and zram.active and zram_share:
                zram.resize(int(mib * zram_share) << 20)
            jobs, _why = Scenario("probe", cgroup).kprov_jobs()
            if jobs < nproc:
                return mib, jobs
            mib -= 32
    finally:
        cgroup.remove()
    raise SystemExit("no cap above 128 MiB makes memory limit kprov's plan")


def sweep_for(kprov: int, nproc: int) -> list[int]:
    """-j around kprov's answer, nproc's, and one job more than each."""
    return sorted({1, max(1, kprov - 1), kprov, kprov + 1, nproc, nproc + 1})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenarios", default="unlimited,capped,one-cpu")
    parser.add_argument("--cap-mib", type=int, default=0, help="the cap of the capped scenario (default: found)")
    parser.add_argument(
        "--zram-share", type=float, default=0.5,
        help="zram device size as a share of the cap, like a small host's zram of its RAM (default 0.5)",
    )
    parser.add_argument("--zram-mib", type=int, default=0, help="a fixed zram device size instead of --zram-share")
    parser.add_argument(
        "--no-swap-cap-mib", type=int, default=224,
        help="the limit of the no-swap scenario (default 224 MiB: where docs/calibration.md §14 saw -j2 killed)",
    )
    parser.add_argument("--work", default="/var/tmp/kprov-bench")
    parser.add_argument("--timeout", type=float, default=1500.0, help="seconds before a run counts as a livelock")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_jobs.py needs root: it creates a cgroup and sets up zram")

    import pytest
    from test_kconfig import linux_source

    try:
        tree = linux_source()
    except pytest.skip.Exception as exc:  # its skip, outside pytest
        raise SystemExit(f"no kernel tree: {exc}") from None
    work = Path(args.work)
    build = work / "defconfig"
    work.mkdir(parents=True, exist_ok=True)
    log(f"tree {tree}, build {build}; subset {' '.join(SUBSET)}; rounds {args.rounds}")
    configure(tree, build)

    names = args.scenarios.split(",")
    all_cpus = os.sched_getaffinity(0)
    scenarios: list[Scenario] = []
    zram: Zram | None = None
    cgroup: MemoryCgroup | None = None
    measuring: MemoryCgroup | None = None
    no_swap: MemoryCgroup | None = None
    try:
        if "unlimited" in names:  # in a cgroup without a cap: it only measures
            measuring = MemoryCgroup(f"kprov-bench-measure-{os.getpid()}", None)
            scenarios.append(Scenario("unlimited", measuring))
        if "capped" in names:
            share = 0.0 if args.zram_mib else args.zram_share
            zram = Zram((args.zram_mib or 1024) << 20)
            if args.cap_mib:
                cap = args.cap_mib
                if zram.active and share:
                    zram.resize(int(cap * share) << 20)
            else:
                cap, _ = choose_cap(len(all_cpus), 1024, zram, share)
            log(f"zram: {f'zram0 active, {zram.size >> 20} MiB {zram.algorithm}' if zram.active else 'not used: ' + zram.why}")
            cgroup = MemoryCgroup(f"kprov-bench-{os.getpid()}", cap << 20)
            log(f"cap: {cap} MiB (cgroup v{cgroup.version} {cgroup.path})")
            scenarios.append(Scenario(f"capped {cap} MiB" + (" + zram" if zram.active else ""), cgroup))
        if "one-cpu" in names:
            scenarios.append(Scenario("one-cpu", cpus={min(all_cpus)}))
        if "no-swap" in names:
            if zram is None:  # zram active on the host, which the cgroup may not use
                zram = Zram((args.no_swap_cap_mib // 2) << 20)
                log(f"zram: {f'zram0 active, {zram.size >> 20} MiB {zram.algorithm}' if zram.active else 'not used: ' + zram.why}")
            no_swap = MemoryCgroup(f"kprov-bench-noswap-{os.getpid()}", args.no_swap_cap_mib << 20, swap=False)
            log(f"no-swap: {args.no_swap_cap_mib} MiB, may not swap (cgroup v{no_swap.version} {no_swap.path})")
            scenarios.append(Scenario(f"no-swap {args.no_swap_cap_mib} MiB", no_swap))

        plans = {}
        for sc in scenarios:
            jobs, why = sc.kprov_jobs()
            plans[sc.name] = jobs
            log(f"[{sc.name}] kprov plan inside: -j{jobs} (nproc {sc.nproc()}): {why[:300]}")
        results: dict[str, dict[int, list[dict]]] = {sc.name: {} for sc in scenarios}
        for round_ in range(args.rounds):
            for sc in scenarios:
                order = sweep_for(plans[sc.name], sc.nproc())
                order = order[round_ % len(order):] + order[: round_ % len(order)]  # rotate: interleave
                for jobs in order:
                    best = min((r["seconds"] for rs in results[sc.name].values() for r in rs if r["status"] == "ok"), default=None)
                    timeout = min(args.timeout, 4 * best) if best else args.timeout
                    r = build_once(tree, build, jobs, sc, timeout)
                    results[sc.name].setdefault(jobs, []).append(r)
                    extra = (
                        f", peak {r['peak_mib']} MiB (anonymous {r['anon_peak_mib']}, of it base {r['base_peak_mib']}), "
                        f"failcnt {r['failcnt']}, cc1 anonymous peaks {r['cc1_anon_mib']}"
                        if "peak_mib" in r else ""
                    )
                    log(f"round {round_ + 1} [{sc.name}] -j{jobs}: {r['seconds']} s {r['status']}{extra}")
    finally:
        for group in (cgroup, measuring, no_swap):
            if group is not None:
                group.remove()
        if zram is not None:
            zram.close()

    log("")
    log("scenario                    -j: median s (runs)                          kprov  best   kprov/best  kprov/nproc")
    verdicts = []
    for sc in scenarios:
        medians = {}
        cells = []
        for jobs, rs in sorted(results[sc.name].items()):
            ok = [r["seconds"] for r in rs if r["status"] == "ok"]
            medians[jobs] = statistics.median(ok) if len(ok) == len(rs) else float("inf")
            cells.append(f"-j{jobs} {medians[jobs]:.0f} ({', '.join(str(r['seconds']) if r['status'] == 'ok' else 'killed' for r in rs)})")
        kprov = plans[sc.name]
        best_j = min(medians, key=medians.get)
        ratio_best = medians[kprov] / medians[best_j]
        ratio_nproc = medians[kprov] / medians[sc.nproc()]  # 0 when nproc's build failed or was killed
        nproc_text = f"{ratio_nproc:.2f}" if ratio_nproc else "- (nproc's build did not finish)"
        log(f"{sc.name:27} {'; '.join(cells)}")
        log(f"{'':27} kprov -j{kprov}, best -j{best_j}: kprov/best {ratio_best:.2f}, kprov/nproc (-j{sc.nproc()}) {nproc_text}")
        if sc.cgroup is not None and not sc.cgroup.swap:
            # no swap: a build that does not fit is killed; kprov's must finish wherever -j1 does
            one_ok = medians.get(1, float("inf")) != float("inf")
            kprov_ok = medians[kprov] != float("inf")
            verdicts.append(ratio_best <= 1.05 and (kprov_ok or not one_ok))
            log(f"{'':27} no swap: -j1 {'finished' if one_ok else 'did not finish'}, kprov's -j{kprov} "
                f"{'finished' if kprov_ok else 'did NOT finish'}")
        else:
            verdicts.append(ratio_best <= 1.05 and ratio_nproc <= 1.0)
    log("target met" if all(verdicts) else "target NOT met in every scenario")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
