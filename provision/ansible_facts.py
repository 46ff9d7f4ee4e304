"""HostFacts from Ansible's setup facts, so a fleet host is planned by the same planner as this one.

Ansible's facts come in three shapes, all accepted:

* ``{"ansible_facts": {"ansible_processor_vcpus": 8, ...}, ...}``: what ``ansible -m setup`` prints
  (also with its ``host | SUCCESS =>`` prefix) and what ``ansible -m setup --tree DIR`` writes;
* ``{"ansible_processor_vcpus": 8, ...}``: the flat form of hostvars and of the jsonfile fact cache;
* ``{"processor_vcpus": 8, ...}``: the un-prefixed ``ansible_facts`` a role sees.

Setup facts lack what decides a kernel build's numbers on a constrained host (cgroup limits, CPU
affinity, zram compressors, tool versions): the role's ``kbuild_host_probe`` module returns those
as a ``probe`` dict, merged here. With the probe, the same host yields the same usable CPUs,
effective memory and compressors as :func:`provision.facts.gather`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provision.errors import UserError
from provision.model import (
    MIB,
    CpuFacts,
    DiskFacts,
    DistroFacts,
    Goals,
    HostFacts,
    MemoryFacts,
    Plan,
    ZramFacts,
)

#: Ansible ``os_family`` -> kprov family.
OS_FAMILY = {
    "debian": "debian",
    "redhat": "redhat",
    "archlinux": "arch",
    "suse": "suse",
    "alpine": "alpine",
}

#: Ansible ``distribution`` names that differ from the os-release ID kprov reports locally.
DISTRIBUTION_IDS = {
    "archlinux": "arch",
    "redhat": "rhel",
    "linux mint": "linuxmint",
    "opensuse tumbleweed": "opensuse-tumbleweed",
    "opensuse leap": "opensuse-leap",
    "opensuse": "opensuse-leap",
    "oraclelinux": "ol",
    "amazon": "amzn",
    "pop!_os": "pop",
}

#: ``virtualization_type`` values that are containers, not VMs.
CONTAINER_TYPES = (
    "docker",
    "podman",
    "container",
    "containerd",
    "lxc",
    "lxd",
    "openvz",
    "systemd-nspawn",
    "container=podman",
    "wsl",
)

#: Facts a plan cannot do without; ``gather_subset: min`` leaves them out.
REQUIRED = ("memtotal_mb", "architecture")

#: Where the build and ccache dirs of a managed host are assumed to be when not given.
DEFAULT_CCACHE_DIR = "/var/cache/ccache"


def plain_data(data: Any) -> Any:
    """Ansible's lazy/tagged containers and strings -> plain dicts, lists and str (so isinstance
    checks and JSON hold); the role's filters hand everything they pass to kprov through this."""
    if isinstance(data, Mapping):
        return {str(k): plain_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain_data(v) for v in data]
    if isinstance(data, str):
        return str(data)
    return data


_plain = plain_data


def normalise(data: Any) -> dict[str, Any]:
    """Any of the three fact shapes -> one dict with un-prefixed keys (``processor_vcpus``)."""
    if not isinstance(data, Mapping):
        raise UserError(f"Ansible facts: expected an object, got {type(data).__name__}")
    data = _plain(data)
    if isinstance(data.get("ansible_facts"), dict):
        data = data["ansible_facts"]
    facts = {}
    for key, value in data.items():
        facts[key[len("ansible_"):] if key.startswith("ansible_") else key] = value
    missing = [k for k in REQUIRED if k not in facts]
    if "processor_vcpus" not in facts and "processor_nproc" not in facts:
        missing.append("processor_vcpus")
    if "os_family" not in facts and "distribution" not in facts:
        missing.append("os_family")
    if missing:
        raise UserError(
            "Ansible facts: missing " + ", ".join(missing) + " (gather them with ansible.builtin.setup, "
            "gather_subset all or hardware)"
        )
    return facts


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise UserError(f"Ansible facts: {where} is not a number ({value!r})")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserError(f"Ansible facts: {where} is not a number ({value!r})") from None


def _cpu_model(processor: Any) -> str:
    """``processor`` is ``["0", "GenuineIntel", "Intel(R) ...", "1", ...]`` on x86: the model name."""
    if not isinstance(processor, list):
        return ""
    for item in processor:
        text = str(item)
        if not text.isdigit() and text not in ("GenuineIntel", "AuthenticAMD"):
            return text
    return ""


