"""The planner's rules, one test per rule, on host fixtures; hypothesis checks its invariants."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision import calibration as cal
from provision.errors import UserError
from provision.facts.catalog import load_catalog
from provision.model.facts import (
    CpuFacts,
    DiskFacts,
    DistroFacts,
    HostFacts,
    MemoryFacts,
    RunningKernelFacts,
    TreeFacts,
    ZramFacts,
)
from provision.model.goals import Goals, HostEntry
from provision.model.plan import Plan
from provision.planner import plan
from provision.units import GIB, MIB

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = load_catalog()

# --------------------------------------------------------------------------- host builders

_DISTROS = {
    "debian": DistroFacts(id="debian", family="debian", version="12", codename="bookworm", name="Debian GNU/Linux 12"),
    "ubuntu": DistroFacts(id="ubuntu", family="debian", version="24.04", like=("debian",), name="Ubuntu 24.04"),
    "fedora": DistroFacts(id="fedora", family="redhat", version="40", name="Fedora Linux 40"),
    "arch": DistroFacts(id="arch", family="arch", name="Arch Linux"),
    "opensuse-tumbleweed": DistroFacts(id="opensuse-tumbleweed", family="suse", name="openSUSE Tumbleweed"),
    "alpine": DistroFacts(id="alpine", family="alpine", version="3.20.0", name="Alpine Linux"),
    "gentoo": DistroFacts(id="gentoo", family="unknown", name="Gentoo"),
}
_TOOLS = {"gcc": "12.2.0", "make": "4.3", "ld": "2.40", "ccache": "4.7.5", "distcc": "3.4", "pahole": "1.24",
          "flex": "2.6.4", "bison": "3.8.2", "bc": "1.07.1", "openssl": "3.0.11"}


def build_host(
    *,
    cpus: int = 2,
    logical: int | None = None,
    quota: float | None = None,
    ram_gib: float = 24,
    available_gib: float | None = None,
    cgroup_gib: float | None = None,
    swap_gib: float = 0,
    distro: str = "debian",
    arch: str = "x86_64",
    compressors: tuple[str, ...] = ("lzo-rle", "lzo", "lz4"),
    zram_in_use: tuple[str, ...] = (),
    zram_swap_gib: float = 0,
    free_gib: float = 80,
    home_free_gib: float | None = None,
    tools: dict | None = None,
    tree: TreeFacts | None = None,
    kernel: str = "6.1.0-18-amd64",
    virt: str = "vm",
    ipv4: str | None = "192.168.1.10",
    hostname: str = "builder",
) -> HostFacts:
    total = int(ram_gib * GIB)
    home_free = free_gib if home_free_gib is None else home_free_gib
    return HostFacts(
        hostname=hostname,
        arch=arch,
        cpu=CpuFacts(logical=logical or cpus, usable=cpus, affinity=logical or cpus, cgroup_quota=quota),
        memory=MemoryFacts(
            total_bytes=total,
            available_bytes=int((available_gib if available_gib is not None else ram_gib * 0.95) * GIB),
            cgroup_limit_bytes=int(cgroup_gib * GIB) if cgroup_gib else None,
            swap_total_bytes=int(swap_gib * GIB),
            swap_free_bytes=int(swap_gib * GIB),
            zram_swap_bytes=int(zram_swap_gib * GIB),
        ),
        distro=_DISTROS[distro],
        disks=(
            DiskFacts("build", "/home/u/src/linux" if tree else "/home/u", "/", int(free_gib * GIB), int(500 * GIB), "ext4"),
            DiskFacts("ccache", "/var/cache/ccache", "/", int(free_gib * GIB), int(500 * GIB), "ext4"),
            DiskFacts("home", "/home/u", "/home" if home_free_gib is not None else "/", int(home_free * GIB), int(900 * GIB), "ext4"),
        ),
        zram=ZramFacts(
            compressors=compressors,
            active=compressors[0] if compressors else None,
            source="sysfs" if compressors else "none",
            device_present=bool(compressors),
            devices_in_use=zram_in_use,
        ),
        toolchain=dict(_TOOLS if tools is None else tools),
        tree=tree,
        kernel_release=kernel,
        virtualization=virt,
        default_ipv4=ipv4,
    )


def _builders() -> dict[str, HostFacts]:
    zstd = ("lzo-rle", "lzo", "lz4", "lz4hc", "842", "zstd")
    return {
        "vps-1cpu-2g": build_host(cpus=1, ram_gib=2, compressors=zstd, free_gib=20, hostname="vps"),
        "rpi4-4g": build_host(cpus=4, ram_gib=4, arch="aarch64", compressors=zstd, free_gib=50, kernel="6.6.31+rpt-rpi-v8"),
        "laptop-8c-16g": build_host(cpus=8, ram_gib=16, swap_gib=2, distro="ubuntu", compressors=zstd),
        "workstation-64c-256g": build_host(cpus=64, ram_gib=256, compressors=zstd, free_gib=2000),
        "container-4c-4g-on-32c": build_host(
            cpus=4, logical=32, quota=4.0, ram_gib=32, cgroup_gib=4, compressors=("lzo-rle", "lz4"),
            virt="container:podman", hostname="ci",
        ),
        "fedora-40": build_host(cpus=8, ram_gib=16, distro="fedora", compressors=zstd, swap_gib=8, zram_in_use=("zram0",), zram_swap_gib=8, kernel="6.8.5-301.fc40.x86_64"),
        "arch": build_host(cpus=16, ram_gib=32, distro="arch", compressors=zstd, kernel="6.9.7-arch1-1"),
        "opensuse-tumbleweed": build_host(cpus=4, ram_gib=8, distro="opensuse-tumbleweed", compressors=zstd),
        "alpine-3.20": build_host(cpus=4, ram_gib=8, distro="alpine", compressors=("lzo-rle", "lz4", "zstd"), kernel="6.6.32-0-lts"),
        "debian12-2c-24g": build_host(cpus=2, ram_gib=24, hostname="vm"),
    }


BUILDERS = _builders()


def host(name: str) -> HostFacts:
    """The JSON fixture when it exists (tests/fixtures/NAME.json), else the builder above."""
    path = FIXTURES / f"{name}.json"
    if path.is_file():
        return HostFacts.from_dict(json.loads(path.read_text()))
    return BUILDERS[name]


def p(facts: HostFacts, **goals) -> Plan:
    return plan(facts, Goals(**goals), CATALOG)


# --------------------------------------------------------------------------- every fixture


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_fixture_plans_with_reasons(name):
    facts = host(name)
    result = p(facts)
    assert 1 <= result.jobs.value <= facts.cpu.usable
    for part in (result.jobs, result.zram, result.ccache, result.distcc):
        assert part.reason.strip(), part
    assert result.config.reasons["target"] and result.config.make_command.startswith("make ")
    assert Plan.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert result.to_role_vars()["kbuild_host_plan"]["jobs"]["value"] == result.jobs.value


def test_this_machine_kind_gets_jobs_2_and_no_zram():
    result = p(host("debian12-2c-24g"))
    assert result.jobs.value == 2 and result.jobs.load is None  # -l only when asked (--load N)
    assert result.jobs.limited_by == "cpus"
    assert "2 usable CPUs" in result.jobs.reason and "memory is not the limit" in result.jobs.reason
    assert not result.zram.enabled and "enough" in result.zram.reason
    assert result.ccache.enabled
    assert "ccache" in result.packages and "libelf-dev" in result.packages
    assert "zram-tools" not in result.packages


def test_container_gets_its_quota_not_the_host_cpus():
    facts = host("container-4c-4g-on-32c")
    result = p(facts)
    assert facts.cpu.logical >= 32
    assert result.jobs.value == 4
    assert "4 usable CPUs" in result.jobs.reason
    assert result.host.memory_bytes == 4 * GIB
    assert not result.zram.enabled and "container" in result.zram.reason
    assert result.config.target == "defconfig" and "container" in result.config.reasons["target"]


# --------------------------------------------------------------------------- jobs


def test_memory_limited_host_explains_memory_is_the_limit():
    facts = build_host(cpus=64, ram_gib=2, compressors=())  # no zram to help
    result = p(facts, target="defconfig")
    j = result.jobs
    assert j.limited_by == "memory"
    assert j.value < 64
    assert "memory is the limit" in j.reason
    assert "64 usable CPUs" in j.reason
    # the compile phase alone sizes -j (the link never runs beside the compile jobs): one job at its
    # p99 and the others at the measured average
    used = cal.BUILD_BASE_MIB * MIB + j.per_job_bytes + (j.value - 1) * j.average_job_bytes
    assert used <= j.budget_bytes
    # one more job would not fit
    assert used + j.average_job_bytes > j.budget_bytes


def test_zram_capacity_raises_jobs_when_memory_limits():
    facts = build_host(cpus=64, ram_gib=2, compressors=("lzo-rle", "lz4"))
    without = p(facts, target="defconfig", zram=False)
    with_zram = p(facts, target="defconfig")
    assert with_zram.zram.enabled and "memory limits -j" in with_zram.zram.reason
    assert with_zram.jobs.value > without.jobs.value
    assert with_zram.jobs.budget_bytes > without.jobs.budget_bytes
    assert "counted from zram" in with_zram.jobs.reason


def test_jobs_never_below_one_and_warns_when_nothing_fits():
    facts = build_host(cpus=4, ram_gib=0.5, compressors=())
    result = p(facts, target="allmodconfig", debug_info="dwarf")
    assert result.jobs.value == 1
    assert any("even one job does not fit" in w for w in result.warnings)


def test_jobs_override_is_marked_and_warns_above_cpus():
    result = p(host("debian12-2c-24g"), jobs=8)
    assert result.jobs.value == 8 and result.jobs.overridden and result.jobs.limited_by == "override"
    assert "overridden" in result.jobs.reason and "kprov would pick 2" in result.jobs.reason
    assert "jobs" in result.overrides
    assert any("exceeds the 2 usable CPUs" in w for w in result.warnings)


def test_jobs_override_warns_when_memory_cannot_hold_it():
    result = p(build_host(cpus=64, ram_gib=2, compressors=()), jobs=64, target="defconfig")
    assert any("exceeds what memory holds" in w for w in result.warnings)


def test_debug_info_and_clang_raise_per_job_memory():
    facts = host("workstation-64c-256g")
    plain = p(facts, target="defconfig", debug_info="none", compiler="gcc")
    dwarf = p(facts, target="defconfig", debug_info="dwarf", compiler="gcc")
    clang = p(facts, target="defconfig", debug_info="none", compiler="clang")
    assert dwarf.jobs.per_job_bytes > plain.jobs.per_job_bytes
    assert clang.jobs.per_job_bytes > plain.jobs.per_job_bytes
    assert dwarf.jobs.link_peak_bytes > plain.jobs.link_peak_bytes


def test_defconfig_per_job_is_the_measured_p99():
    result = p(host("debian12-2c-24g"), target="defconfig", debug_info="none", compiler="gcc")
    assert result.jobs.per_job_bytes == (160 + cal.AS_PER_JOB_MIB) * MIB
    assert result.jobs.link_peak_bytes == 320 * MIB


def test_available_memory_limits_the_budget_on_a_busy_host():
    idle = p(build_host(cpus=32, ram_gib=8, available_gib=7.5), target="defconfig")
    busy = p(build_host(cpus=32, ram_gib=8, available_gib=1.5), target="defconfig")
    assert busy.jobs.budget_bytes < idle.jobs.budget_bytes
    assert "MemAvailable" in busy.jobs.reason


# --------------------------------------------------------------------------- zram


def test_small_host_gets_zram_for_speed_with_sysctls():
    result = p(host("vps-1cpu-2g"))
    z = result.zram
    assert z.enabled and "small host" in z.reason
    assert z.algorithm == "lz4"  # memory is not the limit at 1 CPU: the fastest compressor
    assert z.percent == cal.ZRAM_DEFAULT_PERCENT
    assert z.size_bytes == host("vps-1cpu-2g").memory.total_bytes * z.percent // 100
    assert z.priority == 100 and z.tool == "zram-tools"
    assert z.sysctls == {
        "vm.swappiness": "180",
        "vm.watermark_boost_factor": "0",
        "vm.watermark_scale_factor": "125",
        "vm.page-cluster": "0",
    }
    assert "zram-tools" in result.packages
    assert all(z.reasons[k] for k in ("algorithm", "percent", "priority", "sysctls", "tool"))


def test_swappiness_stays_100_before_linux_5_8():
    result = p(build_host(cpus=1, ram_gib=2, kernel="5.4.0-150-generic"))
    assert result.zram.sysctls["vm.swappiness"] == "100"
    assert "5.8" in result.zram.reasons["sysctls"]


def test_capacity_prefers_zstd_when_offered_else_lzo_rle():
    with_zstd = p(build_host(cpus=64, ram_gib=2, compressors=("lzo-rle", "lz4", "zstd")), target="defconfig")
    without = p(build_host(cpus=64, ram_gib=2, compressors=("lzo-rle", "lzo", "lz4")), target="defconfig")
    assert with_zstd.zram.algorithm == "zstd"
    assert without.zram.algorithm == "lzo-rle"  # measured 3.6:1, better than lz4's 3.3:1
    assert "lzo-rle, lzo, lz4" in without.zram.reasons["algorithm"]


def test_zram_percent_sized_from_the_shortfall_and_bounded():
    result = p(build_host(cpus=64, ram_gib=2, compressors=("lz4",)), target="defconfig")
    z = result.zram
    assert z.enabled and cal.ZRAM_DEFAULT_PERCENT < z.percent <= cal.ZRAM_MAX_PERCENT
    assert z.size_bytes <= 2 * 2 * GIB
    assert "short" in z.reasons["percent"]


def test_zram_algorithm_not_offered_is_a_user_error():
    with pytest.raises(UserError) as err:
        p(host("debian12-2c-24g"), zram_algorithm="zstd")
    assert str(err.value) == "zram algorithm 'zstd' is not offered by this kernel (offers: lzo-rle, lzo, lz4)"


@pytest.mark.parametrize("percent", [0, 201, -5])
def test_zram_percent_outside_range_is_a_user_error(percent):
    with pytest.raises(UserError, match=rf"--zram-percent {percent}: must be within 1\.\.200"):
        p(host("vps-1cpu-2g"), zram_percent=percent)


def test_zram_overrides_are_honoured_and_listed():
    result = p(host("debian12-2c-24g"), zram=True, zram_percent=150, zram_algorithm="lz4")
    assert result.zram.enabled and result.zram.percent == 150 and result.zram.algorithm == "lz4"
    assert set(result.zram.overridden) == {"zram", "zram_percent", "zram_algorithm"}
    assert {"zram", "zram_percent", "zram_algorithm"} <= set(result.overrides)
    off = p(host("vps-1cpu-2g"), zram=False)
    assert not off.zram.enabled and "overridden" in off.zram.reason


def test_no_compressor_disables_zram_and_forcing_it_fails():
    facts = build_host(cpus=1, ram_gib=2, compressors=())
    result = p(facts)
    assert not result.zram.enabled and "no zram compressor" in result.zram.reason
    with pytest.raises(UserError, match="offers no zram compressor"):
        p(facts, zram=True)


def test_a_users_zram_swap_turns_the_zram_area_off():
    """A zram swap without kprov's record is the user's: no config, no service restart, no tool."""
    result = p(host("fedora-40"))
    assert not result.zram.enabled and "kprov did not set up" in result.zram.reason
    assert "leaves it, its configuration and its service as they are" in result.zram.reason
    assert not set(result.packages) & {"zram-generator", "zram-generator-defaults", "zram-tools"}
    assert "kbuild_host_zram_enabled" in result.to_role_vars() and not result.to_role_vars()["kbuild_host_zram_enabled"]
    forced = p(host("fedora-40"), zram=True)
    assert not forced.zram.enabled and any("already active swap that kprov did not set up" in w for w in forced.warnings)


def test_unknown_distro_has_no_zram_tool_and_no_packages():
    result = p(build_host(cpus=1, ram_gib=2, distro="gentoo"))
    assert not result.zram.enabled and "no zram tool" in result.zram.reason
    assert result.packages == ()
    assert "no package list for distro 'gentoo'" in " ".join(result.warnings)


# --------------------------------------------------------------------------- ccache


def test_ccache_size_from_footprint_times_builds_with_a_minimum():
    result = p(host("debian12-2c-24g"), target="defconfig", debug_info="none")
    assert result.ccache.max_size_bytes == cal.CCACHE_MIN_BYTES  # 100 MiB x 2 x 1.25 is below it
    big = p(host("workstation-64c-256g"), target="allyesconfig", debug_info="none", builds_to_keep=3)
    assert big.ccache.max_size_bytes == int(cal.CCACHE_FOOTPRINT_MIB["allyes"] * MIB * 3 * cal.CCACHE_HEADROOM)
    assert "3 builds to keep" in big.ccache.reasons["max_size"]


def test_ccache_size_capped_by_its_share_of_free_disk():
    facts = build_host(cpus=8, ram_gib=16, free_gib=4)
    result = p(facts, target="allmodconfig", debug_info="none")
    assert result.ccache.max_size_bytes == int(4 * GIB * cal.CCACHE_DISK_SHARE)
    assert "capped" in result.ccache.reasons["max_size"]
    assert any("not enough disk for allmodconfig" in w for w in result.warnings)


def test_ccache_broken_versions_are_off_with_a_warning():
    tools = dict(_TOOLS, ccache="4.7.1")
    result = p(build_host(tools=tools))
    assert not result.ccache.enabled and "4.7.0-4.7.2" in result.ccache.reason
    assert any("cannot cache kernel builds" in w for w in result.warnings)
    forced = p(build_host(tools=tools), ccache=True)
    assert forced.ccache.enabled and any("cannot cache kernel builds" in w for w in forced.warnings)


def test_ccache_settings_env_and_make_vars():
    result = p(host("debian12-2c-24g"))
    c = result.ccache
    assert c.compression and c.sloppiness == ("time_macros", "locale") and not c.hash_dir and c.base_dir == "/home"
    assert result.config.make_vars["CC"] == "ccache gcc"
    assert "CC='ccache gcc'" in result.config.make_command
    assert result.env["CCACHE_DIR"] == c.dir
    assert result.env["KBUILD_BUILD_TIMESTAMP"] == cal.KBUILD_ENV["KBUILD_BUILD_TIMESTAMP"]
    assert any("cold ccache build" in w for w in result.warnings)


def test_shared_ccache_turns_off_hash_dir_and_sets_base_dir():
    tree = TreeFacts(path="/srv/src/linux", kernel_version="6.1.0")
    result = p(build_host(tree=tree), ccache_shared=True)
    assert not result.ccache.hash_dir and result.ccache.base_dir == "/home"  # every user's, in ccache.conf
    assert result.ccache.tree_base_dir == "/srv/src"  # this tree's, in kprov env
    assert result.env["CCACHE_NOHASHDIR"] == "true" and result.env["CCACHE_BASEDIR"] == "/srv/src"


def test_ccache_off_and_size_overrides():
    off = p(host("debian12-2c-24g"), ccache=False)
    assert not off.ccache.enabled and "CC" not in off.config.make_vars and "ccache" not in off.packages
    sized = p(host("debian12-2c-24g"), ccache_size_bytes=3 * GIB)
    assert sized.ccache.max_size_bytes == 3 * GIB and "ccache_size" in sized.overrides
    with pytest.raises(UserError, match="--ccache-size"):
        p(host("debian12-2c-24g"), ccache_size_bytes=0)


# --------------------------------------------------------------------------- distcc server


def test_distcc_server_needs_an_allow_list():
    with pytest.raises(UserError, match="distcc server needs at least one --allow CIDR"):
        p(host("debian12-2c-24g"), distcc_server=True)


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_distcc_server_refuses_the_whole_internet_even_with_allow_public(cidr):
    with pytest.raises(UserError, match=cidr.replace(".", r"\.")):
        p(host("debian12-2c-24g"), distcc_server=True, allow=(cidr,), allow_public=True)


def test_distcc_server_refuses_public_ranges_unless_allowed():
    with pytest.raises(UserError, match="'8.8.8.0/24' is a public range"):
        p(host("debian12-2c-24g"), distcc_server=True, allow=("8.8.8.0/24",))
    ok = p(host("debian12-2c-24g"), distcc_server=True, allow=("8.8.8.0/24",), allow_public=True, listen="127.0.0.1")
    assert ok.distcc.allow == ("8.8.8.0/24",) and ok.distcc.allow_public


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "banana", "192.168.1.300/24"])
def test_distcc_server_names_a_malformed_cidr(bad):
    with pytest.raises(UserError, match=f"--allow '{bad}' is not a valid CIDR"):
        p(host("debian12-2c-24g"), distcc_server=True, allow=(bad,))


def test_distcc_server_listens_on_the_host_address_inside_the_allow_list():
    facts = build_host(cpus=8, ram_gib=16, ipv4="192.168.1.10")
    result = p(facts, distcc_server=True, allow=("192.168.1.0/24",))
    d = result.distcc
    assert d.enabled and d.server and d.listen == "192.168.1.10"
    assert d.server_jobs == 8 + cal.DISTCCD_EXTRA_JOBS
    assert "distcc" in result.packages
    assert "--disable GCC_PLUGINS" in result.config.config_commands[-1]
    assert "GCC_PLUGINS" in d.reasons["gcc_plugins"]


def test_distcc_server_falls_back_to_loopback_and_says_why():
    result = p(host("laptop-8c-16g"), distcc_server=True, allow=("10.9.0.0/16",))
    assert result.distcc.listen == "127.0.0.1"
    assert "outside the allowed networks" in result.distcc.reasons["listen"]
    assert any("listens on 127.0.0.1 only" in w for w in result.warnings)


def test_distcc_server_listen_must_be_an_address():
    with pytest.raises(UserError, match="--listen 'eth0' is not an IP address"):
        p(host("laptop-8c-16g"), distcc_server=True, allow=("192.168.1.0/24",), listen="eth0")


def test_distcc_server_jobs_bounded_by_memory():
    result = p(build_host(cpus=32, ram_gib=2, compressors=()), distcc_server=True, allow=("10.0.0.0/8",), target="defconfig")
    assert result.distcc.server_jobs < 32 + cal.DISTCCD_EXTRA_JOBS
    assert "limited by memory" in result.distcc.reasons["server_jobs"]


# --------------------------------------------------------------------------- distcc client


def test_distcc_client_hosts_localhost_and_total_jobs():
    result = p(host("laptop-8c-16g"), distcc_hosts=("build1/8", "build2:3633", "10.0.0.7/4,lzo"))
    d = result.distcc
    assert d.client and d.hosts == ("build1/8", "build2:3633/4", "10.0.0.7/4,lzo", d.hosts[-1])
    assert d.hosts[-1].startswith("localhost/")
    local = int(d.hosts[-1].split("/")[1])
    assert 1 <= local <= 8
    assert d.total_jobs == 16 + local
    assert result.env["CCACHE_PREFIX"] == "distcc"
    assert result.env["DISTCC_HOSTS"] == " ".join(d.hosts)
    assert result.env["MAKEFLAGS"] == f"-j{d.total_jobs}"
    assert result.config.make_command.startswith("CCACHE_PREFIX=distcc make")
    assert f"-j{d.total_jobs}" in result.config.make_command
    assert result.jobs.value == 8  # the local -j stays separate


def test_distcc_client_total_capped_by_local_preprocessing():
    result = p(host("debian12-2c-24g"), distcc_hosts=("big1/64", "big2/64"))
    feed = math.floor(2 / cal.PREPROCESS_CPU_SHARE)
    local = int(result.distcc.hosts[-1].split("/")[1])
    assert result.distcc.total_jobs == feed + local
    assert "preprocess every job" in result.distcc.reasons["total_jobs"]


def test_distcc_client_without_ccache_wraps_cc_in_distcc():
    result = p(host("laptop-8c-16g"), distcc_hosts=("build1/8",), ccache=False)
    assert result.config.make_vars["CC"] == "distcc gcc"
    assert "CCACHE_PREFIX" not in result.env


@pytest.mark.parametrize(
    "spec, message",
    [
        ("build1:99999", "port '99999' is not in 1..65535"),
        ("build1/0", "limit '0' must be a whole number"),
        ("build1/x", "limit 'x' must be a whole number"),
        ("bad_host!", "expected HOST|not a valid host name"),
        ("build1,gzip", "unknown option ',gzip'"),
        ("@build1", "ssh"),
    ],
)
def test_distcc_client_malformed_hosts_are_named(spec, message):
    with pytest.raises(UserError, match=message):
        p(host("laptop-8c-16g"), distcc_hosts=(spec,))


@pytest.mark.parametrize("ccache", [None, False])
def test_pump_mode_is_refused(ccache):
    with pytest.raises(UserError, match="pump mode .* does not work with ccache"):
        p(host("laptop-8c-16g"), distcc_hosts=("build1/8,cpp",), ccache=ccache)


def test_host_entries_validated():
    good = p(host("laptop-8c-16g"), host_entries=(HostEntry("10.0.0.7", ("build1", "build1.lan")),))
    assert good.distcc.host_entries[0].names == ("build1", "build1.lan")
    assert good.to_role_vars()["kbuild_host_hosts_enabled"] is True
    with pytest.raises(UserError, match="'10.0.0.999' is not an IP address"):
        p(host("laptop-8c-16g"), host_entries=(HostEntry("10.0.0.999", ("build1",)),))
    with pytest.raises(UserError, match="'bad_name' is not a valid host name"):
        p(host("laptop-8c-16g"), host_entries=(HostEntry("10.0.0.7", ("bad_name",)),))


# --------------------------------------------------------------------------- config strategy


def _tree(**kw) -> TreeFacts:
    base = dict(path="/home/u/src/linux", kernel_version="6.1.0", min_versions={"gcc": "5.1", "clang": "11.0.0", "pahole": "1.16"})
    base.update(kw)
    return TreeFacts(**base)


def test_tree_with_config_gets_olddefconfig():
    result = p(build_host(tree=_tree(has_config=True, config={"MODULES": "y"}, modules=300)))
    assert result.config.target == "olddefconfig"
    assert result.config.make_command.startswith("make -C /home/u/src/linux -j2 O=/home/u/src/linux-build")
    assert result.config.make_command.endswith("olddefconfig all")


def test_distro_config_is_classed_heavier_and_gets_trusted_keys_emptied():
    cfg = {"SYSTEM_TRUSTED_KEYS": "debian/certs/debian-uefi-certs.pem", "DEBUG_INFO": "y"}
    result = p(build_host(cpus=8, ram_gib=32, tree=_tree(has_config=True, config=cfg, modules=4000)))
    assert result.jobs.per_job_bytes > cal.per_job_mib("default", "gcc", "dwarf") * MIB
    assert "the tree's .config names certificate files" in result.config.reasons["trusted_keys"]
    script = result.config.config_commands[-1]
    assert "--set-str SYSTEM_TRUSTED_KEYS ''" in script and "--set-str SYSTEM_REVOCATION_KEYS ''" in script
    assert script.startswith("/home/u/src/linux/scripts/config --file /home/u/src/linux-build/.config")


def test_localmodconfig_for_this_machine_defconfig_otherwise():
    running = RunningKernelFacts(config_path="/boot/config-6.8.0-35-generic", modules_list=True, loaded_modules=142)
    laptop = dataclasses.replace(host("laptop-8c-16g"), running_kernel=running)
    local = p(laptop)
    assert local.config.target == "localmodconfig"
    assert "142 modules loaded now" in local.config.reasons["target"]
    assert "/boot/config-6.8.0-35-generic" in local.config.reasons["target"]
    # the JSON fixture does not say whether the running kernel's config and /proc/modules exist
    unknown = p(host("laptop-8c-16g"))
    assert unknown.config.target == "defconfig" and "do not say" in unknown.config.reasons["target"]
    other = p(laptop, for_this_machine=False)
    assert other.config.target == "defconfig" and "another machine" in other.config.reasons["target"]
    assert any("tinyconfig" in a for a in other.config.advice)


def test_allmodconfig_warns_about_disk_and_time():
    result = p(host("workstation-64c-256g"), target="allmodconfig")
    assert any("allmodconfig is huge" in w and "GiB of build output" in w for w in result.warnings)


def test_allmodconfig_has_no_debug_info_unless_asked():
    """DEBUG_INFO_NONE is the first entry of the debug-info choice: all*config leave it on."""
    for name in ("rpi4-4g", "workstation-64c-256g"):
        result = p(host(name), target="allmodconfig")
        assert result.config.debug_info == "none"
        assert "allmodconfig gives debug info none" in result.config.reasons["debug_info"]
        assert not result.config.config_commands


def test_btf_without_pahole_warns():
    tools = {k: v for k, v in _TOOLS.items() if k != "pahole"}
    result = p(build_host(cpus=8, ram_gib=32, tools=tools), debug_info="btf", target="defconfig")
    assert any("BTF debug info needs pahole" in w for w in result.warnings)
    assert any("--enable DEBUG_INFO_BTF" in c for c in result.config.config_commands)


def test_old_compiler_below_tree_minimum_warns():
    result = p(build_host(tools=dict(_TOOLS, gcc="4.9.4"), tree=_tree()))
    assert "gcc 4.9.4 is below this tree's minimum 5.1" in result.warnings


def test_no_compiler_warns_and_plans_gcc():
    tools = {k: v for k, v in _TOOLS.items() if k != "gcc"}
    result = p(build_host(tools=tools))
    assert result.config.compiler == "gcc"
    assert any("no C compiler found" in w for w in result.warnings)
    assert "gcc" in result.packages


def test_clang_when_only_clang_is_installed_adds_llvm():
    tools = {k: v for k, v in _TOOLS.items() if k != "gcc"} | {"clang": "16.0.6"}
    result = p(build_host(tools=tools))
    assert result.config.compiler == "clang"
    assert result.config.make_vars["LLVM"] == "1" and result.config.make_vars["CC"] == "ccache clang"
    assert {"clang", "lld", "llvm"} <= set(result.packages)


def test_lto_needs_clang():
    with pytest.raises(UserError, match="--lto thin needs clang"):
        p(host("workstation-64c-256g"), lto="thin", compiler="gcc")
    thin = p(host("workstation-64c-256g"), lto="thin", target="defconfig")
    assert thin.config.compiler == "clang" and thin.config.lto == "thin"
    assert "ld.lld runs 64 ThinLTO backends here, one per physical core" in thin.config.reasons["lto"]
    assert "they fit" in thin.config.reasons["lto"] and "--thinlto-jobs" not in thin.config.reasons["lto"]
    assert any("--enable LTO_CLANG_THIN" in c for c in thin.config.config_commands)


def test_full_lto_on_a_small_host_warns():
    result = p(host("rpi4-4g"), lto="full", target="defconfig")
    link = next(ph for ph in result.phases if ph.name == "full LTO link")
    # ~4 GiB for ld.lld beside a 3.2 GiB budget: zram is planned for it, -j stays at the CPUs
    assert link.fits == "swap" and "over the 3.2 GiB budget" in link.reason
    assert result.zram.enabled and "full LTO link needs" in result.zram.reason
    assert result.jobs.value == 4
    without_zram = p(host("rpi4-4g"), lto="full", target="defconfig", zram=False)
    assert any("the full LTO link does not fit" in w and "-j does not change it: no modfinal jobs run beside" in w for w in without_zram.warnings)
    assert without_zram.jobs.value == 4


def test_cross_build_sets_arch_and_cross_compile():
    result = p(host("laptop-8c-16g"), arch="arm64", target="defconfig")
    assert result.config.make_vars["ARCH"] == "arm64"
    assert result.config.make_vars["CROSS_COMPILE"] == "aarch64-linux-gnu-"
    assert result.config.make_vars["CC"] == "ccache aarch64-linux-gnu-gcc"


def test_build_dir_on_the_roomiest_filesystem():
    facts = build_host(tree=_tree(), free_gib=10, home_free_gib=400)
    result = p(facts, target="defconfig")
    assert result.config.build_dir == "/home/u/kbuild/linux"
    assert "most room" in result.config.reasons["build_dir"]
    given_dir = p(facts, target="defconfig", build_dir="/scratch/out")
    assert given_dir.config.build_dir == "/scratch/out"


def test_env_exports():
    result = p(host("laptop-8c-16g"), target="defconfig")
    env = result.env
    assert env["MAKEFLAGS"] == "-j8"
    assert env["KBUILD_BUILD_USER"] == "kbuild" and env["KBUILD_BUILD_HOST"] == "kprov"
    assert env["KBUILD_BUILD_VERSION"] == "1"
    assert env["KPROV_MAKE_ARGS"] == "CC='ccache gcc'"
    assert env["KBUILD_OUTPUT"] == result.config.build_dir


@pytest.mark.parametrize(
    "goals, message",
    [
        ({"target": "bogusconfig"}, "unknown config target 'bogusconfig'"),
        ({"compiler": "icc"}, "unknown compiler 'icc'"),
        ({"debug_info": "stabs"}, "unknown debug info 'stabs'"),
        ({"lto": "fat"}, "unknown LTO mode 'fat'"),
        ({"jobs": 0}, "--jobs 0: must be a whole number from 1 to 4096"),
        ({"builds_to_keep": 0}, "--builds-to-keep 0"),
    ],
)
def test_bad_goals_are_named(goals, message):
    with pytest.raises(UserError, match=message):
        p(host("debian12-2c-24g"), **goals)


@pytest.mark.parametrize("name", ["fedora-40", "arch", "opensuse-tumbleweed", "alpine-3.20"])
def test_each_family_gets_its_packages(name):
    facts = host(name)
    result = p(facts)
    pkgs = CATALOG.for_family(facts.distro.family)
    assert pkgs is not None
    assert set(pkgs.build) <= set(result.packages)


# --------------------------------------------------------------------------- invariants

_ALGOS = ("lzo-rle", "lzo", "lz4", "lz4hc", "842", "zstd", "deflate")


@st.composite
def hosts(draw):
    logical = draw(st.integers(1, 256))
    usable = draw(st.integers(1, logical))
    total = draw(st.integers(256 * MIB, 512 * GIB))
    cgroup = draw(st.one_of(st.none(), st.integers(128 * MIB, 512 * GIB)))
    available = draw(st.integers(0, total))
    compressors = tuple(draw(st.lists(st.sampled_from(_ALGOS), unique=True, max_size=5)))
    free = draw(st.integers(0, 4096 * GIB))
    in_use = draw(st.sampled_from([(), ("zram0",)])) if compressors else ()
    family = draw(st.sampled_from(["debian", "fedora", "arch", "opensuse-tumbleweed", "alpine", "gentoo"]))
    facts = build_host(
        cpus=usable,
        logical=logical,
        ram_gib=total / GIB,
        compressors=compressors,
        free_gib=free / GIB,
        virt=draw(st.sampled_from(["none", "vm", "container:docker"])),
        kernel=draw(st.sampled_from(["6.1.0", "5.4.0", "4.19.0", ""])),
        distro=family,
        zram_in_use=in_use,
        zram_swap_gib=draw(st.floats(0, 8)) if in_use else 0,
    )
    memory = dataclasses.replace(facts.memory, cgroup_limit_bytes=cgroup, available_bytes=available)
    return dataclasses.replace(facts, memory=memory)


@st.composite
def goal_sets(draw):
    lto = draw(st.sampled_from(["auto", "none", "thin", "full"]))
    compiler = draw(st.sampled_from(["auto", "clang"] if lto in ("thin", "full") else ["auto", "gcc", "clang"]))
    return Goals(
        target=draw(st.one_of(st.none(), st.sampled_from(list(cal.TARGET_CLASS)))),
        compiler=compiler,
        debug_info=draw(st.sampled_from(["auto", "none", "dwarf", "btf"])),
        lto=lto,
        for_this_machine=draw(st.booleans()),
        builds_to_keep=draw(st.integers(1, 5)),
        ccache_shared=draw(st.booleans()),
    )


_BELOW_ONE = re.compile(r"(?<![\w.])(-\d+|0) (compile )?jobs?\b|room for (-\d+|0)\b")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hosts(), goal_sets())
def test_invariants(facts, goals):
    result = plan(facts, goals, CATALOG)
    usable = facts.cpu.usable
    j = result.jobs
    # 1 <= jobs <= usable CPUs
    assert 1 <= j.value <= usable
    # the compile phase fits the memory budget (zram counted as planned), unless even one job does not
    need = j.base_bytes + j.per_job_bytes + (j.value - 1) * j.average_job_bytes
    assert need <= j.budget_bytes or j.value == 1
    assert 0 < j.average_job_bytes <= j.per_job_bytes
    # no load limit unless asked
    assert j.load is None and "-l" not in result.env["MAKEFLAGS"]
    z = result.zram
    if z.enabled:
        assert z.algorithm in facts.zram.compressors
        assert 1 <= z.percent <= 200
        assert z.size_bytes <= 2 * facts.memory.total_bytes
        assert z.sysctls and z.reasons
    c = result.ccache
    disk = facts.disk("ccache")
    if c.enabled and disk is not None:
        assert c.max_size_bytes <= int(disk.free_bytes * cal.CCACHE_DISK_SHARE) or c.max_size_bytes <= int(
            disk.free_bytes * cal.CCACHE_DISK_SHARE
        )
    for part in (result.jobs, result.zram, result.ccache, result.distcc):
        assert part.reason.strip()
    assert all(v.strip() for v in result.config.reasons.values())
    assert result.config.make_command.startswith(("make ", "CCACHE_PREFIX=distcc make "))
    assert Plan.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    # a count in a reason is never below one ("-1 jobs fit", "room for 0 jobs")
    texts = [j.reason, result.zram.reason, result.distcc.reason, *result.warnings]
    texts += [*result.zram.reasons.values(), *result.distcc.reasons.values(), *result.config.reasons.values()]
    texts += [ph.reason for ph in result.phases]
    for text in texts:
        assert not _BELOW_ONE.search(text), text
    # every serial phase is planned at the -j of the compile phase, never a -j of its own
    assert result.phases[0].name == "compile" and len({ph.name for ph in result.phases}) == len(result.phases)


# --------------------------------------------------------------------------- the parsers the planner uses

from provision.rules.addresses import parse_allow
from provision.rules.distcc import parse_distcc_host
from provision.rules.names import parse_size, version_below


@pytest.mark.parametrize(
    "text, size",
    [("8G", 8 * GIB), ("8Gi", 8 * GIB), ("8GiB", 8 * GIB), ("512M", 512 * MIB), ("1.5G", int(1.5 * GIB)), ("64k", 65536)],
)
def test_parse_size(text, size):
    assert parse_size(text, "--ccache-size") == size


@pytest.mark.parametrize("text, message", [("lots", "expected a size"), ("10", "give a unit"), ("0G", "larger than zero")])
def test_parse_size_names_bad_input(text, message):
    with pytest.raises(UserError, match=f"--ccache-size '{text}': .*{message}"):
        parse_size(text, "--ccache-size")


def test_parse_allow_normalises_and_dedups():
    assert parse_allow(("10.0.0.5", "10.0.0.0/8", "10.1.2.3/8", "::ffff:127.0.0.1"), False) == (
        "10.0.0.5/32", "10.0.0.0/8", "127.0.0.1/32"
    )
    assert parse_allow(("fd00::/8", "FD00:0::1/8"), False) == ("fd00::/8",)
    with pytest.raises(UserError, match="mixes IPv4 .* and IPv6"):
        parse_allow(("10.0.0.0/8", "fd00::/8"), False)


def test_parse_distcc_host_defaults():
    h = parse_distcc_host("build1", 1024)
    assert (h.host, h.port, h.limit, h.options) == ("build1", None, None, ())
    assert h.spec(4) == "build1/4"
    assert parse_distcc_host("10.0.0.7:3633/12,lzo", 1024).spec(4) == "10.0.0.7:3633/12,lzo"


def test_version_below():
    assert version_below("4.9.4", "5.1") and not version_below("12.2.0", "5.1")
    assert not version_below(None, "5.1") and not version_below("weird", "5.1")


def test_facts_without_probe_are_unknown_not_absent():
    """Ansible setup facts without kprov's probe: no tool versions, no compressor list."""
    facts = dataclasses.replace(host("vps-1cpu-2g"), toolchain={}, zram=ZramFacts(source="unknown"))
    plan_ = p(facts)
    assert plan_.config.compiler == "gcc"
    assert not any("no C compiler" in w for w in plan_.warnings)
    assert plan_.zram.enabled and plan_.zram.algorithm == cal.ZRAM_KCONFIG_DEFAULT
    assert any("do not say which zram compressors" in w for w in plan_.warnings)
    # a probed kernel that really offers nothing still gets no zram
    probed = dataclasses.replace(host("vps-1cpu-2g"), zram=ZramFacts(source="sysfs"))
    assert not p(probed).zram.enabled


