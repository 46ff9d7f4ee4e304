"""provision.facts and the role's kbuild_host_sysprobe parsers (fake /proc,/sys trees and this host)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provision.errors import UserError
from provision.facts.files import MAX_FILE_BYTES, parse_json, read_bounded, read_text
from provision.facts.local import (
    TOOLS,
    distro_family,
    dump_facts,
    gather,
    load_facts_file,
    parse_tool_version,
    sysprobe,
)
from provision.facts.tree import parse_min_versions, tree_facts
from provision.model.facts import HostFacts
from provision.model.schema import FAMILIES
from provision.resources import role_dir

FIXTURES = Path(__file__).parent / "fixtures"
SP = sysprobe()
V1_SENTINEL = "9223372036854771712"


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


# --------------------------------------------------------------------------- one source of truth


def test_sysprobe_is_loaded_from_the_roles_module_utils():
    expected = role_dir() / "module_utils" / "kbuild_host_sysprobe.py"
    assert Path(SP.__file__).resolve() == expected.resolve()
    assert TOOLS == dict(SP.TOOLS)


# --------------------------------------------------------------------------- cgroup v2


@pytest.fixture
def v2_tree(tmp_path: Path) -> Path:
    write(tmp_path, "/proc/self/cgroup", "0::/user.slice/build.scope\n")
    write(tmp_path, "/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    write(tmp_path, "/sys/fs/cgroup/user.slice/cpu.max", "max 100000\n")
    write(tmp_path, "/sys/fs/cgroup/user.slice/memory.max", "max\n")
    write(tmp_path, "/sys/fs/cgroup/user.slice/build.scope/cpu.max", "150000 100000\n")
    write(tmp_path, "/sys/fs/cgroup/user.slice/build.scope/memory.max", "4294967296\n")
    write(tmp_path, "/sys/fs/cgroup/user.slice/build.scope/memory.current", "52338688\n")
    return tmp_path


def test_v2_quota_150000_over_100000_gives_2_cpus(v2_tree: Path):
    limits = SP.cgroup_limits(str(v2_tree))
    assert limits["version"] == "v2"
    assert limits["cpu_quota"] == 1.5
    assert limits["cpu_source"] == "/sys/fs/cgroup/user.slice/build.scope/cpu.max"
    assert SP.usable_cpus(8, limits["cpu_quota"]) == 2
    assert limits["memory_limit_bytes"] == 4 << 30
    assert limits["memory_usage_bytes"] == 52338688


def test_v2_max_is_unlimited(v2_tree: Path):
    write(v2_tree, "/sys/fs/cgroup/user.slice/build.scope/cpu.max", "max 100000\n")
    write(v2_tree, "/sys/fs/cgroup/user.slice/build.scope/memory.max", "max\n")
    limits = SP.cgroup_limits(str(v2_tree))
    assert limits["cpu_quota"] is None
    assert limits["memory_limit_bytes"] is None
    assert SP.usable_cpus(8, None) == 8


def test_v2_parent_limit_applies_to_the_child(v2_tree: Path):
    write(v2_tree, "/sys/fs/cgroup/user.slice/memory.max", str(1 << 30))
    write(v2_tree, "/sys/fs/cgroup/user.slice/cpu.max", "50000 100000")
    limits = SP.cgroup_limits(str(v2_tree))
    assert limits["memory_limit_bytes"] == 1 << 30
    assert limits["memory_source"] == "/sys/fs/cgroup/user.slice/memory.max"
    assert limits["cpu_quota"] == 0.5
    assert SP.usable_cpus(8, 0.5) == 1  # never below one


def test_v2_in_a_cgroup_namespace_reads_the_mount_itself(tmp_path: Path):
    # inside a container /proc/self/cgroup says "0::/" and the limits sit at the mount point
    write(tmp_path, "/proc/self/cgroup", "0::/\n")
    write(tmp_path, "/sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
    write(tmp_path, "/sys/fs/cgroup/cpu.max", "400000 100000\n")
    write(tmp_path, "/sys/fs/cgroup/memory.max", "2147483648\n")
    limits = SP.cgroup_limits(str(tmp_path))
    assert (limits["cpu_quota"], limits["memory_limit_bytes"]) == (4.0, 2 << 30)


# --------------------------------------------------------------------------- cgroup v1


@pytest.fixture
def v1_tree(tmp_path: Path) -> Path:
    write(
        tmp_path,
        "/proc/self/cgroup",
        "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n",
    )
    base = "/sys/fs/cgroup/cpu,cpuacct/docker/abc"
    write(tmp_path, f"{base}/cpu.cfs_quota_us", "400000\n")
    write(tmp_path, f"{base}/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "4294967296\n")
    write(tmp_path, "/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "1048576\n")
    write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", V1_SENTINEL + "\n")
    return tmp_path


def test_v1_cfs_quota_and_memory_limit(v1_tree: Path):
    limits = SP.cgroup_limits(str(v1_tree))
    assert limits["version"] == "hybrid"
    assert limits["cpu_quota"] == 4.0
    assert limits["memory_limit_bytes"] == 4 << 30
    assert limits["memory_usage_bytes"] == 1 << 20
    assert SP.usable_cpus(32, limits["cpu_quota"]) == 4


def test_v1_unlimited_sentinel_and_minus_one(v1_tree: Path):
    write(v1_tree, "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n")
    write(v1_tree, "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", V1_SENTINEL + "\n")
    limits = SP.cgroup_limits(str(v1_tree))
    assert limits["cpu_quota"] is None
    assert limits["memory_limit_bytes"] is None


def test_v1_mount_of_a_subtree_found_through_mountinfo(tmp_path: Path):
    # podman --cgroupns=host: the path in /proc/self/cgroup is the mount's root, bound at the mount point
    cg = "/libpod_parent/libpod-4d92"
    write(tmp_path, "/proc/self/cgroup", f"4:memory:{cg}\n1:cpu:{cg}\n")
    write(
        tmp_path,
        "/proc/self/mountinfo",
        f"89 88 0:29 {cg} /sys/fs/cgroup/cpu ro,nosuid - cgroup cgroup rw,cpu\n"
        f"92 88 0:32 {cg} /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
    )
    write(tmp_path, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "100000")
    write(tmp_path, "/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000")
    write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "314572800")
    limits = SP.cgroup_limits(str(tmp_path))
    assert limits["cpu_quota"] == 1.0
    assert limits["memory_limit_bytes"] == 314572800


def test_no_cgroups_at_all(tmp_path: Path):
    limits = SP.cgroup_limits(str(tmp_path))
    assert limits["version"] == "none"
    assert limits["cpu_quota"] is None and limits["memory_limit_bytes"] is None


@pytest.mark.parametrize(
    "text, expected",
    [("max", None), ("", None), (V1_SENTINEL, None), ("9223372036854710272", None), ("1073741824\n", 1 << 30)],
)
def test_parse_memory_limit(text, expected):
    assert SP.parse_memory_limit(text) == expected


@pytest.mark.parametrize(
    "affinity, quota, usable", [(2, None, 2), (32, 4.0, 4), (32, 3.2, 4), (2, 8.0, 2), (4, 0.2, 1), (0, None, 1)]
)
def test_usable_cpus(affinity, quota, usable):
    assert SP.usable_cpus(affinity, quota) == usable


# --------------------------------------------------------------------------- zram and swap

PROC_CRYPTO = """name         : deflate
driver       : deflate-generic
module       : kernel
priority     : 0
refcnt       : 1
selftest     : passed
internal     : no
type         : acomp

