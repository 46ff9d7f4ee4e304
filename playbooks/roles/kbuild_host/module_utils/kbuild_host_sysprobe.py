# -*- coding: utf-8 -*-
# Copyright: kprov developers
# Apache License 2.0 (see LICENSE)
"""Read what a kernel build may use on a Linux host: CPUs, cgroup limits, zram, swap, virtualization.

This file is the one source of these parsers. It runs in two places:

* on managed hosts, packed by Ansible into the ``kbuild_host_probe`` module
  (``from ansible.module_utils.kbuild_host_sysprobe import probe``), with whatever Python the host
  has: so it uses only the standard library and nothing newer than Python 3.8;
* on the kprov controller, loaded by ``provision/facts/local.py`` from this very file.

Every reader takes ``root`` (default ``"/"``): the paths ``/proc/...`` and ``/sys/...`` are read
below it, so tests build a fake tree in a temporary directory. Parsers are pure functions of text.
Nothing here writes anything.
"""

from __future__ import absolute_import, division, print_function

import glob
import hashlib
import json
import math
import grp
import os
import pwd
import re
import stat

__metaclass__ = type

#: Names zram and the crypto API use for the compressors a zram device can take, in a stable order.
ZRAM_COMPRESSORS = ("lzo-rle", "lzo", "lz4", "lz4hc", "zstd", "842", "deflate")

#: cgroup v1 reports "no limit" as PAGE_COUNTER_MAX pages (LONG_MAX rounded down to a page):
#: 9223372036854771712 with 4 KiB pages, a bit less with larger pages. Anything at or above 2**62
#: bytes is no real limit on any machine.
V1_UNLIMITED_FLOOR = 1 << 62

#: /proc/crypto "type" values of compression algorithms.
CRYPTO_COMPRESSION_TYPES = ("compression", "scomp", "acomp")

#: Substrings of a cgroup path that name the container engine that made it.
CGROUP_CONTAINER_HINTS = (
    ("libpod", "podman"),
    ("docker", "docker"),
    ("kubepods", "kubernetes"),
    ("containerd", "containerd"),
    ("lxc", "lxc"),
    ("machine.slice/systemd-nspawn", "systemd-nspawn"),
)


# --------------------------------------------------------------------------- file helpers


def host_path(root, path):
    """``path`` (absolute, as the host sees it) below ``root``."""
    if not root or root == "/":
        return path
    return os.path.join(root, path.lstrip("/"))