def test_zram_device_kprov_set_up_is_planned_not_left_alone():
    base = host("vps-1cpu-2g")
    users = dataclasses.replace(base, zram=dataclasses.replace(base.zram, devices_in_use=("/dev/zram0",)))
    ours = dataclasses.replace(users, zram=dataclasses.replace(users.zram, kprov_devices=("/dev/zram0",)))
    assert not p(users).zram.enabled and "kprov did not set up" in p(users).zram.reason
    assert p(ours).zram.enabled
    # the zram tool stays in the package list, so a re-run plans what the first run did
    assert p(ours).packages == p(base).packages


def test_a_containers_view_of_the_hosts_zram_swap_does_not_change_its_plan():
    """/proc/swaps in a container lists the host's swap: the plan must not depend on it."""
    ctr = host("container-4c-4g-on-32c")
    seen = dataclasses.replace(ctr, zram=dataclasses.replace(ctr.zram, devices_in_use=("/dev/zram0",)))
    marked = dataclasses.replace(seen, zram=dataclasses.replace(seen.zram, kprov_devices=("/dev/zram0",)))
    plans = [p(f, zram=True) for f in (ctr, seen, marked)]
    assert plans[0].to_dict() == plans[1].to_dict() == plans[2].to_dict()


@pytest.mark.parametrize("free_mib", [0, 64, 1024])
def test_a_full_ccache_filesystem_plans_ccache_off_never_size_zero(free_mib):
    """ccache reads max_size 0 as "no limit": the fuller the disk, the less bounded the cache."""
    facts = build_host(free_gib=free_mib / 1024)
    result = p(facts)
    assert not result.ccache.enabled
    assert "below the" in result.ccache.reason and "--ccache-dir" in result.ccache.reason
    assert result.ccache.max_size_bytes != 0 or not result.ccache.enabled
    assert not result.to_role_vars()["kbuild_host_ccache_enabled"]
    with pytest.raises(UserError, match="--ccache: .* give --ccache-dir on a filesystem with room"):
        p(facts, ccache=True)
    # A size the user names is theirs to choose, and never zero.
    sized = p(facts, ccache=True, ccache_size_bytes=256 << 20)
    assert sized.ccache.enabled and sized.ccache.max_size_bytes == 256 << 20


