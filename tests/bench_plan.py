#!/usr/bin/env python3
"""Benchmark (not a test): cold wall time of `kprov plan --json` beside a bare import.

    python tests/bench_plan.py [--runs 10]

Prints the median and spread of each over N fresh processes, and the ratio. Targets on a 2-core
machine: median <= 0.3 s and <= 3x the bare `import psutil, distro`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    kprov = shutil.which("kprov") or ""
    plan_cmd = [kprov, "plan", "--json"] if kprov else [sys.executable, "-m", "provision.cli", "plan", "--json"]
    bare_cmd = [sys.executable, "-c", "import psutil, distro"]
    timed(plan_cmd, 1)  # warm the page cache once, then measure cold processes
    # interleave the two so machine noise hits both alike
    plan_t, bare_t = [], []
    for _ in range(args.runs):
        plan_t += timed(plan_cmd, 1)
        bare_t += timed(bare_cmd, 1)
    p, b = statistics.median(plan_t), statistics.median(bare_t)
    print(f"kprov plan --json        median {p:.3f} s  (min {min(plan_t):.3f}, max {max(plan_t):.3f}, n={args.runs})")
    print(f"import psutil, distro    median {b:.3f} s  (min {min(bare_t):.3f}, max {max(bare_t):.3f}, n={args.runs})")
    print(f"ratio                    {p / b:.2f}x   targets: <= 0.300 s and <= 3.00x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