def read_text(root, path):
    """The text of a file below ``root``, or None when it cannot be read (absent, no permission)."""
    try:
        with open(host_path(root, path), "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except (OSError, IOError):
        return None


def _read_stripped(root, path):
    text = read_text(root, path)
    return None if text is None else text.strip()


# --------------------------------------------------------------------------- cgroups: pure parsers


def parse_proc_cgroup(text):
    """Parse ``/proc/<pid>/cgroup`` into ``{"v1": {controller: path}, "v2": path or None}``.

    v1 lines are ``ID:controller[,controller]:path`` (named hierarchies like ``name=systemd`` are
    kept under their name); the v2 line is ``0::path``.
    """
    v1 = {}
    v2 = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and controllers == "":
            v2 = path
            continue
        for controller in controllers.split(","):
            if controller:
                v1[controller] = path
    return {"v1": v1, "v2": v2}


def parse_cpu_max(text):
    """cgroup v2 ``cpu.max`` (``"150000 100000"`` or ``"max 100000"``) -> CPUs of quota or None."""
    fields = (text or "").split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100000
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def parse_cfs_quota(quota_text, period_text):
    """cgroup v1 ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` -> CPUs of quota or None (-1)."""
    try:
        quota = int((quota_text or "").strip())
        period = int((period_text or "").strip())
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def _cgroup_bytes(text, smallest):
    """A cgroup byte limit file -> bytes, or None for ``max``, v1's huge "unlimited", an empty or
    unreadable value, or a value below ``smallest``."""
    value = (text or "").strip()
    if not value or value == "max":
        return None
    try:
        limit = int(value)
    except ValueError:
        return None
    if limit < smallest or limit >= V1_UNLIMITED_FLOOR:
        return None
    return limit


def parse_memory_limit(text):
    """``memory.max`` (v2) or ``memory.limit_in_bytes`` (v1) -> bytes, or None for no limit.

    v2 writes ``max``; v1 writes a huge page-rounded LONG_MAX instead of "unlimited".
    """
    return _cgroup_bytes(text, 1)


def parse_swap_limit(limit_text, memsw_text):
    """Swap a cgroup may use, in bytes, or None when unknown or unlimited.

    v1: ``memory.memsw.limit_in_bytes`` caps memory plus swap, so the swap room is its excess over
    ``memory.limit_in_bytes`` (0 when they are equal: no swap, as with docker ``--memory-swap``
    equal to ``--memory``); a missing or unlimited memsw file (no swap accounting) is None.
    """
    memsw = parse_memory_limit(memsw_text)
    if memsw is None:
        return None
    limit = parse_memory_limit(limit_text)
    if limit is None:
        return memsw
    return max(0, memsw - limit)


def parse_swap_max(text):
    """cgroup v2 ``memory.swap.max``: ``max`` -> None (unlimited), ``0`` -> 0 (no swap), else bytes."""
    return _cgroup_bytes(text, 0)


def parse_int(text):
    """An integer file (``memory.current``), or None."""
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _unescape_mount(path):
    # mountinfo escapes space, tab, newline and backslash as octal: \040 \011 \012 \134
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def parse_mountinfo(text):
    """``/proc/self/mountinfo`` -> list of dicts with root, mount_point, options, fstype, super_options."""
    mounts = []
    for line in (text or "").splitlines():
        if " - " not in line:
            continue
        left, right = line.split(" - ", 1)
        lf = left.split()
        rf = right.split()
        if len(lf) < 6 or len(rf) < 2:
            continue
        mounts.append(
            {
                "root": _unescape_mount(lf[3]),
                "mount_point": _unescape_mount(lf[4]),
                "options": lf[5].split(","),
                "fstype": rf[0],
                "super_options": rf[2].split(",") if len(rf) > 2 else [],
            }
        )
    return mounts


def cgroup_mounts(mounts):
    """From parsed mountinfo: ``{"v1": {controller: (mount_root, mount_point)}, "v2": (root, point)}``."""
    v1 = {}
    v2 = None
    for m in mounts:
        if m["fstype"] == "cgroup2":
            if v2 is None:
                v2 = (m["root"], m["mount_point"])
        elif m["fstype"] == "cgroup":
            for opt in m["super_options"]:
                if opt in ("rw", "ro") or opt.startswith("release_agent") or opt in ("clone_children", "noprefix"):
                    continue
                v1.setdefault(opt, (m["root"], m["mount_point"]))
    return {"v1": v1, "v2": v2}


def _default_v1_mount(root, controller):
    """Where distros mount a v1 controller when mountinfo is not available (fake trees in tests)."""
    base = "/sys/fs/cgroup"
    try:
        names = sorted(os.listdir(host_path(root, base)))
    except OSError:
        return None
    for name in names:
        if controller in name.split(","):
            return ("/", base + "/" + name)
    return None


def _default_v2_mount(root):
    for candidate in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(host_path(root, candidate + "/cgroup.controllers")):
            return ("/", candidate)
    return None


def _cgroup_dirs(root, mount, cgroup_path):
    """The process's cgroup directory and its ancestors up to the mount point, innermost first.

    Without a cgroup namespace the path in /proc/self/cgroup is relative to the hierarchy root,
    while the mount may expose only a subtree (its mountinfo root): strip that prefix. When the
    directory is missing (a namespace boundary), fall back to the mount point itself.
    """
    mount_root, mount_point = mount
    rel = cgroup_path or "/"
    if mount_root not in ("/", "") and (rel == mount_root or rel.startswith(mount_root.rstrip("/") + "/")):
        rel = rel[len(mount_root.rstrip("/")):] or "/"
    parts = [p for p in rel.split("/") if p and p != ".."]
    dirs = []
    while True:
        candidate = mount_point.rstrip("/") + ("/" + "/".join(parts) if parts else "")
        if os.path.isdir(host_path(root, candidate or "/")):
            dirs.append(candidate)
        if not parts:
            break
        parts.pop()
    return dirs


def _min_opt(values):
    real = [v for v in values if v is not None]
    return min(real) if real else None


# --------------------------------------------------------------------------- cgroups: reader


def cgroup_limits(root="/"):
    """CPU quota and memory limit that apply to this process (the tightest along its cgroup path).

    Returns ``{"version": "v1"|"v2"|"hybrid"|"none", "cpu_quota": float|None,
    "memory_limit_bytes": int|None, "memory_usage_bytes": int|None, "cpu_source": str|None,
    "memory_source": str|None, "swap_limit_bytes": int|None, "memory_high_bytes": int|None}``.
    ``swap_limit_bytes`` is the swap the cgroup may use (0: none, None: unknown or unlimited);
    ``memory_high_bytes`` is v2's ``memory.high`` (None: not set, or v1).
    """
    own = parse_proc_cgroup(read_text(root, "/proc/self/cgroup"))
    mounts = cgroup_mounts(parse_mountinfo(read_text(root, "/proc/self/mountinfo")))
    result = {
        "version": "none",
        "cpu_quota": None,
        "memory_limit_bytes": None,
        "memory_usage_bytes": None,
        "cpu_source": None,
        "memory_source": None,
        "swap_limit_bytes": None,
        "memory_high_bytes": None,
    }
    has_v1 = bool(own["v1"])
    has_v2 = own["v2"] is not None
    result["version"] = "hybrid" if has_v1 and has_v2 else "v1" if has_v1 else "v2" if has_v2 else "none"

    v2_mount = mounts["v2"] or (_default_v2_mount(root) if has_v2 else None)

    # CPU: the v1 cpu controller wins when it is mounted (a controller lives in one hierarchy only).
    if "cpu" in own["v1"]:
        mount = mounts["v1"].get("cpu") or _default_v1_mount(root, "cpu")
        if mount:
            quotas = []
            for d in _cgroup_dirs(root, mount, own["v1"]["cpu"]):
                q = parse_cfs_quota(read_text(root, d + "/cpu.cfs_quota_us"), read_text(root, d + "/cpu.cfs_period_us"))
                quotas.append(q)
                if q is not None and (result["cpu_source"] is None or q <= _min_opt(quotas)):
                    result["cpu_source"] = d + "/cpu.cfs_quota_us"
            result["cpu_quota"] = _min_opt(quotas)
    elif has_v2 and v2_mount:
        quotas = []
        for d in _cgroup_dirs(root, v2_mount, own["v2"]):
            q = parse_cpu_max(read_text(root, d + "/cpu.max"))
            quotas.append(q)
            if q is not None and (result["cpu_source"] is None or q <= _min_opt(quotas)):
                result["cpu_source"] = d + "/cpu.max"
        result["cpu_quota"] = _min_opt(quotas)

    if "memory" in own["v1"]:
        mount = mounts["v1"].get("memory") or _default_v1_mount(root, "memory")
        if mount:
            dirs = _cgroup_dirs(root, mount, own["v1"]["memory"])
            _memory_limit(root, dirs, "memory.limit_in_bytes", "memory.usage_in_bytes", result)
            result["swap_limit_bytes"] = _min_opt(
                [parse_swap_limit(read_text(root, d + "/memory.limit_in_bytes"),
                                  read_text(root, d + "/memory.memsw.limit_in_bytes")) for d in dirs])
    elif has_v2 and v2_mount:
        dirs = _cgroup_dirs(root, v2_mount, own["v2"])
        _memory_limit(root, dirs, "memory.max", "memory.current", result)
        result["swap_limit_bytes"] = _min_opt([parse_swap_max(read_text(root, d + "/memory.swap.max")) for d in dirs])
        result["memory_high_bytes"] = _min_opt([parse_memory_limit(read_text(root, d + "/memory.high")) for d in dirs])
    return result


def _memory_limit(root, dirs, limit_file, usage_file, result):
    """The tightest memory limit along the cgroup path (and the file it came from) into ``result``;
    the usage of the process's own cgroup (the first of ``dirs``)."""
    limits = []
    for d in dirs:
        lim = parse_memory_limit(read_text(root, d + "/" + limit_file))
        limits.append(lim)
        if lim is not None and (result["memory_source"] is None or lim <= _min_opt(limits)):
            result["memory_source"] = d + "/" + limit_file
    result["memory_limit_bytes"] = _min_opt(limits)
    if dirs:
        result["memory_usage_bytes"] = parse_int(read_text(root, dirs[0] + "/" + usage_file))


def usable_cpus(affinity, quota):
    """CPUs a build can keep busy: the affinity mask capped by ceil(cgroup quota), never below 1."""
    usable = affinity if affinity and affinity > 0 else 1
    if quota is not None and quota > 0:
        usable = min(usable, int(math.ceil(quota - 1e-9)))
    return max(1, usable)


# --------------------------------------------------------------------------- zram and swap


def parse_comp_algorithm(text):
    """``/sys/block/zramN/comp_algorithm`` (``"[lzo-rle] lzo lz4"``) -> (names in order, active)."""
    names = []
    active = None
    for token in (text or "").split():
        if token.startswith("[") and token.endswith("]"):
            token = token[1:-1]
            active = token
        if token and token not in names:
            names.append(token)
    return names, active


def parse_proc_crypto(text):
    """Compression algorithms zram could use, from ``/proc/crypto`` (only those the kernel has loaded)."""
    found = set()
    for block in re.split(r"\n\s*\n", text or ""):
        fields = {}
        for line in block.splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip()] = value.strip()
        if fields.get("type") in CRYPTO_COMPRESSION_TYPES and fields.get("name") in ZRAM_COMPRESSORS:
            found.add(fields["name"])
    return [name for name in ZRAM_COMPRESSORS if name in found]