# --------------------------------------------------------------------------- phases, config facts, estimates

from provision.model.facts import CalibrationProfile, KconfigFacts, LinkMeasurement, TreeEvaluation


def _phase(result: Plan, name: str):
    return next(ph for ph in result.phases if ph.name == name)


def test_the_measured_768_mib_cgroup_case_plans_j2():
    """768 MiB cgroup cap, defconfig, 2 CPUs: -j2 measured 128 s against 249 s at -j1 (peak 499 MiB).
    The whole limit is the build's: no OS reserve inside it, and the link is not beside the jobs."""
    result = p(build_host(cpus=2, ram_gib=24, cgroup_gib=0.75), target="defconfig", zram=False)
    assert result.jobs.value == 2 and result.jobs.limited_by == "cpus"
    cap = int(0.75 * GIB)
    assert result.jobs.budget_bytes == cap - int(cap * cal.CGROUP_HEADROOM_FRACTION)
    assert "nothing is reserved for the rest of the system" in result.jobs.reason
    assert [ph.fits for ph in result.phases] == ["ram", "ram"]
    # 32 MiB base + 176 MiB (p99) + 6 x 70 MiB = 628 MiB of 653 MiB
    assert "room for 7 jobs" in result.jobs.reason


@pytest.mark.parametrize(
    ("cap_mib", "jobs"),
    [
        # measured (tests/bench_jobs.py, docs/calibration.md §3): -j2 236 s, -j3 256 s, -j1 445 s
        (224, 2),
        # measured: -j2 184 s, -j1 381 s, -j3 killed (its need passed the cap + zram)
        (192, 2),
        # -j2's 278 MiB no longer fits 160 MiB + 80 MiB of zram
        (160, 1),
    ],
)
def test_a_measured_cgroup_cap_with_zram_at_half_of_it_plans_the_fastest_j(cap_mib, jobs):
    """The defconfig subset under a cgroup cap with lz4 zram swap of half the cap. The compile phase
    at -j2 is 32 MiB base + 176 MiB + 70 MiB = 278 MiB, at -j3 348 MiB; what zram frees counts, and
    so does the cap's page-cache headroom: with swap the kernel moves idle pages out to make room for
    the page cache (without it that headroom is what keeps a cap from livelocking)."""
    facts = build_host(cpus=4, ram_gib=24, cgroup_gib=cap_mib / 1024, zram_in_use=("zram0",), zram_swap_gib=cap_mib / 2048)
    result = p(facts, target="defconfig")
    assert result.jobs.value == jobs and result.jobs.limited_by == "memory", result.jobs.reason
    assert f"room for {_count_text(jobs)}" in result.jobs.reason
    assert "counted from zram (with the cap's" in result.jobs.reason
    # the same cap without swap keeps its headroom for the page cache
    bare = p(build_host(cpus=4, ram_gib=24, cgroup_gib=cap_mib / 1024), target="defconfig", zram=False)
    assert "counted from zram" not in bare.jobs.reason and bare.jobs.value == 1


