#!/usr/bin/env python3
"""Benchmark (not a test): plan fleets whose every host is in one distcc farm, and render them.

    .venv/bin/python tests/bench_fleet.py [--sizes 250,500,1000] [--server-share 10] [--runs 3]

For each size N: N hosts, all farm members (every member in every member's /etc/hosts), one in
--server-share of them a distcc server and the rest clients. Prints the median wall time of
plan_fleet, of render_fleet (the table) and of fleet_json over --runs runs, and the time per host,
which stays flat when the cost is linear in hosts. Target here: 1,000 hosts planned and rendered
in <= 2 s. Facts are synthetic HostFacts of varied sizes; the planning is the real one. Numbers
are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

from provision.facts.catalog import load_catalog
from provision.fleet.plan import plan_fleet
from provision.fleet.table import fleet_json, render_fleet
from provision.model.facts import CpuFacts, DiskFacts, DistroFacts, HostFacts, MemoryFacts, ZramFacts
from provision.model.goals import Goals
from provision.units import GIB

SHAPES = [  # (usable CPUs, RAM GiB, distro id, family)
    (1, 2, "debian", "debian"),
    (2, 4, "ubuntu", "debian"),
    (4, 8, "fedora", "redhat"),
    (8, 16, "debian", "debian"),
    (16, 64, "arch", "arch"),
    (32, 128, "opensuse-tumbleweed", "suse"),
    (64, 256, "debian", "debian"),
]
TARGET_SECONDS = 2.0


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


def measure(hosts: int, server_share: int, runs: int) -> dict[str, float]:
    names = [f"host{i:04d}" for i in range(hosts)]
    facts = {n: synthetic_facts(i) for i, n in enumerate(names)}
    servers = max(1, hosts // server_share)
    groups = {"all": names, "distcc_servers": names[:servers], "distcc_clients": names[servers:]}
    catalog = load_catalog()
    goals = Goals()
    times: dict[str, list[float]] = {"plan": [], "render": [], "json": []}
    for _ in range(runs):
        t0 = time.perf_counter()
        plans = plan_fleet(facts, groups, goals, catalog)
        t1 = time.perf_counter()
        render_fleet(plans, groups)
        t2 = time.perf_counter()
        fleet_json(plans)
        t3 = time.perf_counter()
        times["plan"].append(t1 - t0)
        times["render"].append(t2 - t1)
        times["json"].append(t3 - t2)
    result = {k: statistics.median(v) for k, v in times.items()}
    result["servers"] = servers
    result["entries"] = len(plans.host_entries)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250,500,1000", help="comma-separated host counts")
    ap.add_argument("--server-share", type=int, default=10, help="one host in N is a distcc server")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    print(f"fleets where every host is a distcc farm member (1 in {args.server_share} a server), "
          f"median of {args.runs} runs")
    print(f"{'hosts':>6} {'servers':>8} {'/etc/hosts':>11} {'plan_fleet':>11} {'render':>8} "
          f"{'plan+render':>12} {'per host':>9} {'fleet_json':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        r = measure(size, args.server_share, args.runs)
        total = r["plan"] + r["render"]
        print(f"{size:>6} {int(r['servers']):>8} {int(r['entries']):>11} {r['plan']:>10.3f}s {r['render']:>7.3f}s {total:>11.3f}s "
              f"{total / size * 1e3:>7.2f}ms {r['json']:>10.3f}s")
    print(f"target: 1,000 hosts planned and rendered in <= {TARGET_SECONDS:g} s, per-host time flat")


if __name__ == "__main__":
    main()
