"""HostFacts from Ansible's setup facts, so a fleet host is planned by the same planner as this one.

Ansible's facts come in three shapes, all accepted:

* ``{"ansible_facts": {"ansible_processor_vcpus": 8, ...}, ...}``: what ``ansible -m setup`` prints
  (also with its ``host | SUCCESS =>`` prefix) and what ``ansible -m setup --tree DIR`` writes;
* ``{"ansible_processor_vcpus": 8, ...}``: the flat form of hostvars and of the jsonfile fact cache;
* ``{"processor_vcpus": 8, ...}``: the un-prefixed ``ansible_facts`` a role sees.

Setup facts lack what decides a kernel build's numbers on a constrained host (cgroup limits, CPU
affinity, zram compressors, tool versions): the role's ``kbuild_host_probe`` module returns those
as a ``probe`` dict, merged here. With the probe, the same host yields the same usable CPUs,
effective memory and compressors as :func:`provision.facts.local.gather`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

from provision.errors import UserError, shown
from provision.facts.files import parse_json, read_text
from provision.facts.local import distro_family, sysprobe
from provision.model.facts import (
    CpuFacts,
    DiskFacts,
    DistroFacts,
    HostFacts,
    MemoryFacts,
    ToolchainFacts,
    ZramFacts,
)
from provision.model.goals import Goals
from provision.paths import SHARED_CCACHE_DIR
from provision.units import MIB

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


_INTEGER = re.compile(r"-?[0-9]{1,20}")


_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")


def _bad(where: str, value: Any, expected: str) -> UserError:
    return UserError(f"Ansible facts: {where} is not {expected} ({shown(value)})")


def _int(value: Any, where: str) -> int:
    """An integer fact. Ansible gives ints; a string of ASCII digits is accepted (fact caches
    round-trip through text), a whole float too. ``int()`` itself is not used on text: it takes
    "٣" and other non-ASCII digits, and on floats it raises OverflowError for Infinity."""
    if isinstance(value, bool):
        raise _bad(where, value, "a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise _bad(where, value, "a number")


def _opt_int(value: Any, where: str) -> int | None:
    return None if value is None else _int(value, where)


def _opt_float(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(where, value, "a number")
    try:
        number = float(value)
    except OverflowError:
        raise _bad(where, value, "a number in range") from None
    if not math.isfinite(number):
        raise _bad(where, value, "a finite number")
    return number


def _text(value: Any, where: str, default: str = "") -> str:
    """A text fact; numbers are taken as their text (a version of 12), containers are refused."""
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**20:
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(value)
    raise _bad(where, value, "text")


def _opt_text(value: Any, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _names(value: Any, where: str) -> tuple[str, ...]:
    """A list of names. A string is refused, not split: "lz4" is not the compressors l, z and 4."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise _bad(where, value, "a list")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _bad(f"{where}[{i}]", item, "text")
    return tuple(value)


def _flag(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(where, value, "true or false")
    return value


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, value, "an object")
    return value


def _cpu_model(processor: Any) -> str:
    """``processor`` is ``["0", "GenuineIntel", "Intel(R) ...", "1", ...]`` on x86: the model name."""
    if not isinstance(processor, list):
        return ""
    for item in processor:
        if not isinstance(item, str):
            continue
        if not (item.isascii() and item.isdigit()) and item not in ("GenuineIntel", "AuthenticAMD"):
            return item
    return ""


def _virtualization(facts: dict, probe: dict | None) -> str:
    if probe and probe.get("virtualization"):
        return _text(probe["virtualization"], "probe.virtualization")
    vtype = _text(facts.get("virtualization_type"), "virtualization_type").lower()
    role = _text(facts.get("virtualization_role"), "virtualization_role").lower()
    if role != "guest" or vtype in ("", "na"):
        return "none"
    if vtype in CONTAINER_TYPES:
        return "container:" + vtype.replace("container=", "")
    return "vm"


def _distro(facts: dict) -> DistroFacts:

    name = _text(facts.get("distribution"), "distribution")
    did = DISTRIBUTION_IDS.get(name.lower(), name.lower().replace(" ", "-")) or "linux"
    os_family = _text(facts.get("os_family"), "os_family")
    family = OS_FAMILY.get(os_family.lower()) or distro_family(did, (os_family.lower(),))
    return DistroFacts(
        id=did,
        family=family,
        version=_text(facts.get("distribution_version"), "distribution_version"),
        codename=_text(facts.get("distribution_release"), "distribution_release"),
        like=(os_family.lower(),) if os_family and os_family.lower() != did else (),
        name=name,
    )