def _count_text(n: int) -> str:
    return f"{n} job" + ("" if n == 1 else "s")


def test_16_cpus_8_gib_with_dwarf_keeps_j16():
    """The link does not shrink at -j1: -j comes from the compile phase (16 jobs of ~416 MiB fit)."""
    result = p(build_host(cpus=16, ram_gib=8), target="allmodconfig", debug_info="dwarf")
    assert result.jobs.value == 16 and result.jobs.limited_by == "cpus"
    assert result.jobs.per_job_bytes == int(cal.per_job_mib("allmod", "gcc", "dwarf") * MIB)
    assert {ph.name for ph in result.phases} == {"compile", "vmlinux link", "objtool over vmlinux.o"}
    assert all(ph.fits == "ram" for ph in result.phases)
    assert "the serial phases (vmlinux link, objtool over vmlinux.o) need no lower -j than 16" in result.jobs.reason


def test_a_serial_phase_that_does_not_fit_gets_zram_not_a_lower_j():
    tree = _tree(has_config=True, config={"DEBUG_INFO": "y", "DEBUG_INFO_DWARF5": "y", "MODULES": "y"}, modules=4000)
    facts = build_host(cpus=16, ram_gib=6, tree=tree)
    result = p(facts)
    link = _phase(result, "vmlinux link")
    assert result.jobs.value == 16
    assert result.zram.enabled and "the vmlinux link needs" in result.zram.reason
    assert link.fits == "swap" and "held by" in link.reason and "counted from zram" in link.reason
    # without zram: a warning with the phase, its numbers and the config changes that shrink it
    short = p(dataclasses.replace(facts, zram=ZramFacts(source="sysfs")))
    assert short.jobs.value == 16 and _phase(short, "vmlinux link").fits == "short"
    warning = next(w for w in short.warnings if w.startswith("the vmlinux link does not fit"))
    # DEBUG_INFO_COMPRESSED is not advised: the linker still reads all of it (the link is no smaller)
    assert "DEBUG_INFO_COMPRESSED" not in warning
    for needle in ("GiB", "add ~", "DEBUG_INFO_REDUCED", "DEBUG_INFO_SPLIT", "--debug-info none",
                   "A lower -j does not make it fit: even at -j1"):
        assert needle in warning, needle


