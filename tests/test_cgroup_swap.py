"""A cgroup that may not swap (docker --memory-swap = --memory, Kubernetes, MemorySwapMax=0): the
swap limit and memory.high are read into the facts, and the plan counts no zram for -j there."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import no_swap_cgroup_under, own_v1_memory_cgroup

from provision.facts.ansible import facts_from_ansible
from provision.facts.catalog import load_catalog
from provision.facts.local import sysprobe
from provision.model.facts import HostFacts, MemoryFacts
from provision.model.goals import Goals
from provision.planner import plan

SP = sysprobe()
MIB = 1 << 20
V1_SENTINEL = "9223372036854771712"
FIXTURES = Path(__file__).parent / "fixtures"
KPROV = Path(sys.executable).parent / "kprov"


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


# --------------------------------------------------------------------------- pure parsers


@pytest.mark.parametrize(
    ("limit", "memsw", "expected"),
    [
        (str(224 * MIB), str(224 * MIB), 0),  # docker --memory-swap = --memory
        (str(224 * MIB), str(512 * MIB), 288 * MIB),
        (str(224 * MIB), V1_SENTINEL, None),  # swap unlimited
        (str(224 * MIB), None, None),  # no swap accounting: memsw file absent
        (V1_SENTINEL, str(1 << 30), 1 << 30),  # memory unlimited, memory + swap capped
        (str(512 * MIB), str(224 * MIB), 0),  # memsw below the limit: the kernel refuses, read as none
    ],
)
def test_parse_swap_limit_v1(limit, memsw, expected):
    assert SP.parse_swap_limit(limit, memsw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0\n", 0), ("max\n", None), ("1073741824\n", 1 << 30), ("", None), (None, None), ("garbage", None)],
)
def test_parse_swap_max_v2(text, expected):
    assert SP.parse_swap_max(text) == expected


# --------------------------------------------------------------------------- readers on fake trees


def _v1(tmp_path: Path, memsw: str | None, parent_memsw: str | None = V1_SENTINEL) -> Path:
    write(tmp_path, "/proc/self/cgroup", "12:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n")
    base = "/sys/fs/cgroup/memory/docker/abc"
    write(tmp_path, f"{base}/memory.limit_in_bytes", f"{224 * MIB}\n")
    write(tmp_path, f"{base}/memory.usage_in_bytes", "1048576\n")
    if memsw is not None:
        write(tmp_path, f"{base}/memory.memsw.limit_in_bytes", memsw + "\n")
    write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", V1_SENTINEL + "\n")
    if parent_memsw is not None:
        write(tmp_path, "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", parent_memsw + "\n")
    return tmp_path


def test_v1_memsw_equal_to_the_limit_reads_as_no_swap(tmp_path: Path):
    limits = SP.cgroup_limits(str(_v1(tmp_path, str(224 * MIB))))
    assert limits["memory_limit_bytes"] == 224 * MIB
    assert limits["swap_limit_bytes"] == 0
    assert limits["memory_high_bytes"] is None
    probe = SP.probe(str(tmp_path))
    assert probe["memory"]["cgroup_swap_limit_bytes"] == 0


def test_v1_unlimited_or_absent_memsw_reads_as_unknown(tmp_path: Path):
    assert SP.cgroup_limits(str(_v1(tmp_path / "a", V1_SENTINEL)))["swap_limit_bytes"] is None
    assert SP.cgroup_limits(str(_v1(tmp_path / "b", None, None)))["swap_limit_bytes"] is None


def test_v1_a_parent_without_swap_binds_the_child(tmp_path: Path):
    root = _v1(tmp_path, V1_SENTINEL, parent_memsw=None)
    write(root, "/sys/fs/cgroup/memory/memory.limit_in_bytes", f"{1 << 30}\n")
    write(root, "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", f"{1 << 30}\n")
    assert SP.cgroup_limits(str(root))["swap_limit_bytes"] == 0


def _v2(tmp_path: Path, swap_max: str, high: str, parent_high: str = "max") -> Path:
    write(tmp_path, "/proc/self/cgroup", "0::/user.slice/build.scope\n")
    write(tmp_path, "/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    write(tmp_path, "/sys/fs/cgroup/user.slice/memory.max", "max\n")
    write(tmp_path, "/sys/fs/cgroup/user.slice/memory.swap.max", "max\n")
    write(tmp_path, "/sys/fs/cgroup/user.slice/memory.high", parent_high + "\n")
    base = "/sys/fs/cgroup/user.slice/build.scope"
    write(tmp_path, f"{base}/memory.max", f"{4 << 30}\n")
    write(tmp_path, f"{base}/memory.current", "52338688\n")
    write(tmp_path, f"{base}/memory.swap.max", swap_max + "\n")
    write(tmp_path, f"{base}/memory.high", high + "\n")
    return tmp_path


def test_v2_swap_max_zero_and_memory_high(tmp_path: Path):
    limits = SP.cgroup_limits(str(_v2(tmp_path, "0", str(3 << 30))))
    assert limits["memory_limit_bytes"] == 4 << 30
    assert limits["swap_limit_bytes"] == 0
    assert limits["memory_high_bytes"] == 3 << 30


def test_v2_unlimited_swap_and_no_high(tmp_path: Path):
    limits = SP.cgroup_limits(str(_v2(tmp_path, "max", "max")))
    assert limits["swap_limit_bytes"] is None
    assert limits["memory_high_bytes"] is None


def test_v2_a_parent_high_binds(tmp_path: Path):
    limits = SP.cgroup_limits(str(_v2(tmp_path, str(1 << 30), "max", parent_high=str(2 << 30))))
    assert limits["swap_limit_bytes"] == 1 << 30
    assert limits["memory_high_bytes"] == 2 << 30


# --------------------------------------------------------------------------- facts and the model


def test_old_facts_files_load_with_unknown_swap_limit():
    data = json.loads((FIXTURES / "debian12-2c-24g.json").read_text())
    for key in ("cgroup_swap_limit_bytes", "cgroup_high_bytes"):
        data["memory"].pop(key, None)
    m = HostFacts.from_dict(data).memory
    assert m.cgroup_swap_limit_bytes is None and m.cgroup_high_bytes is None
    assert not m.cgroup_may_not_swap


def test_memory_high_below_the_limit_is_the_cap():
    m = MemoryFacts(total_bytes=16 << 30, available_bytes=15 << 30, cgroup_limit_bytes=4 << 30, cgroup_high_bytes=3 << 30)
    assert m.cgroup_cap_bytes == 3 << 30 and m.effective_bytes == 3 << 30
    m = dataclasses.replace(m, cgroup_high_bytes=8 << 30)
    assert m.effective_bytes == 4 << 30


def test_probe_dict_carries_the_swap_limit_into_ansible_facts():
    setup = {
        "processor_vcpus": 2, "processor_nproc": 2, "memtotal_mb": 24000, "memfree_mb": 20000,
        "architecture": "x86_64", "distribution": "Debian", "os_family": "Debian", "nodename": "h",
    }
    probe = {"memory": {"total_bytes": 24 << 30, "available_bytes": 20 << 30, "cgroup_limit_bytes": 224 * MIB,
                        "cgroup_usage_bytes": MIB, "cgroup_swap_limit_bytes": 0, "cgroup_high_bytes": None}}
    try:
        facts = facts_from_ansible(setup, probe)
    except TypeError:
        pytest.skip("facts_from_ansible takes other arguments")
    assert facts.memory.cgroup_swap_limit_bytes == 0 and facts.memory.cgroup_may_not_swap


def _cap_224(facts: HostFacts, swap_limit: int | None) -> HostFacts:
    memory = dataclasses.replace(
        facts.memory, cgroup_limit_bytes=224 * MIB, cgroup_usage_bytes=MIB, cgroup_swap_limit_bytes=swap_limit
    )
    return dataclasses.replace(facts, memory=memory, virtualization="none")


def _debian() -> HostFacts:
    return HostFacts.from_dict(json.loads((FIXTURES / "debian12-2c-24g.json").read_text()))


def test_the_measured_224_mib_cgroup_without_swap_plans_j1():
    """docs/calibration.md §14: -j2 was OOM-killed after 198 s, -j1 finished in 345 s."""
    catalog = load_catalog()
    swapping = plan(_cap_224(_debian(), None), Goals(), catalog)
    # zram counted: the compile phase the measurement refuted without swap (the whole build's -j is
    # then lowered to 1 by the vmlinux link beside a modfinal job, which zram cannot hold at -j2)
    assert "counted from zram" in swapping.jobs.reason and "room for 3 jobs" in swapping.jobs.reason
    no_swap = plan(_cap_224(_debian(), 0), Goals(), catalog)
    assert no_swap.jobs.value == 1
    assert "the cgroup may not swap (memsw = limit): zram gives no room here" in no_swap.jobs.reason
    assert "counted from zram" not in no_swap.jobs.reason
    assert not no_swap.zram.enabled and "may not swap" in no_swap.zram.reason


def test_a_container_that_may_not_swap_is_told_to_raise_its_limit():
    facts = dataclasses.replace(_cap_224(_debian(), 0), virtualization="container:docker")
    p = plan(facts, Goals(), load_catalog())
    assert p.jobs.value == 1 and not p.zram.enabled
    assert p.zram.reason.startswith("off: a container cannot create zram devices; swap belongs to the host's kernel")
    assert "raise the container's memory limit" in p.zram.reason


def test_a_memory_limited_container_that_may_swap_gets_the_same_advice():
    facts = dataclasses.replace(_cap_224(_debian(), None), virtualization="container:docker")
    p = plan(facts, Goals(), load_catalog())
    assert p.jobs.limited_by == "memory"
    assert p.zram.reason == (
        "off: a container cannot create zram devices; swap belongs to the host's kernel; memory limits -j without "
        "zram here: "
        "raise the container's memory limit or set up zram on the host"
    )


# --------------------------------------------------------------------------- a real v1 cgroup


@pytest.fixture
def no_swap_cgroup():
    own = own_v1_memory_cgroup()
    if own is None or not (own / "memory.memsw.limit_in_bytes").exists() or os.geteuid() != 0:
        pytest.skip("needs root and a cgroup v1 memory controller with swap accounting")
    child = own / f"kprov-noswap-{os.getpid()}"
    try:
        no_swap_cgroup_under(own, child.name, 224 * MIB)
    except OSError as exc:
        if child.exists():
            child.rmdir()
        pytest.skip(f"cannot make a child memory cgroup here: {exc}")
    yield child
    child.rmdir()  # every process that ran in it has exited


def _inside(cgroup: Path, *argv: str) -> subprocess.CompletedProcess:
    script = f'echo $$ > "{cgroup}/cgroup.procs" && exec "$@"'
    return subprocess.run(["sh", "-c", script, "sh", *argv], check=False, capture_output=True, text=True, timeout=240)


def test_real_v1_cgroup_without_swap(no_swap_cgroup: Path):
    out = _inside(no_swap_cgroup, str(KPROV), "facts", "--json")
    assert out.returncode == 0, out.stderr
    memory = json.loads(out.stdout)["memory"]
    assert memory["cgroup_limit_bytes"] == 224 * MIB
    assert memory["cgroup_swap_limit_bytes"] == 0

    out = _inside(no_swap_cgroup, str(KPROV), "plan", "--json")
    assert out.returncode == 0, out.stderr
    jobs = json.loads(out.stdout)["jobs"]
    assert "the cgroup may not swap (memsw = limit): zram gives no room here" in jobs["reason"]
    assert "counted from zram" not in jobs["reason"]
    assert jobs["value"] == 1