def parse_proc_swaps(text):
    """``/proc/swaps`` -> list of ``{"name", "type", "size_bytes", "used_bytes", "priority"}``."""
    swaps = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        try:
            swaps.append(
                {
                    "name": fields[0].replace("\\040", " "),
                    "type": fields[1],
                    "size_bytes": int(fields[2]) * 1024,
                    "used_bytes": int(fields[3]) * 1024,
                    "priority": int(fields[4]),
                }
            )
        except ValueError:
            continue
    return swaps


def zram_facts(root="/"):
    """Compressors the kernel offers to zram, and zram devices already used as swap."""
    compressors = []
    active = None
    source = "none"
    for path in sorted(glob.glob(host_path(root, "/sys/block/zram*/comp_algorithm"))):
        try:
            with open(path) as handle:
                names, act = parse_comp_algorithm(handle.read())
        except (OSError, IOError):
            continue
        if names:
            compressors, active, source = names, act, "sysfs"
            break
    if not compressors:
        names = parse_proc_crypto(read_text(root, "/proc/crypto"))
        if names:
            compressors, source = names, "proc-crypto"
    swaps = parse_proc_swaps(read_text(root, "/proc/swaps"))
    zram_swaps = [s for s in swaps if re.match(r"^/dev/zram\d+$", s["name"])]
    in_use = [s["name"] for s in zram_swaps]
    return {
        "compressors": compressors,
        "active": active,
        "source": source,
        "device_present": os.path.exists(host_path(root, "/dev/zram0")),
        "sysfs_devices": sorted(os.path.basename(p) for p in glob.glob(host_path(root, "/sys/block/zram*"))),
        "devices_in_use": in_use,
        "kprov_devices": [d for d in in_use if d in kprov_zram_devices(root)],
        "foreign_configs": foreign_zram_configs(root),
        "config_sha256": dict((path, file_sha256(root, path)) for path in sorted(ZRAM_TOOL_CONFIGS.values())),
        "swap_bytes": sum(s["size_bytes"] for s in zram_swaps),
        # what the kernel lets this host change (read-only in a container): os.access, as stat's
        # writeable, so the role needs no stat of its own
        "proc_sys_writable": os.access(host_path(root, "/proc/sys/vm/swappiness"), os.W_OK),
        "sysfs_writable": os.access(host_path(root, "/sys/block/zram0/disksize"), os.W_OK),
    }