def _disk(role: str, path: str, mounts: list) -> DiskFacts | None:
    """The mount holding ``path`` (longest prefix), from ``ansible_mounts``; None if unknown."""
    best, best_mount = None, ""
    for i, m in enumerate(mounts):
        m = _mapping(m, f"mounts[{i}]")
        if not m.get("size_total"):
            continue
        mp = _text(m.get("mount"), f"mounts[{i}].mount")
        holds = path == mp or path.startswith(mp.rstrip("/") + "/") or mp == "/"
        if holds and (best is None or len(mp) > len(best_mount)):
            best, best_mount = m, mp
    if best is None:
        return None
    return DiskFacts(
        role=role,
        path=path,
        mount=best_mount,
        free_bytes=_int(best.get("size_available", 0), f"mounts[{best_mount}].size_available"),
        total_bytes=_int(best["size_total"], f"mounts[{best_mount}].size_total"),
        fstype=_text(best.get("fstype"), f"mounts[{best_mount}].fstype"),
    )


def _default_ipv4(value: Any) -> str | None:
    """``default_ipv4`` is ``{"address": ..., "interface": ...}``, or ``{}`` without a default route."""
    address = _mapping(value, "default_ipv4").get("address")
    return _opt_text(address, "default_ipv4.address") or None


def facts_from_ansible(
    data: Any,
    probe: Mapping | None = None,
    build_dir: str | None = None,
    ccache_dir: str | None = None,
) -> HostFacts:
    """HostFacts from Ansible setup facts, with the role probe's findings merged when given.

    Every value is type-checked here and the result goes through the model's range checks, so a
    bad fact (Infinity, a list where a number belongs, memory 0) is one UserError naming it.
    """
    try:
        facts = normalise(data)
        probe = _plain(probe) if probe else None
    except RecursionError:
        raise UserError("Ansible facts: nested too deeply to be facts") from None
    if probe is not None and not isinstance(probe, dict):
        raise UserError(f"kbuild_host_probe result: expected an object, got {type(probe).__name__}")
    facts_ = _from_ansible(facts, probe, build_dir, ccache_dir)
    try:
        return facts_.checked(where="")
    except UserError as exc:
        raise UserError(f"Ansible facts: {exc}") from None


def _from_ansible(facts: dict, probe: dict | None, build_dir: str | None, ccache_dir: str | None) -> HostFacts:

    p_cpu = _mapping((probe or {}).get("cpu"), "probe.cpu")
    p_mem = _mapping((probe or {}).get("memory"), "probe.memory")
    p_swap = _mapping((probe or {}).get("swap"), "probe.swap")
    p_zram = _mapping((probe or {}).get("zram"), "probe.zram")

    logical = _int(facts.get("processor_vcpus") or facts.get("processor_nproc"), "processor_vcpus")
    if p_cpu.get("affinity"):
        affinity = _int(p_cpu["affinity"], "probe.cpu.affinity")
    else:
        affinity = _int(facts.get("processor_nproc") or logical, "processor_nproc")
    quota = _opt_float(p_cpu.get("cgroup_quota"), "probe.cpu.cgroup_quota")
    physical = _opt_int(p_cpu.get("physical_cores"), "probe.cpu.physical_cores")
    if physical is None and facts.get("processor_cores") and facts.get("processor_count"):
        physical = _int(facts["processor_cores"], "processor_cores") * _int(
            facts["processor_count"], "processor_count"
        )
    cpu = CpuFacts(
        logical=_int(p_cpu["logical"], "probe.cpu.logical") if p_cpu.get("logical") else logical,
        usable=sysprobe().usable_cpus(affinity, quota),
        affinity=affinity,
        physical_cores=physical,
        cgroup_quota=quota,
        model=_text(p_cpu.get("model"), "probe.cpu.model") or _cpu_model(facts.get("processor")),
    )

    if p_mem.get("total_bytes"):
        total = _int(p_mem["total_bytes"], "probe.memory.total_bytes")
    else:
        total = _int(facts["memtotal_mb"], "memtotal_mb") * MIB
    if p_mem.get("available_bytes"):
        available = _int(p_mem["available_bytes"], "probe.memory.available_bytes")
    else:
        nocache = _mapping(_mapping(facts.get("memory_mb"), "memory_mb").get("nocache"), "memory_mb.nocache")
        if nocache.get("free") is not None:
            available = _int(nocache["free"], "memory_mb.nocache.free") * MIB
        else:
            available = _int(facts.get("memfree_mb", 0), "memfree_mb") * MIB
    if p_swap.get("total_bytes") is not None:
        swap_total = _int(p_swap["total_bytes"], "probe.swap.total_bytes")
        swap_free = _int(p_swap.get("free_bytes") or 0, "probe.swap.free_bytes")
    else:
        swap_total = _int(facts.get("swaptotal_mb", 0), "swaptotal_mb") * MIB
        swap_free = _int(facts.get("swapfree_mb", 0), "swapfree_mb") * MIB
    memory = MemoryFacts(
        total_bytes=total,
        available_bytes=available,
        cgroup_limit_bytes=_opt_int(p_mem.get("cgroup_limit_bytes"), "probe.memory.cgroup_limit_bytes"),
        cgroup_usage_bytes=_opt_int(p_mem.get("cgroup_usage_bytes"), "probe.memory.cgroup_usage_bytes"),
        swap_total_bytes=swap_total,
        swap_free_bytes=swap_free,
        zram_swap_bytes=_int(p_zram.get("swap_bytes") or 0, "probe.zram.swap_bytes"),
        cgroup_swap_limit_bytes=_opt_int(p_mem.get("cgroup_swap_limit_bytes"), "probe.memory.cgroup_swap_limit_bytes"),
        cgroup_high_bytes=_opt_int(p_mem.get("cgroup_high_bytes"), "probe.memory.cgroup_high_bytes"),
    )

    mounts = facts.get("mounts") or []
    if not isinstance(mounts, list):
        raise UserError("Ansible facts: mounts is not a list")
    home = _text(facts.get("user_dir"), "user_dir", "/root")
    wanted = (
        ("build", str(build_dir or home)),
        ("ccache", str(ccache_dir or SHARED_CCACHE_DIR)),
        ("home", home),
    )
    disks = tuple(d for d in (_disk(role, path, mounts) for role, path in wanted) if d is not None)

    zram = ZramFacts(
        compressors=_names(p_zram.get("compressors"), "probe.zram.compressors"),
        active=_opt_text(p_zram.get("active"), "probe.zram.active"),
        # without a probe nothing is known about zram: "unknown", not "none" (= the kernel has none)
        source=_text(p_zram.get("source"), "probe.zram.source", "none" if probe else "unknown"),
        device_present=_flag(p_zram.get("device_present"), "probe.zram.device_present"),
        devices_in_use=_names(p_zram.get("devices_in_use"), "probe.zram.devices_in_use"),
        kprov_devices=_names(p_zram.get("kprov_devices"), "probe.zram.kprov_devices"),
    )
    toolchain = _mapping((probe or {}).get("toolchain"), "probe.toolchain")
    hostname = facts.get("hostname") or facts.get("nodename") or facts.get("fqdn")
    return HostFacts(
        hostname=_text(hostname, "hostname", "unknown"),
        arch=_text(facts["architecture"], "architecture"),
        cpu=cpu,
        memory=memory,
        distro=_distro(facts),
        disks=disks,
        zram=zram,
        toolchain={str(k): _opt_text(v, f"probe.toolchain.{k}") for k, v in toolchain.items()},
        tree=None,
        kernel_release=_text(facts.get("kernel"), "kernel"),
        virtualization=_virtualization(facts, probe),
        default_ipv4=_default_ipv4(facts.get("default_ipv4")),
        source="ansible",
        toolchain_facts=_toolchain_facts((probe or {}).get("toolchain_facts")),
        ccache_group_members=(
            None if (probe or {}).get("ccache_group_members") is None
            else _names(probe["ccache_group_members"], "probe.ccache_group_members")
        ),
        # Ansible's own answer first: the role decides how it runs services from the same fact
        service_manager=_text(facts.get("service_mgr") or (probe or {}).get("service_manager"), "service_mgr"),
    )


