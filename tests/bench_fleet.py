#!/usr/bin/env python3
"""Benchmark (not a test): plan a fleet of 1,000 hosts through plan_fleet and render its table.

    .venv/bin/python tests/bench_fleet.py [--hosts 1000] [--servers 20] [--clients 80] [--runs 5]

Prints the median wall time of each stage over --runs runs (target here: <= 1 s for 1,000 hosts,
planning and rendering together). Facts are synthetic HostFacts of varied sizes, the planning is
the real one (two passes for farm members). Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

from provision import fleet
from provision.catalog import load_catalog
from provision.model import GIB, CpuFacts, DiskFacts, DistroFacts, Goals, HostFacts, MemoryFacts, ZramFacts

SHAPES = [  # (usable CPUs, RAM GiB, distro id, family)
    (1, 2, "debian", "debian"),
    (2, 4, "ubuntu", "debian"),
    (4, 8, "fedora", "redhat"),
    (8, 16, "debian", "debian"),
    (16, 64, "arch", "arch"),
    (32, 128, "opensuse-tumbleweed", "suse"),
    (64, 256, "debian", "debian"),
]


def synthetic_facts(i: int) -> HostFacts:
    cpus, ram_gib, distro, family = SHAPES[i % len(SHAPES)]
    ram = ram_gib * GIB
    return HostFacts(
        hostname=f"host{i:04d}",
        arch="x86_64",
        cpu=CpuFacts(logical=cpus, usable=cpus, affinity=cpus, physical_cores=max(1, cpus // 2)),
        memory=MemoryFacts(total_bytes=ram, available_bytes=ram * 3 // 4),
        distro=DistroFacts(id=distro, family=family),
        disks=(
            DiskFacts(role="build", path="/home", mount="/home", free_bytes=(50 + i % 400) * GIB, total_bytes=500 * GIB),
            DiskFacts(role="ccache", path="/var/cache/ccache", mount="/", free_bytes=(20 + i % 80) * GIB, total_bytes=100 * GIB),
        ),
        zram=ZramFacts(compressors=("lzo-rle", "lzo", "lz4", "zstd")[: 3 + i % 2], source="sysfs", device_present=True),
        toolchain={"gcc": "12.2.0", "make": "4.3", "ccache": "4.7.5", "distcc": "3.4"},
        default_ipv4=f"10.{i // 250 // 256}.{i // 250 % 256}.{i % 250 + 1}",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--servers", type=int, default=20)
    ap.add_argument("--clients", type=int, default=80)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    names = [f"host{i:04d}" for i in range(args.hosts)]
    facts = {n: synthetic_facts(i) for i, n in enumerate(names)}
    groups = {
        "all": names,
        "distcc_servers": names[: args.servers],
        "distcc_clients": names[args.servers : args.servers + args.clients],
    }
    catalog = load_catalog()
    goals = Goals()

    plan_times, render_times, json_times = [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        plans = fleet.plan_fleet(facts, groups, goals, catalog)
        t1 = time.perf_counter()
        text = fleet.render_fleet(plans, groups)
        t2 = time.perf_counter()
        fleet.fleet_json(plans)
        t3 = time.perf_counter()
        plan_times.append(t1 - t0)
        render_times.append(t2 - t1)
        json_times.append(t3 - t2)

    farm = args.servers + args.clients
    med = statistics.median
    print(f"fleet: {args.hosts} hosts ({args.servers} distcc servers, {args.clients} clients, "
          f"{args.hosts - farm} outside the farm), median of {args.runs} runs")
    print(f"  plan_fleet (two passes for the {farm} farm members): {med(plan_times):.3f} s")
    print(f"  render_fleet (table, {len(text.splitlines())} lines):           {med(render_times):.3f} s")
    print(f"  plan + render:                                    {med(plan_times) + med(render_times):.3f} s"
          f"  (target <= 1 s)")
    print(f"  fleet_json (plan.to_dict for every host):         {med(json_times):.3f} s")


if __name__ == "__main__":
    main()