#: kprov's record of the zram swap it owns: one line per device, ``key=value`` fields. Ownership
#: is this record, never a comment in a file: a device or config without it is the user's.
#:   mode=sysfs boot_id=B phase=activating|active device=zram0 algorithm=A disksize=N priority=P
#:     activated through /sys: kprov's only during boot B (nothing re-creates it after a reboot);
#:     phase=activating is written before the first change, so a run killed half-way finds its own.
#: KPROV_ZRAM_CONFIG_STATE records the zram tool config kprov wrote (its own file: a host may have
#: both records):
#:   mode=service device=zram0 config=PATH sha256=H[,H2]
#:     a zram service creates it at boot from PATH: kprov's while PATH has one of these contents
#:     (two while a run is between recording its intent and writing the file).
KPROV_ZRAM_STATE = "/etc/kprov/zram.state"
KPROV_ZRAM_CONFIG_STATE = "/etc/kprov/zram-config.state"
#: The zram configuration each zram tool reads.
ZRAM_TOOL_CONFIGS = {"zram-tools": "/etc/default/zramswap", "zram-generator": "/etc/systemd/zram-generator.conf"}


def parse_zram_state(text):
    """The records of a zram state file, each a dict of its fields (lines without a device skipped)."""
    records = []
    for line in (text or "").splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("device"):
            records.append(fields)
    return records


def boot_id(root="/"):
    return _read_stripped(root, "/proc/sys/kernel/random/boot_id") or ""