def _virtualization(facts: dict, probe: dict | None) -> str:
    if probe and probe.get("virtualization"):
        return str(probe["virtualization"])
    vtype = str(facts.get("virtualization_type") or "").lower()
    role = str(facts.get("virtualization_role") or "").lower()
    if role != "guest" or vtype in ("", "na"):
        return "none"
    if vtype in CONTAINER_TYPES:
        return "container:" + vtype.replace("container=", "")
    return "vm"


def _distro(facts: dict) -> DistroFacts:
    from provision.facts import distro_family

    name = str(facts.get("distribution") or "")
    did = DISTRIBUTION_IDS.get(name.lower(), name.lower().replace(" ", "-")) or "linux"
    os_family = str(facts.get("os_family") or "")
    family = OS_FAMILY.get(os_family.lower()) or distro_family(did, (os_family.lower(),))
    return DistroFacts(
        id=did,
        family=family,
        version=str(facts.get("distribution_version") or ""),
        codename=str(facts.get("distribution_release") or ""),
        like=(os_family.lower(),) if os_family and os_family.lower() != did else (),
        name=name,
    )


def _disk(role: str, path: str, mounts: list) -> DiskFacts | None:
    """The mount holding ``path`` (longest prefix), from ``ansible_mounts``; None if unknown."""
    best = None
    for m in mounts:
        if not isinstance(m, dict) or not m.get("size_total"):
            continue
        mp = str(m.get("mount") or "")
        if path == mp or path.startswith(mp.rstrip("/") + "/") or mp == "/":
            if best is None or len(mp) > len(str(best["mount"])):
                best = m
    if best is None:
        return None
    return DiskFacts(
        role=role,
        path=path,
        mount=str(best["mount"]),
        free_bytes=_int(best.get("size_available", 0), f"mounts[{best['mount']}].size_available"),
        total_bytes=_int(best["size_total"], f"mounts[{best['mount']}].size_total"),
        fstype=str(best.get("fstype") or ""),
    )


def facts_from_ansible(
    data: Any,
    probe: Mapping | None = None,
    build_dir: str | None = None,
    ccache_dir: str | None = None,
) -> HostFacts:
    """HostFacts from Ansible setup facts, with the role probe's findings merged when given."""
    from provision.facts import sysprobe

    facts = normalise(data)
    probe = _plain(probe) if probe else None
    if probe is not None and not isinstance(probe, dict):
        raise UserError(f"kbuild_host_probe result: expected an object, got {type(probe).__name__}")
    p_cpu = (probe or {}).get("cpu") or {}
    p_mem = (probe or {}).get("memory") or {}
    p_swap = (probe or {}).get("swap") or {}
    p_zram = (probe or {}).get("zram") or {}

    logical = _int(facts.get("processor_vcpus") or facts.get("processor_nproc"), "processor_vcpus")
    affinity = p_cpu.get("affinity") or facts.get("processor_nproc") or logical
    affinity = _int(affinity, "processor_nproc")
    quota = p_cpu.get("cgroup_quota")
    physical = p_cpu.get("physical_cores")
    if physical is None and facts.get("processor_cores") and facts.get("processor_count"):
        physical = _int(facts["processor_cores"], "processor_cores") * _int(
            facts["processor_count"], "processor_count"
        )
    cpu = CpuFacts(
        logical=int(p_cpu.get("logical") or logical),
        usable=sysprobe().usable_cpus(affinity, quota),
        affinity=affinity,
        physical_cores=physical,
        cgroup_quota=float(quota) if quota is not None else None,
        model=str(p_cpu.get("model") or _cpu_model(facts.get("processor"))),
    )

    total = p_mem.get("total_bytes") or _int(facts["memtotal_mb"], "memtotal_mb") * MIB
    nocache = ((facts.get("memory_mb") or {}).get("nocache") or {}).get("free")
    available = p_mem.get("available_bytes") or _int(
        nocache if nocache is not None else facts.get("memfree_mb", 0), "memfree_mb"
    ) * MIB
    swap_total = p_swap.get("total_bytes")
    swap_free = p_swap.get("free_bytes")
    if swap_total is None:
        swap_total = _int(facts.get("swaptotal_mb", 0), "swaptotal_mb") * MIB
        swap_free = _int(facts.get("swapfree_mb", 0), "swapfree_mb") * MIB
    memory = MemoryFacts(
        total_bytes=int(total),
        available_bytes=int(available),
        cgroup_limit_bytes=p_mem.get("cgroup_limit_bytes"),
        cgroup_usage_bytes=p_mem.get("cgroup_usage_bytes"),
        swap_total_bytes=int(swap_total),
        swap_free_bytes=int(swap_free or 0),
        zram_swap_bytes=int(p_zram.get("swap_bytes") or 0),
    )

    mounts = facts.get("mounts") or []
    if not isinstance(mounts, list):
        raise UserError("Ansible facts: mounts is not a list")
    home = str(facts.get("user_dir") or "/root")
    wanted = (
        ("build", str(build_dir or home)),
        ("ccache", str(ccache_dir or DEFAULT_CCACHE_DIR)),
        ("home", home),
    )
    disks = tuple(d for d in (_disk(role, path, mounts) for role, path in wanted) if d is not None)

    zram = ZramFacts(
        compressors=tuple(p_zram.get("compressors") or ()),
        active=p_zram.get("active"),
        # without a probe nothing is known about zram: "unknown", not "none" (= the kernel has none)
        source=str(p_zram.get("source") or ("none" if probe else "unknown")),
        device_present=bool(p_zram.get("device_present", False)),
        devices_in_use=tuple(p_zram.get("devices_in_use") or ()),
        kprov_devices=tuple(p_zram.get("kprov_devices") or ()),
    )
    default_v4 = facts.get("default_ipv4") or {}
    toolchain = (probe or {}).get("toolchain") or {}
    return HostFacts(
        hostname=str(facts.get("hostname") or facts.get("nodename") or facts.get("fqdn") or "unknown"),
        arch=str(facts["architecture"]),
        cpu=cpu,
        memory=memory,
        distro=_distro(facts),
        disks=disks,
        zram=zram,
        toolchain={str(k): (str(v) if v is not None else None) for k, v in toolchain.items()},
        tree=None,
        kernel_release=str(facts.get("kernel") or ""),
        virtualization=_virtualization(facts, probe),
        default_ipv4=str(default_v4["address"]) if isinstance(default_v4, dict) and default_v4.get("address") else None,
        source="ansible",
    )