def test_allyesconfig_in_an_8_gib_container_is_told_it_does_not_fit():
    facts = build_host(cpus=8, ram_gib=64, cgroup_gib=8, virt="container:podman")
    result = p(facts, target="allyesconfig")
    objtool = _phase(result, "objtool over vmlinux.o")
    assert objtool.fits == "short" and objtool.peak_bytes > 16 * GIB
    warning = next(w for w in result.warnings if w.startswith("the objtool over vmlinux.o does not fit"))
    assert "or build allmodconfig" in warning and "-j does not change it: no modfinal jobs run beside" in warning
    assert result.jobs.value == 8
    allmod = p(facts, target="allmodconfig")
    assert _phase(allmod, "objtool over vmlinux.o").peak_bytes < objtool.peak_bytes / 4


def test_a_container_on_a_busy_32_core_host_gets_no_load_limit():
    result = p(host("container-4c-4g-on-32c"))
    assert result.jobs.value == 4 and result.jobs.load is None
    assert "not namespaced" in result.jobs.load_reason and result.jobs.load_reason in result.jobs.reason
    assert result.env["MAKEFLAGS"] == "-j4" and " -l" not in result.config.make_command
    asked = p(host("container-4c-4g-on-32c"), load=4.0)
    assert asked.jobs.load == 4.0 and asked.env["MAKEFLAGS"] == "-j4 -l4" and " -l4 " in asked.config.make_command
    assert "load" in asked.overrides and any("--load 4 in a container" in w for w in asked.warnings)
    with pytest.raises(UserError, match="--load 0: must be above 0"):
        p(host("debian12-2c-24g"), load=0.0)