def file_sha256(root, path):
    try:
        with open(host_path(root, path), "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except (OSError, IOError):
        return None


def record_is_current(record, root="/"):
    """Whether a state record still describes a device kprov owns on this boot."""
    if record.get("mode") == "sysfs":
        return bool(record.get("boot_id")) and record.get("boot_id") == boot_id(root)
    if record.get("mode") == "service":
        path = record.get("config", "")
        digests = [d for d in record.get("sha256", "").split(",") if d]
        return path in ZRAM_TOOL_CONFIGS.values() and file_sha256(root, path) in digests
    return False


def kprov_zram_devices(root="/"):
    """The zram devices kprov set up: its own swap, not a user's, so a plan may resize it."""
    records = _zram_records(root)
    return sorted({"/dev/" + r["device"].replace("/dev/", "") for r in records if record_is_current(r, root)})


def _zram_records(root):
    return parse_zram_state(read_text(root, KPROV_ZRAM_STATE)) + parse_zram_state(read_text(root, KPROV_ZRAM_CONFIG_STATE))


def has_settings(text):
    """Whether a shell-style or INI config sets anything (not only comments and blank lines)."""
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            return True
    return False


def package_default(root, path):
    """Whether ``path`` is exactly the conffile its Debian package shipped (dpkg's recorded md5).

    Such a file is nobody's choice (trixie's zram-tools ships an /etc/default/zramswap that sets
    ALGO and PERCENT): kprov may write it. Once edited, its md5 differs and it is the user's.
    """
    status = read_text(root, "/var/lib/dpkg/status") or ""
    shipped = set(re.findall(r"^ %s ([0-9a-f]{32})(?: obsolete)?$" % re.escape(path), status, re.M))
    if not shipped:
        return False
    try:
        with open(host_path(root, path), "rb") as handle:
            return hashlib.md5(handle.read()).hexdigest() in shipped
    except (OSError, IOError):
        return False


def foreign_zram_configs(root="/"):
    """zram tool configs that set something and that neither kprov's record nor the package that
    shipped them vouches for: the user's."""
    records = _zram_records(root)
    vouched = {r.get("config") for r in records if r.get("mode") == "service" and record_is_current(r, root)}
    return sorted(
        path for path in ZRAM_TOOL_CONFIGS.values()
        if path not in vouched and has_settings(read_text(root, path)) and not package_default(root, path)
    )


def swap_totals(root="/"):
    """Swap size and use from /proc/swaps (bytes)."""
    swaps = parse_proc_swaps(read_text(root, "/proc/swaps"))
    total = sum(s["size_bytes"] for s in swaps)
    used = sum(s["used_bytes"] for s in swaps)
    return {"total_bytes": total, "free_bytes": total - used, "devices": [s["name"] for s in swaps]}


def parse_meminfo(text):
    """``/proc/meminfo`` -> ``{key: bytes}`` for the kB lines."""
    info = {}
    for line in (text or "").splitlines():
        m = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?\s*$", line)
        if m:
            value = int(m.group(2))
            info[m.group(1)] = value * 1024 if line.rstrip().endswith("kB") else value
    return info


# --------------------------------------------------------------------------- CPUs


def parse_cpuinfo(text):
    """``/proc/cpuinfo`` -> ``{"logical", "physical_cores" (or None), "model", "hypervisor_flag"}``."""
    blocks = [b for b in re.split(r"\n\s*\n", text or "") if b.strip()]
    cores = set()
    logical = 0
    model = ""
    flags = set()
    for block in blocks:
        fields = {}
        for line in block.splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip()] = value.strip()
        if "processor" in fields and fields["processor"].isdigit():
            logical += 1
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
        for key in ("model name", "Model", "Hardware", "cpu model"):
            if not model and fields.get(key):
                model = fields[key]
        flags.update(fields.get("flags", "").split())
    return {
        "logical": logical or None,
        "physical_cores": len(cores) or None,
        "model": model,
        "hypervisor_flag": "hypervisor" in flags,
    }


def topology_cores(root="/"):
    """Physical cores from sysfs topology (ARM has no "core id" in /proc/cpuinfo), or None."""
    cores = set()
    for cpu_dir in glob.glob(host_path(root, "/sys/devices/system/cpu/cpu[0-9]*/topology")):
        try:
            with open(os.path.join(cpu_dir, "core_id")) as handle:
                core = handle.read().strip()
            package = "0"
            package_file = os.path.join(cpu_dir, "physical_package_id")
            if os.path.exists(package_file):
                with open(package_file) as handle:
                    package = handle.read().strip()
            cluster_file = os.path.join(cpu_dir, "cluster_id")
            cluster = ""
            if os.path.exists(cluster_file):
                with open(cluster_file) as handle:
                    cluster = handle.read().strip()
        except (OSError, IOError):
            continue
        cores.add((package, cluster, core))
    return len(cores) or None


def affinity_count():
    """CPUs this process may run on (``nproc``), or None where the OS has no affinity call."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


# --------------------------------------------------------------------------- toolchain

#: tool -> the command line that prints its version. ``ld`` is binutils' linker.
#: Environment for the ``--version`` runs: ``distcc --version`` creates ~/.distcc unless
#: DISTCC_DIR names a place it cannot create (it still prints its version).
TOOL_ENV = {"DISTCC_DIR": os.devnull}

TOOLS = (
    ("gcc", ("gcc", "--version")),
    ("clang", ("clang", "--version")),
    ("ld", ("ld", "--version")),
    ("ld.lld", ("ld.lld", "--version")),
    ("make", ("make", "--version")),
    ("ccache", ("ccache", "--version")),
    ("distcc", ("distcc", "--version")),
    ("pahole", ("pahole", "--version")),
    ("flex", ("flex", "--version")),
    ("bison", ("bison", "--version")),
    ("bc", ("bc", "--version")),
    ("openssl", ("openssl", "version")),
    ("python3", ("python3", "--version")),
    ("rustc", ("rustc", "--version")),
)

_VERSION_RE = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+)+)")


def parse_tool_version(output):
    """The first dotted version on the first line that has one.

    ``gcc (Debian 12.2.0-14+deb12u1) 12.2.0`` -> 12.2.0, ``GNU ld (GNU Binutils) 2.40`` -> 2.40,
    ``v1.24`` (pahole) -> 1.24, ``OpenSSL 3.0.11 19 Sep 2023`` -> 3.0.11.
    """
    for line in (output or "").splitlines():
        m = _VERSION_RE.search(line)
        if m:
            return m.group(1)
    return None


# --------------------------------------------------------------------------- what goes into autoconf.h

#: Where distccd 3.3+ looks for the compilers it may run: one link per compiler name.
DISTCC_MASQUERADE_DIR = "/usr/lib/distcc"
#: The directory whose ``<triplet>-gcc-N`` / ``clang-N`` drivers are listed.
DRIVER_DIR = "/usr/bin"
#: How many versioned drivers are asked for their version line (a host with every gcc packaged
#: has a handful; the bound keeps a probe cheap whatever is installed).
MAX_DRIVERS = 8

_GCC_DRIVER_RE = re.compile(r"^([a-z0-9_]+(?:-[a-z0-9_]+)+)-gcc-(\d+)$")
_CLANG_DRIVER_RE = re.compile(r"^clang-(\d+)$")
_TRIPLET_RE = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_.]+){1,3}$")


def first_line(output):
    """The first non-empty line of a tool's output, stripped, or None (at most 200 characters)."""
    for line in (output or "").splitlines():
        line = line.strip()
        if line:
            return line[:200]
    return None