name         : lzo-rle
driver       : lzo-rle-scomp
module       : kernel
priority     : 0
refcnt       : 1
selftest     : passed
internal     : no
type         : scomp

name         : lzo
driver       : lzo-scomp
module       : kernel
priority     : 0
refcnt       : 1
selftest     : passed
internal     : no
type         : scomp

name         : crc32c
driver       : crc32c-generic
module       : kernel
priority     : 100
refcnt       : 1
selftest     : passed
internal     : no
type         : shash
blocksize    : 1
digestsize   : 4
"""


@pytest.mark.parametrize(
    "text, names, active",
    [
        ("[lzo-rle] lzo lz4 \n", ["lzo-rle", "lzo", "lz4"], "lzo-rle"),
        ("lzo lzo-rle lz4 lz4hc 842 [zstd]\n", ["lzo", "lzo-rle", "lz4", "lz4hc", "842", "zstd"], "zstd"),
        ("", [], None),
    ],
)
def test_parse_comp_algorithm(text, names, active):
    assert SP.parse_comp_algorithm(text) == (names, active)


def test_zram_from_sysfs(tmp_path: Path):
    write(tmp_path, "/sys/block/zram0/comp_algorithm", "lzo lzo-rle lz4 [zstd]\n")
    write(tmp_path, "/dev/zram0", "")
    write(
        tmp_path,
        "/proc/swaps",
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/dev/zram0                              partition\t8388604\t\t1024\t\t100\n"
        "/swapfile                               file\t\t2097148\t\t0\t\t-2\n",
    )
    z = SP.zram_facts(str(tmp_path))
    assert z["compressors"] == ["lzo", "lzo-rle", "lz4", "zstd"]
    assert (z["active"], z["source"], z["device_present"]) == ("zstd", "sysfs", True)
    assert z["devices_in_use"] == ["/dev/zram0"]
    assert z["swap_bytes"] == 8388604 * 1024
    swap = SP.swap_totals(str(tmp_path))
    assert swap["total_bytes"] == (8388604 + 2097148) * 1024
    assert swap["free_bytes"] == swap["total_bytes"] - 1024 * 1024


def test_zram_falls_back_to_proc_crypto(tmp_path: Path):
    write(tmp_path, "/proc/crypto", PROC_CRYPTO)
    z = SP.zram_facts(str(tmp_path))
    assert z["source"] == "proc-crypto"
    assert z["compressors"] == ["lzo-rle", "lzo", "deflate"]  # not crc32c: a hash, not a compressor
    assert z["active"] is None and z["device_present"] is False and z["devices_in_use"] == []


def test_zram_with_nothing_known(tmp_path: Path):
    z = SP.zram_facts(str(tmp_path))
    assert (z["compressors"], z["source"]) == ([], "none")


# --------------------------------------------------------------------------- CPUs and virtualization

CPUINFO_2 = "".join(
    f"processor\t: {i}\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nphysical id\t: 0\n"
    f"siblings\t: 4\ncore id\t\t: {i // 2}\ncpu cores\t: 2\nflags\t\t: fpu sse2 hypervisor\n\n"
    for i in range(4)
)


def test_cpuinfo_physical_cores_from_core_ids():
    info = SP.parse_cpuinfo(CPUINFO_2)
    assert info == {"logical": 4, "physical_cores": 2, "model": "AMD EPYC", "hypervisor_flag": True}


def test_arm_cores_from_sysfs_topology(tmp_path: Path):
    write(tmp_path, "/proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 108.00\n\nprocessor\t: 1\n\nModel\t: Raspberry Pi 4\n")
    for cpu in range(4):
        write(tmp_path, f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id", str(cpu))
        write(tmp_path, f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id", "0")
    assert SP.parse_cpuinfo((tmp_path / "proc/cpuinfo").read_text())["physical_cores"] is None
    assert SP.topology_cores(str(tmp_path)) == 4
    assert SP.probe(str(tmp_path))["cpu"]["physical_cores"] == 4


def test_podman_container_detected(tmp_path: Path):
    write(tmp_path, "/run/.containerenv", "")
    assert SP.detect_virtualization(str(tmp_path))[0] == "container:podman"


def test_container_env_of_pid_1(tmp_path: Path):
    write(tmp_path, "/proc/1/environ", "PATH=/usr/bin\0container=lxc\0")
    assert SP.detect_virtualization(str(tmp_path))[0] == "container:lxc"


def test_container_from_pid_1_cgroup(tmp_path: Path):
    write(tmp_path, "/proc/1/cgroup", "0::/kubepods/burstable/pod1/abc\n")
    assert SP.detect_virtualization(str(tmp_path))[0] == "container:kubernetes"


def test_dockerenv_counts_only_with_a_read_only_sys(tmp_path: Path):
    write(tmp_path, "/.dockerenv", "")
    write(tmp_path, "/proc/cpuinfo", CPUINFO_2)
    write(tmp_path, "/proc/self/mountinfo", "23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n")
    assert SP.detect_virtualization(str(tmp_path))[0] == "vm"  # a VM booted from a docker-built image
    write(tmp_path, "/proc/self/mountinfo", "23 27 0:22 / /sys ro,nosuid - sysfs sysfs ro\n")
    assert SP.detect_virtualization(str(tmp_path))[0] == "container:docker"


def test_bare_metal_and_xen(tmp_path: Path):
    write(tmp_path, "/proc/cpuinfo", CPUINFO_2.replace(" hypervisor", ""))
    assert SP.detect_virtualization(str(tmp_path))[0] == "none"
    write(tmp_path, "/sys/hypervisor/type", "xen\n")
    assert SP.detect_virtualization(str(tmp_path))[0] == "vm"


def test_probe_of_a_fake_tree_is_json(v2_tree: Path):
    write(v2_tree, "/proc/cpuinfo", CPUINFO_2)
    write(v2_tree, "/proc/meminfo", "MemTotal:       24684084 kB\nMemAvailable:   24308320 kB\n")
    result = SP.probe(str(v2_tree))
    assert json.loads(json.dumps(result)) == result
    assert result["cpu"]["cgroup_quota"] == 1.5
    assert result["memory"]["total_bytes"] == 24684084 * 1024
    assert result["memory"]["cgroup_limit_bytes"] == 4 << 30


# --------------------------------------------------------------------------- tool versions and distro


@pytest.mark.parametrize(
    "output, version",
    [
        ("gcc (Debian 12.2.0-14+deb12u1) 12.2.0\nCopyright (C) 2022", "12.2.0"),
        ("gcc (GCC) 14.1.1 20240701 (Red Hat 14.1.1-7)", "14.1.1"),
        ("Ubuntu clang version 18.1.3 (1ubuntu1)\nTarget: x86_64-pc-linux-gnu", "18.1.3"),
        ("GNU ld (GNU Binutils for Debian) 2.40", "2.40"),
        ("GNU ld version 2.41-37.fc40", "2.41"),
        ("Debian LLD 14.0.6 (compatible with GNU linkers)", "14.0.6"),
        ("v1.24", "1.24"),
        ("OpenSSL 3.0.11 19 Sep 2023 (Library: OpenSSL 3.0.11 19 Sep 2023)", "3.0.11"),
        ("distcc 3.4 x86_64-pc-linux-gnu\n", "3.4"),
        ("rustc 1.95.0 (59807616e 2026-04-14)", "1.95.0"),
        ("no version here", None),
    ],
)
def test_parse_tool_version(output, version):
    assert parse_tool_version(output) == version


@pytest.mark.parametrize(
    "did, like, family",
    [
        ("debian", (), "debian"),
        ("ubuntu", ("debian",), "debian"),
        ("linuxmint", ("ubuntu", "debian"), "debian"),
        ("raspbian", ("debian",), "debian"),
        ("pop", ("ubuntu", "debian"), "debian"),
        ("fedora", (), "redhat"),
        ("rocky", ("rhel", "centos", "fedora"), "redhat"),
        ("almalinux", ("rhel",), "redhat"),
        ("arch", (), "arch"),
        ("endeavouros", ("arch",), "arch"),
        ("manjaro", ("arch",), "arch"),
        ("opensuse-tumbleweed", ("opensuse", "suse"), "suse"),
        ("sles", (), "suse"),
        ("alpine", (), "alpine"),
        ("somederivative", ("fedora",), "redhat"),
        ("gentoo", (), "unknown"),
    ],
)
def test_distro_family(did, like, family):
    assert distro_family(did, like) == family


# --------------------------------------------------------------------------- kernel tree

# Documentation/process/changes.rst of a 4.x kernel, verbatim (the Sphinx row mixes tabs in).
CHANGES_4X = """Current Minimal Requirements
****************************