def _toolchain_facts(value: Any) -> ToolchainFacts | None:
    """The probe's ``toolchain_facts`` (None when the probe did not run its tools)."""
    if value is None:
        return None
    return ToolchainFacts.from_dict(_mapping(value, "probe.toolchain_facts"), "probe.toolchain_facts")


def _strip_prefix(text: str) -> str:
    """The JSON part of ``ansible HOST -m setup``'s output (``host | SUCCESS => {...}``)."""
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        # warnings may come first; the result starts at "host | SUCCESS => {"
        m = re.search(r"^\S+ \| [A-Z!]+ => ?(?=\{)", stripped, re.MULTILINE)
        if m:
            stripped = stripped[m.end():]
    return stripped


def load_ansible_facts_file(
    path: str | os.PathLike,
    probe: Mapping | None = None,
    build_dir: str | None = None,
    ccache_dir: str | None = None,
) -> HostFacts:
    """``--ansible-facts FILE`` -> HostFacts. A probe result may sit beside the facts as ``probe``."""

    what = f"--ansible-facts {path}"
    data = parse_json(_strip_prefix(read_text(path, what)), what)
    if probe is None and isinstance(data, dict) and data.get("probe") is not None:
        probe = data["probe"]
    try:
        return facts_from_ansible(data, probe, build_dir=build_dir, ccache_dir=ccache_dir)
    except UserError as exc:
        raise UserError(f"--ansible-facts {path}: {exc}") from None


def goals_from(goals: Goals | Mapping | None) -> Goals:
    """A Goals, a partial ``Goals.to_dict()`` (lists for tuples, as Ansible vars give them) or None.

    The role's ``kbuild_host_goals`` and ``kprov plan -i``'s both come through here: a key Goals
    does not know, or a value of the wrong type, is a UserError naming it (never dropped)."""
    if goals is None:
        return Goals()
    if isinstance(goals, Goals):
        return goals
    if not isinstance(goals, Mapping):
        raise UserError(f"kbuild_host_goals: expected a mapping, got {type(goals).__name__}")
    return Goals.from_dict(_plain(goals), where="kbuild_host_goals")