def driver_names(names):
    """The versioned compiler drivers among file names: ``{"x86_64-linux-gnu-gcc-12": ("gcc", 12), ...}``."""
    found = {}
    for name in sorted(names or ()):
        m = _GCC_DRIVER_RE.match(name)
        if m and "-gcc-" not in m.group(1):
            found[name] = ("gcc", int(m.group(2)))
            continue
        m = _CLANG_DRIVER_RE.match(name)
        if m:
            found[name] = ("clang", int(m.group(1)))
    return found


def _compiler(kind, run, drivers):
    """One compiler's facts: its version line (as CONFIG_CC_VERSION_TEXT records it), triplet,
    major version and the versioned driver that exists for that version, or None when absent."""
    text = first_line(run((kind, "--version")))
    if not text:
        return None
    version = parse_tool_version(text)
    triplet = first_line(run((kind, "-dumpmachine"))) or ""
    if not _TRIPLET_RE.match(triplet):
        triplet = ""
    major = int(version.split(".")[0]) if version else None
    if kind == "gcc":
        driver = "%s-gcc-%s" % (triplet, major) if triplet and major is not None else None
    else:
        driver = "clang-%s" % major if major is not None else None
    return {
        "kind": kind,
        "version_text": text,
        "version": version or "",
        "triplet": triplet,
        "driver": driver if driver in drivers else None,
    }


def toolchain_facts(run, listdir, root="/"):
    """What decides whether two hosts build the same objects, and what a distcc server can run.

    ``run(argv)`` returns a command's standard output (None when it fails or is absent);
    ``listdir(path)`` a directory's names (empty when it cannot be read). The local facts and the
    role's probe module pass their own; the rules here are the same for both.
    """
    drivers = driver_names(listdir(host_path(root, DRIVER_DIR)))
    compilers = [c for c in (_compiler(kind, run, drivers) for kind in ("gcc", "clang")) if c]
    versions = {}
    # the drivers the compilers resolve to first: a host with many drivers keeps those in the list
    asked = [c["driver"] for c in compilers if c["driver"]]
    for name in asked + [n for n in sorted(drivers) if n not in asked]:
        if len(versions) >= MAX_DRIVERS:
            break
        # a driver's line names the driver ("x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0"):
        # with CC set to it, that is what CONFIG_CC_VERSION_TEXT records
        line = first_line(run((name, "--version")))
        if line:
            versions[name] = line
    masquerade = listdir(host_path(root, DISTCC_MASQUERADE_DIR))
    return {
        "compilers": compilers,
        "drivers": versions,
        "assembler": first_line(run(("as", "--version"))),
        "linker": first_line(run(("ld", "--version"))),
        "lld": first_line(run(("ld.lld", "--version"))),
        "pahole": first_line(run(("pahole", "--version"))),
        "distcc_links": sorted(masquerade) if masquerade is not None else None,
    }


def list_names(path):
    """The names in a directory, or None when it does not exist or cannot be read."""
    try:
        return os.listdir(path)
    except (OSError, IOError):
        return None


# --------------------------------------------------------------------------- the group database