def test_allmodconfig_with_debug_info_asked_for_enables_dwarf():
    result = p(host("workstation-64c-256g"), target="allmodconfig", debug_info="dwarf")
    assert result.config.debug_info == "dwarf"
    script = result.config.config_commands[-1]
    assert "--disable DEBUG_INFO_NONE --enable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT" in script
    assert result.config.make_command.endswith("olddefconfig all")
    assert set(result.config.sanitizers) >= {"KASAN", "UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL"}
    assert result.jobs.per_job_bytes == int(cal.per_job_mib("allmod", "gcc", "dwarf") * MIB)


def test_allmodconfig_with_thin_lto_is_refused_by_kconfig():
    result = p(host("workstation-64c-256g"), target="allmodconfig", lto="thin")
    assert result.config.lto == "none" and result.config.compiler == "clang"
    warning = next(w for w in result.warnings if "Kconfig refuses clang LTO" in w)
    assert "GCOV_KERNEL, KASAN" in warning and "--disable GCOV_KERNEL --disable KASAN" in warning
    assert not any(ph.name.endswith("LTO link") for ph in result.phases)


def test_arm64_defconfig_has_reduced_dwarf_from_the_table():
    result = p(host("rpi4-4g"), target="defconfig")
    assert result.config.debug_info == "dwarf"
    assert "REDUCED" in result.config.reasons["debug_info"] and "defconfig/arm64/5.18" in result.config.reasons["debug_info"]
    # arm64 defconfig's own measured link (docs/calibration.md §17), not x86 defconfig's
    assert result.jobs.link_peak_bytes == int(cal.link_peak_mib("arm64-default", "dwarf", "reduced") * MIB)
    assert round(cal.link_peak_mib("arm64-default", "dwarf", "reduced")) == cal.ARCH_COST[("defconfig", "arm64")]["link_peak_mib"]


