"""Synthetic hosts for the golden outputs: each is a suite fixture with the fields that make the
shape changed (a small board, a cgroup limit below RAM, a CPU quota, a 1 GiB host without swap,
kprov's own zram active, a many-core workstation). Written as JSON by ``regen.py``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GIB = 1 << 30
MIB = 1 << 20


def _load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _with(base: str, **changes) -> dict:
    data = copy.deepcopy(_load(base))
    for dotted, value in changes.items():
        node = data
        keys = dotted.split("__")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return data


def synthetic() -> dict[str, dict]:
    return {
        "board-4c-512m": _with(
            "rpi4-4g", hostname="board", memory__total_bytes=512 * MIB, memory__available_bytes=400 * MIB,
        ),
        "tiny-1c-1g-noswap": _with(
            "vps-1cpu-2g", hostname="tiny", memory__total_bytes=1 * GIB, memory__available_bytes=800 * MIB,
        ),
        "cgroup-2g-on-24g": _with(
            "debian12-2c-24g", hostname="cg2g", memory__cgroup_limit_bytes=2 * GIB,
            memory__cgroup_usage_bytes=100 * MIB, virtualization="container",
        ),
        "quota-2.5-on-8c": _with(
            "laptop-8c-16g", hostname="quota", cpu__cgroup_quota=2.5, cpu__usable=3,
        ),
        "kprov-zram-active": _with(
            "vps-1cpu-2g", hostname="zramhost", memory__swap_total_bytes=1006 * MIB,
            memory__swap_free_bytes=1006 * MIB, memory__zram_swap_bytes=1006 * MIB,
            zram__devices_in_use=["zram0"], zram__kprov_devices=["zram0"],
        ),
        "many-128c-512g": _with(
            "workstation-64c-256g", hostname="many", cpu__logical=128, cpu__affinity=128, cpu__usable=128,
            cpu__physical_cores=64, memory__total_bytes=512 * GIB, memory__available_bytes=480 * GIB,
        ),
        "clang-lld-16c-32g": _with(
            "laptop-8c-16g", hostname="llvm", cpu__logical=16, cpu__affinity=16, cpu__usable=16,
            memory__total_bytes=32 * GIB, memory__available_bytes=28 * GIB,
            toolchain__clang="16.0.6", toolchain__gcc=None,
        ),
        "fedora-8g-swap": _with(
            "fedora-40", hostname="fed8", memory__total_bytes=8 * GIB, memory__available_bytes=6 * GIB,
            memory__swap_total_bytes=8 * GIB, memory__swap_free_bytes=7 * GIB,
        ),
        "arch-6c-affinity-2": _with("arch", hostname="pinned", cpu__affinity=2, cpu__usable=2),
        "alpine-2c-3g-container": _with(
            "alpine-3.20", hostname="ci", virtualization="container", memory__cgroup_limit_bytes=3 * GIB,
        ),
    }