def _json_of(text: str) -> Any:
    """JSON text, also as ``ansible HOST -m setup`` prints it (``host | SUCCESS => {...}``)."""
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        # warnings may come first; the result starts at "host | SUCCESS => {"
        m = re.search(r"^\S+ \| [A-Z!]+ => ?(?=\{)", stripped, re.MULTILINE)
        if m:
            stripped = stripped[m.end():]
    return json.loads(stripped)


def load_ansible_facts_file(
    path: str | os.PathLike,
    probe: Mapping | None = None,
    build_dir: str | None = None,
    ccache_dir: str | None = None,
) -> HostFacts:
    """``--ansible-facts FILE`` -> HostFacts. A probe result may sit beside the facts as ``probe``."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UserError(f"--ansible-facts {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = _json_of(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--ansible-facts {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if probe is None and isinstance(data, dict) and isinstance(data.get("probe"), dict):
        probe = data["probe"]
    try:
        return facts_from_ansible(data, probe, build_dir=build_dir, ccache_dir=ccache_dir)
    except UserError as exc:
        raise UserError(f"--ansible-facts {path}: {exc}") from None


def goals_from(goals: Goals | Mapping | None) -> Goals:
    """A Goals, a partial ``Goals.to_dict()`` (lists for tuples, as Ansible vars give them) or None."""
    if goals is None:
        return Goals()
    if isinstance(goals, Goals):
        return goals
    if not isinstance(goals, Mapping):
        raise UserError(f"kbuild_host_goals: expected a mapping, got {type(goals).__name__}")
    return Goals.from_dict(_plain(goals), where="kbuild_host_goals")


def plan_from_ansible(setup_facts: Any, probe: Mapping | None, goals: Goals | Mapping | None) -> Plan:
    """Plan one Ansible-managed host: facts (+ probe) and goals through :func:`provision.planner.plan`."""
    from provision.catalog import load_catalog
    from provision.planner import plan

    g = goals_from(goals)
    facts = facts_from_ansible(setup_facts, probe, build_dir=g.build_dir, ccache_dir=g.ccache_dir)
    return plan(facts, g, load_catalog())