@pytest.mark.parametrize(
    "running, missing",
    [
        (RunningKernelFacts(config_path=None, modules_list=True, loaded_modules=50), "/proc/config.gz"),
        (RunningKernelFacts(config_path="/proc/config.gz", modules_list=False), "/proc/modules"),
        (None, "do not say"),
    ],
)
def test_a_host_without_a_running_kernel_config_gets_defconfig(running, missing):
    facts = dataclasses.replace(build_host(cpus=8, ram_gib=16, distro="debian"), running_kernel=running)
    result = p(facts)
    assert result.config.target == "defconfig" and missing in result.config.reasons["target"]
    text = json.dumps(result.to_dict())
    assert "distro kernel" not in text and "trusted_keys" not in result.config.reasons
    if running is not None and running.config_path:
        assert any("zcat /proc/config.gz" in a for a in result.config.advice)
    asked = p(facts, target="localmodconfig")
    assert any("make localmodconfig cannot work here" in w for w in asked.warnings)


def test_localmodconfig_keeps_the_running_kernels_debug_info_and_keys():
    config = {"DEBUG_INFO": "y", "DEBUG_INFO_BTF": "y", "SYSTEM_TRUSTED_KEYS": "debian/certs/debian-uefi-certs.pem"}
    running = RunningKernelFacts(config_path="/boot/config-6.1.0-18-amd64", modules_list=True, loaded_modules=90, config=config)
    result = p(dataclasses.replace(build_host(cpus=8, ram_gib=16), running_kernel=running))
    assert result.config.target == "localmodconfig" and result.config.debug_info == "btf"
    assert "the running kernel's config names certificate files" in result.config.reasons["trusted_keys"]
    assert "BTF (pahole)" in {ph.name for ph in result.phases}


def test_the_build_dir_avoids_tmpfs_and_a_tmpfs_o_takes_ram():
    base = build_host(cpus=8, ram_gib=16)
    tmp_home = DiskFacts("home", "/home/u", "/home", 50 * GIB, 60 * GIB, "tmpfs")
    facts = dataclasses.replace(base, disks=(base.disks[0], base.disks[1], tmp_home))
    assert p(facts, target="defconfig").config.build_dir == "/home/u/kbuild"  # the disk of the build role ("/")
    only_tmpfs = dataclasses.replace(base, disks=(dataclasses.replace(base.disks[0], fstype="tmpfs"), base.disks[1]))
    on_tmpfs = p(only_tmpfs, target="defconfig", build_dir="/tmp/kbuild")
    plain = p(base, target="defconfig", build_dir="/tmp/kbuild")
    out = int(cal.build_output_gib("default", "none") * GIB)
    assert on_tmpfs.jobs.budget_bytes == plain.jobs.budget_bytes - out
    assert any("takes RAM, counted out of the memory budget" in w for w in on_tmpfs.warnings)


def test_o_and_the_ccache_on_one_filesystem_are_summed():
    facts = build_host(cpus=8, ram_gib=32, free_gib=28)
    result = p(facts, target="allmodconfig", ccache_size_bytes=8 * GIB)
    warning = next(w for w in result.warnings if w.startswith("not enough disk for allmodconfig"))
    assert "O= ~25.0 GiB and the ccache up to 8.0 GiB on /" in warning and "28.0 GiB free" in warning
    roomy = p(build_host(cpus=8, ram_gib=32, free_gib=40), target="allmodconfig", ccache_size_bytes=8 * GIB)
    assert not any(w.startswith("not enough disk") for w in roomy.warnings)
    assert "33.0 GiB of 40.0 GiB free" in roomy.config.reasons["disk"]


def test_defconfig_time_estimate_on_this_machine_kind():
    """Measured: a whole defconfig at -j2 takes ~16 min here; the estimate must be within 35%."""
    result = p(host("debian12-2c-24g"), target="defconfig")
    assert 0.65 * 16 * 60 <= result.estimate.seconds <= 1.35 * 16 * 60
    assert "estimate: run kprov calibrate" in result.estimate.reason
    assert result.estimate.measured == ()


def test_a_raspberry_pi_estimate_says_its_cores_are_not_the_reference():
    result = p(host("rpi4-4g"))
    assert any("Raspberry Pi 4" in e and "several times slower" in e for e in result.estimate.estimated)


def _kconfig(**kw) -> KconfigFacts:
    base = dict(
        target="defconfig", arch="x86", kernel_version="6.1.192", debug_info="none", modules=13, builtins=1500,
        compiler="gcc (Debian 12.2.0-14+deb12u1) 12.2.0", config_hash="a" * 64, seconds=3.2,
        commands=("make -s -C /home/u/src/linux O=/scratch defconfig",),
    )
    base.update(kw)
    k = KconfigFacts(**base)
    return dataclasses.replace(k, base=k) if "base" not in kw else k


def test_an_evaluated_config_is_planned_from_and_shown():
    facts = build_host(tree=_tree())
    ev = TreeEvaluation(kconfig=_kconfig(debug_info="dwarf", debug_flags=("REDUCED",)))
    result = plan(facts, Goals(target="defconfig"), CATALOG, ev)
    assert result.config.debug_info == "dwarf" and result.config.source == "evaluated"
    assert "evaluated in a scratch O=" in result.config.reasons["kconfig"] and "(3.2 s)" in result.config.reasons["kconfig"]
    assert "(evaluated on this tree)" in result.config.reasons["debug_info"]
    assert result.jobs.link_peak_bytes == int(cal.link_peak_mib("default", "dwarf", "reduced") * MIB)
    assert result.config.kconfig.config_hash == "a" * 64


def test_an_evaluated_refusal_is_a_warning_and_the_plan_follows_kconfig():
    facts = build_host(tree=_tree(), tools=dict(_TOOLS, clang="16.0.6"))
    base = _kconfig(target="allmodconfig", sanitizers=("KASAN", "GCOV_KERNEL"), config={"KASAN": "y", "GCOV_KERNEL": "y"}, modules=8880)
    args = ("--disable LTO_NONE", "--disable LTO_CLANG_FULL", "--enable LTO_CLANG_THIN")
    final = dataclasses.replace(base, script_args=args, refused=("LTO_CLANG_THIN",), base=base)
    result = plan(facts, Goals(target="allmodconfig", lto="thin"), CATALOG, TreeEvaluation(kconfig=final))
    assert result.config.lto == "none"
    assert any("Kconfig refuses clang LTO" in w and "GCOV_KERNEL, KASAN" in w for w in result.warnings)