Upgrade to at **least** these software revisions before thinking you've
encountered a bug!  If you're unsure what version you're currently
running, the suggested command should tell you.

====================== ===============  ========================================
        Program        Minimal version       Command to check the version
====================== ===============  ========================================
GNU C                  4.9              gcc --version
GNU make               3.81             make --version
binutils               2.23             ld -v
flex                   2.5.35           flex --version
bison                  2.0              bison --version
util-linux             2.10o            fdformat --version
kmod                   13               depmod -V
e2fsprogs              1.41.4           e2fsck -V
pcmciautils            004              pccardctl -V
openssl & libcrypto    1.0.0            openssl version
bc                     1.06.95          bc --version
Sphinx\\ [#f1]_\t       1.3\t\tsphinx-build --version
====================== ===============  ========================================

.. [#f1] Sphinx is needed only to build the Kernel documentation

Kernel compilation
******************

GNU make               9.99             (not a table row: after the closing rule)
"""

# The same table in a 6.x kernel, rows as in the 6.12 tree.
CHANGES_6X = """Current Minimal Requirements
****************************

====================== ===============  ========================================
        Program        Minimal version       Command to check the version
====================== ===============  ========================================
GNU C                  5.1              gcc --version
Clang/LLVM (optional)  13.0.1           clang --version
Rust (optional)        1.78.0           rustc --version
bindgen (optional)     0.65.1           bindgen --version
GNU make               3.82             make --version
bash                   4.2              bash --version
binutils               2.25             ld -v
flex                   2.5.35           flex --version
bison                  2.0              bison --version
pahole                 1.16             pahole --version
util-linux             2.10o            mount --version
openssl & libcrypto    1.0.0            openssl version
bc                     1.06.95          bc --version
Sphinx\\ [#f1]_         2.4.4            sphinx-build --version
cpio                   any              cpio --version
GNU tar                1.28             tar --version
gtags (optional)       6.6.5            gtags --version
Python (optional)      3.9.x            python3 --version
====================== ===============  ========================================
"""


def test_changes_rst_4x_table():
    assert parse_min_versions(CHANGES_4X) == {
        "gcc": "4.9",
        "make": "3.81",
        "ld": "2.23",
        "flex": "2.5.35",
        "bison": "2.0",
        "kmod": "13",
        "openssl": "1.0.0",
        "bc": "1.06.95",
    }


def test_changes_rst_6x_table():
    mins = parse_min_versions(CHANGES_6X)
    assert mins["gcc"] == "5.1"
    assert mins["clang"] == "13.0.1"
    assert mins["rustc"] == "1.78.0"
    assert mins["ld"] == "2.25"
    assert mins["pahole"] == "1.16"
    assert mins["python3"] == "3.9"
    assert mins["tar"] == "1.28"
    assert "cpio" not in mins  # "any" is no version
    assert parse_min_versions("no table here") == {}


def make_tree(root: Path, version=("6", "1", "112")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    v, p, s = version
    (root / "Makefile").write_text(
        f"# SPDX-License-Identifier: GPL-2.0\nVERSION = {v}\nPATCHLEVEL = {p}\nSUBLEVEL = {s}\n"
        "EXTRAVERSION =\nNAME = Curry Ramen\n"
    )
    (root / "Kconfig").write_text('mainmenu "Linux/$(ARCH) $(KERNELVERSION) Kernel Configuration"\n')
    (root / "scripts").mkdir(exist_ok=True)
    write(root, "Documentation/process/changes.rst", CHANGES_6X)
    return root


KCONFIG = """#
# Automatically generated file; DO NOT EDIT.
CONFIG_CC_IS_GCC=y
CONFIG_GCC_VERSION=120200
CONFIG_MODULES=y
CONFIG_DEBUG_INFO=y
CONFIG_DEBUG_INFO_DWARF5=y
CONFIG_DEBUG_INFO_BTF=y
# CONFIG_GCC_PLUGINS is not set
CONFIG_LTO_NONE=y
CONFIG_SYSTEM_TRUSTED_KEYS="debian/certs/debian-uefi-certs.pem"
CONFIG_EXT4_FS=m
CONFIG_BTRFS_FS=m
CONFIG_E1000E=m
CONFIG_NET=y
"""


def test_tree_facts(tmp_path: Path):
    tree = make_tree(tmp_path / "linux")
    (tree / ".config").write_text(KCONFIG)
    t = tree_facts(tree)
    assert t.kernel_version == "6.1.112"
    assert t.has_config is True
    assert t.modules == 3
    assert t.config["DEBUG_INFO_BTF"] == "y"
    assert t.config["GCC_PLUGINS"] == "n"
    assert t.config["LTO_NONE"] == "y"
    assert t.config["SYSTEM_TRUSTED_KEYS"] == "debian/certs/debian-uefi-certs.pem"
    assert "NET" not in t.config and "EXT4_FS" not in t.config
    assert t.min_versions["gcc"] == "5.1"


def test_tree_config_read_from_the_build_dir(tmp_path: Path):
    tree = make_tree(tmp_path / "linux")
    (tree / ".config").write_text("CONFIG_MODULES=y\nCONFIG_A=m\n")
    build = tmp_path / "build"
    build.mkdir()
    (build / ".config").write_text(KCONFIG)
    assert tree_facts(tree, build).modules == 3
    assert tree_facts(tree, tmp_path / "empty").has_config is False


@pytest.mark.parametrize("broken", ["no-makefile", "no-version", "no-kconfig", "no-scripts"])
def test_not_a_kernel_tree(tmp_path: Path, broken: str):
    tree = make_tree(tmp_path / "linux")
    if broken == "no-makefile":
        (tree / "Makefile").unlink()
    elif broken == "no-version":
        (tree / "Makefile").write_text("all:\n\techo hi\n")
    elif broken == "no-kconfig":
        (tree / "Kconfig").unlink()
    else:
        (tree / "scripts").rmdir()
    with pytest.raises(UserError) as err:
        gather(tree=str(tree))
    assert str(err.value) == (
        f"--tree {tree}: not a Linux kernel source tree (no top-level Makefile with VERSION/PATCHLEVEL)"
    )


@pytest.mark.parametrize("name", ["Makefile", ".config", "Documentation/process/changes.rst"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "too-big"])
def test_tree_files_that_are_not_small_regular_files_are_refused_unread(tmp_path: Path, name: str, kind: str):
    tree = make_tree(tmp_path / "linux")
    path = tree / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block forever: it must not even be opened for a read
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        with open(path, "wb") as handle:
            handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(UserError) as err:
        tree_facts(tree)
    assert name.rsplit("/", 1)[-1] in str(err.value)
    assert "regular file" in str(err.value) or "16 MiB" in str(err.value)


def test_read_bounded_reads_a_regular_file_whole(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * (3 << 20))
    assert len(read_bounded(path, "f")) == 3 << 20
    assert read_text(path, "f") == "x" * (3 << 20)
    path.write_bytes(b"\xef\xbb\xbf{}")  # a byte-order mark is fine
    assert read_text(path, "f") == "{}"
    with pytest.raises(UserError, match="f: larger than 2 bytes"):
        read_bounded(path, "f", limit=2)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        ('{"a": NaN}', "NaN is not a number JSON allows"),
        ('{"a": -Infinity}', "-Infinity is not a number JSON allows"),
        ('{"a": 1e400}', "1e400 is out of range"),
        ('{"a": ' + "1" * 21 + "}", "a 21-digit integer"),
        ('{"a": -' + "1" * 5000 + "}", "a 5000-digit integer"),
        ("{", "not JSON"),
    ],
)
def test_parse_json_refuses_what_a_facts_file_must_not_hold(text: str, message: str):
    with pytest.raises(UserError) as err:
        parse_json(text, "--facts F")
    assert str(err.value).startswith("--facts F: ") and message in str(err.value)


def test_parse_json_keeps_20_digit_integers_and_plain_floats():
    assert parse_json('{"a": 18446744073709551615, "b": -1.5e3}', "F") == {"a": 2**64 - 1, "b": -1500.0}


@pytest.mark.parametrize(
    "where, value, message",
    [
        ("memory.total_bytes", 0, "memory.total_bytes: 0 is out of range"),
        ("memory.total_bytes", 2**63, "memory.total_bytes: 9223372036854775808 is out of range"),
        ("memory.available_bytes", -1, "memory.available_bytes: -1 is out of range"),
        ("memory.cgroup_limit_bytes", -1, "memory.cgroup_limit_bytes: -1 is out of range"),
        ("cpu.usable", 0, "cpu.usable: 0 is out of range (expected 1..65536)"),
        ("cpu.physical_cores", -2, "cpu.physical_cores: -2 is out of range"),
        ("cpu.cgroup_quota", 0.0, "cpu.cgroup_quota: 0.0 is out of range"),
        ("disks.0.total_bytes", -5, "disks[0].total_bytes: -5 is out of range"),
        ("zram.compressors", ["lz4", "LZ4;x"], "zram.compressors[1]"),
        ("zram.active", "zstd\n", "zram.active"),
        ("default_ipv4", "300.1.1.1", "default_ipv4"),
    ],
)
def test_facts_file_values_out_of_range_are_refused_by_name(tmp_path: Path, where: str, value, message: str):
    data = json.loads((FIXTURES / "laptop-8c-16g.json").read_text())
    *parents, last = (int(k) if k.isdigit() else k for k in where.split("."))
    target = data
    for key in parents:
        target = target[key]
    target[last] = value
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as err:
        load_facts_file(path)
    assert str(err.value).startswith(f"--facts {path}: ")
    assert message in str(err.value)


def test_facts_files_must_be_regular_files(tmp_path: Path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(UserError, match="not a regular file"):
            load_facts_file(path)


def test_gather_in_a_deleted_directory_is_one_clear_error(tmp_path: Path):
    gone = tmp_path / "gone"
    gone.mkdir()
    code = (
        "import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1])\n"
        "from provision.facts import local as facts\n"
        "from provision.errors import UserError\n"
        "try:\n    facts.gather()\nexcept UserError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(gone)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}).stdout
    assert out.startswith("the current directory no longer exists")


def test_gather_with_a_tree_and_a_build_dir_that_does_not_exist_yet(tmp_path: Path):
    tree = make_tree(tmp_path / "linux")
    build = tmp_path / "out" / "not" / "yet"
    f = gather(tree=str(tree), build_dir=str(build), ccache_dir=str(tmp_path / "cc"))
    assert f.tree is not None and f.tree.kernel_version == "6.1.112"
    assert f.disk("build").path == str(build)
    assert f.disk("ccache").path == str(tmp_path / "cc")
    assert f.disk("build").free_bytes > 0 and f.disk("build").total_bytes >= f.disk("build").free_bytes
    assert f.disk("home") is not None


# --------------------------------------------------------------------------- this host

ZRAM0 = Path("/sys/block/zram0/comp_algorithm")


@pytest.fixture(scope="module")
def here() -> HostFacts:
    return gather()


def test_this_host_zram_compressors(here: HostFacts):
    if not ZRAM0.exists():
        pytest.skip("this host has no /sys/block/zram0")
    offered, active = SP.parse_comp_algorithm(ZRAM0.read_text())
    assert here.zram.compressors == tuple(offered)
    assert here.zram.active == active and here.zram.source == "sysfs"
    if set(offered) == {"lzo-rle", "lzo", "lz4"}:  # the CI machine kind: no zstd
        assert here.zram.compressors == ("lzo-rle", "lzo", "lz4")
        assert "zstd" not in here.zram.compressors


def test_this_host_usable_cpus_is_the_affinity_capped_by_the_quota(here: HostFacts):
    affinity = len(os.sched_getaffinity(0))
    assert here.cpu.affinity == affinity
    assert here.cpu.logical == os.cpu_count()
    assert here.cpu.usable == SP.usable_cpus(affinity, here.cpu.cgroup_quota)
    if here.cpu.cgroup_quota is None:
        assert here.cpu.usable == affinity


def test_this_host_toolchain_versions_match_what_the_tools_say(here: HostFacts):
    import shutil

    assert set(here.toolchain) == set(TOOLS)
    for tool in ("gcc", "make", "ld"):
        if shutil.which(tool):
            assert here.toolchain[tool] and here.toolchain[tool][0].isdigit()
        else:
            assert here.toolchain[tool] is None
    assert here.toolchain["clang"] is None or shutil.which("clang")
    if shutil.which("make"):
        out = subprocess.run(["make", "--version"], capture_output=True, text=True).stdout
        assert here.toolchain["make"] in out.splitlines()[0]


def test_this_host_memory_and_distro(here: HostFacts):
    meminfo = SP.parse_meminfo(Path("/proc/meminfo").read_text())
    assert here.memory.total_bytes == meminfo["MemTotal"]
    assert here.memory.effective_bytes <= here.memory.total_bytes
    assert here.distro.family in FAMILIES + ("unknown",)
    assert here.source == "local"
    assert [d.role for d in here.disks] == ["build", "ccache", "home"]


def test_taskset_one_cpu_gives_one_usable_cpu():
    if not Path("/usr/bin/taskset").exists():
        pytest.skip("taskset is not installed")
    code = "from provision.facts.local import gather; f = gather(); print(f.cpu.usable, f.cpu.affinity)"
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["1", "1"]


# --------------------------------------------------------------------------- facts files


def test_facts_round_trip_through_json(here: HostFacts, tmp_path: Path):
    path = tmp_path / "host.json"
    path.write_text(dump_facts(here))
    loaded = load_facts_file(path)
    assert loaded == dataclasses.replace(here, source="json")


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_fixtures_are_complete_and_load(fixture: Path):
    data = json.loads(fixture.read_text())
    assert data["schema"] == 1
    f = load_facts_file(fixture)
    assert f.to_dict() == {**data, "source": "json"}  # every field present: nothing left to defaults
    assert f.distro.family == distro_family(f.distro.id, f.distro.like)
    assert 1 <= f.cpu.usable <= f.cpu.logical
    assert f.cpu.usable == SP.usable_cpus(f.cpu.affinity, f.cpu.cgroup_quota)
    assert {d.role for d in f.disks} == {"build", "ccache", "home"}
    assert set(f.toolchain) == set(TOOLS)


def test_container_fixture_is_limited_by_its_cgroup():
    f = load_facts_file(FIXTURES / "container-4c-4g-on-32c.json")
    assert (f.cpu.logical, f.cpu.usable, f.memory.effective_bytes) == (32, 4, 4 << 30)
    assert f.in_container


def test_fixture_families_cover_every_family():
    families = {load_facts_file(p).distro.family for p in FIXTURES.glob("*.json")}
    assert set(FAMILIES) <= families


def test_facts_file_missing(tmp_path: Path):
    with pytest.raises(UserError, match=r"^--facts .*nope\.json: cannot read it"):
        load_facts_file(tmp_path / "nope.json")


def test_facts_file_not_json(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(UserError, match=r"bad\.json: not JSON"):
        load_facts_file(bad)


def test_facts_file_wrong_shape_names_the_field(tmp_path: Path):
    data = json.loads((FIXTURES / "vps-1cpu-2g.json").read_text())
    data["cpu"]["usable"] = "two"
    bad = tmp_path / "shape.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(UserError) as err:
        load_facts_file(bad)
    assert "shape.json" in str(err.value) and "cpu.usable" in str(err.value)
    assert "\n" not in str(err.value)


def test_facts_file_missing_field_and_other_schema(tmp_path: Path):
    data = json.loads((FIXTURES / "vps-1cpu-2g.json").read_text())
    del data["memory"]
    bad = tmp_path / "nomem.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(UserError, match="missing field 'memory'"):
        load_facts_file(bad)
    data = json.loads((FIXTURES / "vps-1cpu-2g.json").read_text())
    data["schema"] = 99
    bad.write_text(json.dumps(data))
    with pytest.raises(UserError, match="schema 99 is not supported"):
        load_facts_file(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(UserError, match="expected an object"):
        load_facts_file(bad)


def test_facts_file_with_ansible_facts_points_to_the_right_switch():
    with pytest.raises(UserError, match="--ansible-facts"):
        load_facts_file(FIXTURES / "ansible" / "debian12-localhost-setup.json")


def test_sysprobe_needs_only_the_standard_library():
    import ast

    tree = ast.parse(Path(SP.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_probing_tool_versions_leaves_the_home_directory_alone(tmp_path):
    """distcc --version would create ~/.distcc in the home of whoever runs kprov plan."""
    import shutil
    import subprocess
    import sys

    if shutil.which("distcc") is None:
        pytest.skip("distcc is not installed")
    home = tmp_path / "home"
    home.mkdir()
    code = "from provision.facts.local import toolchain_versions; print(toolchain_versions()['distcc'])"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "HOME": str(home)},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() not in ("", "None")
    assert not (home / ".distcc").exists()