def parse_group_members(group_text, passwd_text, group):
    """Members of ``group`` from ``/etc/group`` and ``/etc/passwd`` text (its listed members, then
    the accounts whose primary group it is), or None when the group does not exist."""
    gid = None
    members = []
    for line in (group_text or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == group:
            gid = fields[2]
            members = [m for m in fields[3].split(",") if m]
            break
    if gid is None:
        return None
    for line in (passwd_text or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[3] == gid and fields[0] not in members:
            members.append(fields[0])
    return members


def group_members(group, root="/"):
    """``parse_group_members`` of this host's files (local accounts; a directory service is not asked)."""
    return parse_group_members(read_text(root, "/etc/group"), read_text(root, "/etc/passwd"), group)


# --------------------------------------------------------------------------- virtualization


def parse_environ(data):
    """``/proc/<pid>/environ`` (NUL separated) -> dict."""
    env = {}
    for item in (data or "").split("\0"):
        if "=" in item:
            key, value = item.split("=", 1)
            env[key] = value
    return env


def cgroup_container_hint(text):
    """Container engine named by the paths of a ``/proc/<pid>/cgroup``, or None."""
    for line in (text or "").splitlines():
        path = line.split(":", 2)[-1]
        for needle, tech in CGROUP_CONTAINER_HINTS:
            if needle in path:
                return tech
    return None


def sys_read_only(root="/"):
    """Whether /sys is mounted read-only, as container engines do for unprivileged containers."""
    for m in parse_mountinfo(read_text(root, "/proc/self/mountinfo")):
        if m["mount_point"] == "/sys":
            return "ro" in m["options"]
    return False


def detect_virtualization(root="/", cpuinfo=None):
    """``"container:<tech>"``, ``"vm"`` or ``"none"``, with the evidence that decided it.

    Strong container signs: ``/run/.containerenv`` (podman), ``container=`` in PID 1's environment
    (podman, lxc, systemd-nspawn), or a container engine in PID 1's cgroup path. ``/.dockerenv``
    alone is weak: images built with docker keep it when they boot as VMs with their own kernel,
    so it counts only together with a read-only /sys, which a VM never has.
    """
    evidence = []
    tech = None
    if os.path.exists(host_path(root, "/run/.containerenv")):
        tech = "podman"
        evidence.append("/run/.containerenv")
    env = parse_environ(read_text(root, "/proc/1/environ"))
    if not tech and env.get("container"):
        tech = env["container"]
        evidence.append("container=%s in /proc/1/environ" % tech)
    if not tech:
        hint = cgroup_container_hint(read_text(root, "/proc/1/cgroup"))
        if hint:
            tech = hint
            evidence.append("/proc/1/cgroup names %s" % hint)
    if not tech and os.path.exists(host_path(root, "/.dockerenv")):
        if sys_read_only(root):
            tech = "docker"
            evidence.append("/.dockerenv and read-only /sys")
        else:
            evidence.append("/.dockerenv ignored: /sys is writable")
    if tech:
        return "container:" + tech, evidence
    hv_type = _read_stripped(root, "/sys/hypervisor/type")
    if hv_type:
        evidence.append("/sys/hypervisor/type is %s" % hv_type)
        return "vm", evidence
    if cpuinfo is None:
        cpuinfo = parse_cpuinfo(read_text(root, "/proc/cpuinfo"))
    if cpuinfo.get("hypervisor_flag"):
        evidence.append("hypervisor flag in /proc/cpuinfo")
        return "vm", evidence
    return "none", evidence


# --------------------------------------------------------------------------- all of it


def probe(root="/"):
    """Everything above as one JSON-able dict (the ``probe`` result of the Ansible module)."""
    cpuinfo = parse_cpuinfo(read_text(root, "/proc/cpuinfo"))
    physical = cpuinfo["physical_cores"] or topology_cores(root)
    cgroup = cgroup_limits(root)
    affinity = affinity_count()
    logical = os.cpu_count() if root in ("/", "", None) else cpuinfo["logical"]
    logical = logical or cpuinfo["logical"] or affinity or 1
    virtualization, evidence = detect_virtualization(root, cpuinfo)
    meminfo = parse_meminfo(read_text(root, "/proc/meminfo"))
    return {
        "cpu": {
            "logical": logical,
            "affinity": affinity,
            "physical_cores": physical,
            "cgroup_quota": cgroup["cpu_quota"],
            "usable": usable_cpus(affinity or logical, cgroup["cpu_quota"]),
            "model": cpuinfo["model"],
        },
        "memory": {
            "total_bytes": meminfo.get("MemTotal"),
            "available_bytes": meminfo.get("MemAvailable"),
            "cgroup_limit_bytes": cgroup["memory_limit_bytes"],
            "cgroup_usage_bytes": cgroup["memory_usage_bytes"],
            "cgroup_swap_limit_bytes": cgroup["swap_limit_bytes"],
            "cgroup_high_bytes": cgroup["memory_high_bytes"],
        },
        "cgroup": cgroup,
        "swap": swap_totals(root),
        "zram": zram_facts(root),
        "virtualization": virtualization,
        "virtualization_evidence": evidence,
        "service_manager": service_manager(root),
    }


def service_manager(root="/"):
    """``systemd`` when systemd runs this host (its own test, sd_booted: /run/systemd/system is a
    directory), else PID 1's name (``sleep`` in a bare container), ``""`` when unreadable."""
    if os.path.isdir(host_path(root, "/run/systemd/system")):
        return "systemd"
    return (_read_stripped(root, "/proc/1/comm") or "")[:32]


# --------------------------------------------------------------------------- paths written as root


def unsafe_path(path, root="/"):
    """Why writing ``path`` as root could be turned against the host, or None when it is safe.

    Refused: ``path`` itself a symlink (a file task would change the link's target: a planted
    ``/var/tmp/x -> /etc`` would become group-writable), a component that is a symlink not owned by
    root (its owner can point it anywhere between the check and the write), and a parent directory
    that others may write without the sticky bit (they can swap what is in it). Root's own
    symlinks on the way (``/var/run -> /run``) are followed and their targets checked the same way.
    Parts of ``path`` that do not exist yet are created by root below the last checked directory.
    """
    if not path or not path.startswith("/"):
        return "%s: not an absolute path" % path
    current = "/"
    parts = [p for p in path.split("/") if p]
    hops = 0
    while parts:
        name = parts.pop(0)
        candidate = os.path.join(current, name)
        try:
            st = os.lstat(host_path(root, candidate))
        except FileNotFoundError:
            return None
        except OSError as exc:
            return "%s: cannot be checked (%s)" % (candidate, exc.strerror)
        if stat.S_ISLNK(st.st_mode):
            if not parts:
                return "%s is a symlink: kprov writes the path itself, never through a link" % candidate
            if st.st_uid != 0:
                return "%s is a symlink owned by uid %d, not root: it could be pointed anywhere" % (candidate, st.st_uid)
            hops += 1
            if hops > 40:
                return "%s: too many levels of symlinks" % path
            target = os.readlink(host_path(root, candidate))
            resolved = target if target.startswith("/") else os.path.join(current, target)
            parts = [p for p in os.path.normpath(resolved).split("/") if p] + parts
            current = "/"
            continue
        if parts and stat.S_ISDIR(st.st_mode) and st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:
            return "%s is writable by everyone without the sticky bit: anyone could swap what kprov writes there" % candidate
        current = candidate
    return None


#: The largest record read_record reads: kprov's records are a few hundred bytes.
RECORD_MAX_BYTES = 65536


def read_record(path, root="/"):
    """One of kprov's JSON records: its object when it is a regular file (not a symlink) owned by
    root and at most RECORD_MAX_BYTES, else None. The content is data, never evaluated."""
    full = host_path(root, path)
    try:
        st = os.lstat(full)
    except (OSError, IOError):
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_size > RECORD_MAX_BYTES:
        return None
    try:
        data = json.loads(read_text(root, path) or "")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def settled(path, mode, root="/"):
    """Whether one of kprov's own paths is already as the role leaves it: root's (uid and gid 0),
    not a symlink, with this mode (an octal string). Then 'dir' for a directory, the sha256 of a
    regular file of at most RECORD_MAX_BYTES, 'other' for anything else; None when it is not so."""
    full = host_path(root, path)
    try:
        st = os.lstat(full)
    except (OSError, IOError):
        return None
    if stat.S_ISLNK(st.st_mode) or st.st_uid != 0 or st.st_gid != 0 or stat.S_IMODE(st.st_mode) != int(mode, 8):
        return None
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if not stat.S_ISREG(st.st_mode):
        return "other"
    if st.st_size > RECORD_MAX_BYTES:
        return None
    return file_sha256(root, path)


def unsafe_paths(paths, root="/"):
    """The first unsafe path's reason (see unsafe_path), or None when all of them are safe."""
    for path in paths:
        reason = unsafe_path(path, root)
        if reason:
            return reason
    return None


# --------------------------------------------------------------------------- a directory to hand to a group

#: The entries of a ccache cache directory (ccache 3 and 4); kprov's rules.names.CCACHE_ENTRIES,
#: tests/test_untrusted_paths.py keeps the two equal.
CCACHE_ENTRIES = frozenset(list("0123456789abcdef") + ["tmp", "lock", "ccache.conf", "stats", "CACHEDIR.TAG"])
#: ccache's entries that are directories; its other entries are regular files.
CCACHE_DIR_ENTRIES = frozenset(list("0123456789abcdef") + ["tmp"])


def ccache_entry_ok(name, mode):
    """Whether an entry of a directory is one of ccache's own, of ccache's kind by lstat's ``mode``:
    a real directory (0-f, tmp) or a regular file (CACHEDIR.TAG, ccache.conf, stats, lock), never
    a symbolic link or anything else."""
    if name not in CCACHE_ENTRIES:
        return False
    return stat.S_ISDIR(mode) if name in CCACHE_DIR_ENTRIES else stat.S_ISREG(mode)


def home_of(path):
    """The first account whose home directory is ``path`` (as written, or once links are resolved)."""
    real = os.path.realpath(path)
    names = (os.path.basename(path), os.path.basename(real))
    try:
        accounts = pwd.getpwall()
    except OSError:  # pragma: no cover - an account database that cannot be listed
        return ""
    for account in accounts:
        home = os.path.normpath(account.pw_dir or "/")
        if home == "/":
            continue
        if home in (path, real) or (os.path.basename(home) in names and os.path.realpath(home) == real):
            return account.pw_name
    return ""


def group_name(gid):
    """The name of group ``gid``, or "" when it has none."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""