def _profile(**kw) -> CalibrationProfile:
    base = dict(
        method="kprov calibrate", date="2026-12-01T10:00:00+00:00", kernel_version="6.1.192", tree="/home/u/src/linux",
        target="defconfig", arch="x86", config_hash="a" * 64, compiler="gcc (Debian 12.2.0-14+deb12u1) 12.2.0",
        host="builder", cpu_model="AMD EPYC", usable_cpus=2, objects_total=2734, objects_sampled=180,
        rss_p50_bytes=80 * MIB, rss_p90_bytes=120 * MIB, rss_p99_bytes=150 * MIB, rss_max_bytes=256 * MIB,
        rss_max_object="net/wireless/nl80211.o", cpu_seconds_per_object=0.5, cpu_seconds_total=1367.0,
        object_bytes_total=300 * MIB, prepare_cpu_seconds=24.0, prepare_seconds=45.0,
        link=LinkMeasurement(measured=True, peak_bytes=300 * MIB, seconds=40.0, cpu_seconds=30.0, note="relinked"),
    )
    base.update(kw)
    return CalibrationProfile(**base)


def test_a_calibration_profile_gives_the_measured_figures_and_says_so():
    facts = build_host(tree=_tree())
    ev = TreeEvaluation(kconfig=_kconfig(), profile=_profile())
    result = plan(facts, Goals(target="defconfig"), CATALOG, ev)
    assert result.jobs.per_job_bytes == 150 * MIB
    assert "measured on this tree: p99 of 180 compile jobs" in result.jobs.reason
    link = _phase(result, "vmlinux link")
    assert link.peak_bytes == result.jobs.base_bytes + 300 * MIB + cal.MODFINAL_JOB_MIB * MIB and "measured on this tree" in link.reason
    assert result.estimate.measured and not any("compile CPU" in e for e in result.estimate.estimated)
    assert "measured on this tree" in result.estimate.reason
    assert "measured on this tree" in result.ccache.reasons["max_size"]
    table = plan(facts, Goals(target="defconfig"), CATALOG, TreeEvaluation(kconfig=_kconfig()))
    assert "estimate: run kprov calibrate --tree /home/u/src/linux" in table.jobs.reason


# --------------------------------------------------------------------------- the shared ccache's trust


def test_the_ccache_reason_names_who_can_write_the_shared_cache():
    facts = dataclasses.replace(host("debian12-2c-24g"), ccache_group_members=("alice", "bob"))
    result = p(facts)
    writers = result.ccache.reasons["writers"]
    assert writers.startswith("shared cache written by root and the members of group kbuild (members now: alice, bob)")
    assert "kprov adds nobody to it unless asked (--ccache-group-add USER)" in writers
    assert writers.endswith(
        f"{result.ccache.dir} is kbuild-writable, so each of them can plant objects that the others' builds and "
        "root's then link"
    )
    assert "shared cache written by root and the members of group kbuild" in result.ccache.reason
    assert result.to_role_vars()["kbuild_host_ccache_group_members"] == []
    assert result.to_role_vars()["kbuild_host_ccache_private"] is False


def test_the_writers_of_a_group_that_is_empty_or_unknown():
    empty = p(dataclasses.replace(host("debian12-2c-24g"), ccache_group_members=()))
    assert "(no members now)" in empty.ccache.reasons["writers"]
    local = p(host("debian12-2c-24g"))  # a local facts file: the group database said nothing
    assert "(group kbuild does not exist yet, so no members)" in local.ccache.reasons["writers"]
    remote = p(dataclasses.replace(host("debian12-2c-24g"), source="ansible"))
    assert "(group kbuild's members are not known from these facts)" in remote.ccache.reasons["writers"]


def test_users_are_added_to_the_group_only_when_asked():
    result = p(host("debian12-2c-24g"), ccache_group_add=("alice", "alice", "bob"))
    assert result.ccache.group_add == ("alice", "bob")
    assert result.to_role_vars()["kbuild_host_ccache_group_members"] == ["alice", "bob"]
    assert "kprov adds alice, bob to it (--ccache-group-add)" in result.ccache.reasons["writers"]
    with pytest.raises(UserError, match=r"^--ccache-group-add 'a b' is not a valid user name"):
        p(host("debian12-2c-24g"), ccache_group_add=("a b",))


def test_a_private_ccache_has_no_shared_dir_no_group_and_says_so():
    result = p(host("debian12-2c-24g"), ccache_private=True)
    c = result.ccache
    home = result.ccache.dir.removesuffix("/.cache/ccache")
    assert c.enabled and c.private and c.dir == f"{home}/.cache/ccache" and c.group_add == ()
    assert home == host("debian12-2c-24g").disk("home").path
    assert c.reasons["writers"].startswith("private caches: no shared directory and no group; each user keeps ccache's default")
    assert "CCACHE_DIR" not in result.env and "CCACHE_DIR" not in result.to_role_vars()["kbuild_host_buildenv"]
    role_vars = result.to_role_vars()
    assert role_vars["kbuild_host_ccache_private"] is True
    from provision.role.checks import check_role_vars

    check_role_vars(role_vars)
    from provision.apply.checks import check_writable_as_root

    check_writable_as_root(role_vars)  # a local apply accepts it (the role creates no directory there)
    with pytest.raises(UserError, match="kbuild_host_ccache_group_members with kbuild_host_ccache_private"):
        check_role_vars({**role_vars, "kbuild_host_ccache_group_members": ["alice"]})


@pytest.mark.parametrize(
    "goals, message",
    [
        ({"ccache_dir": "/srv/cache"}, "--ccache-private and --ccache-dir /srv/cache contradict each other: give one"),
        ({"ccache_group_add": ("alice",)},
         "--ccache-private and --ccache-group-add alice contradict each other: a private cache has no group"),
    ],
)
def test_a_private_ccache_conflicts_are_one_line(goals, message):
    with pytest.raises(UserError) as exc:
        p(host("debian12-2c-24g"), ccache_private=True, **goals)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ccache-private", "--ccache-dir", "/srv/cache"],
         "kprov: --ccache-private and --ccache-dir /srv/cache contradict each other: give one"),
        (["--ccache-private", "--ccache-group-add", "root"],
         "kprov: --ccache-private and --ccache-group-add root contradict each other: a private cache has no group"),
        (["--ccache-group-add", "Bad;user"],
         "kprov: --ccache-group-add 'Bad;user' is not a valid user name (expected e.g. alice: a-z, 0-9, _ and -)"),
        (["--ccache-group-add", "kprov-no-such-user"], "kprov: --ccache-group-add kprov-no-such-user: no such user on this host"),
    ],
)
@pytest.mark.parametrize("command", ["plan", "apply"])
def test_ccache_trust_switch_errors_are_one_line_and_exit_2(capsys, command, args, message):
    from provision.cli.app import Kprov

    extra = ["--check"] if command == "apply" else []
    _, rc = Kprov.run(["kprov", command, *extra, *args], exit=False)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip().splitlines() == [message]


def test_the_account_check_is_for_this_host_only(capsys):
    from provision.cli.app import Kprov

    facts = str(FIXTURES / "debian12-2c-24g.json")
    _, rc = Kprov.run(["kprov", "plan", "--facts", facts, "--ccache-group-add", "kprov-no-such-user"], exit=False)
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "kprov adds kprov-no-such-user to it" in out


def test_an_existing_user_is_accepted_by_the_switch(capsys):
    from provision.cli.app import Kprov

    _, rc = Kprov.run(
        ["kprov", "plan", "--facts", str(FIXTURES / "debian12-2c-24g.json"), "--ccache-group-add", "root", "--json"],
        exit=False,
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert json.loads(out)["ccache"]["group_add"] == ["root"]


def test_the_time_estimate_runs_jobs_on_the_cpus_the_build_may_use():
    """A CPU quota of 2.5 plans -j3 but compiles on 2.5 CPUs; a forced -j8 on 2 CPUs is no faster
    than -j2; with distcc the servers' CPUs run the jobs."""
    laptop = host("laptop-8c-16g")
    quota = dataclasses.replace(laptop, cpu=dataclasses.replace(laptop.cpu, cgroup_quota=2.5, usable=3))
    capped = plan(quota, Goals(), CATALOG)
    assert capped.jobs.value == 3 and "over 3 jobs on 2.5 CPUs" in capped.estimate.reason
    two = host("debian12-2c-24g")
    forced, natural = plan(two, Goals(jobs=8), CATALOG), plan(two, Goals(), CATALOG)
    assert natural.jobs.value == 2 and forced.jobs.value == 8
    assert forced.estimate.seconds == natural.estimate.seconds and "over 8 jobs on 2 CPUs" in forced.estimate.reason
    farm = plan(two, Goals(distcc_hosts=("10.0.0.2/8",)), CATALOG)
    assert farm.estimate.seconds < natural.estimate.seconds and "CPUs" not in farm.estimate.reason.split("(")[0]
