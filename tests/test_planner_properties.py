"""Properties of the planner over generated hosts: a plan is a fixed point of its own apply, more
RAM, a higher cgroup limit or more CPUs never give fewer jobs to a build that finishes, and a forced
``--jobs N`` is kept.

"A build that finishes": every phase of the smaller host's plan fits (RAM, or RAM with zram and
swap). Where a serial phase is short at every -j the plan keeps the compile phase's -j and warns
(no -j finishes it); a bigger host where a lower -j does fit the link plans that lower -j. So the
comparison starts from a plan whose build finishes: then the bigger host's phases fit at that -j too,
and its -j is at least as high."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from provision.facts.catalog import load_catalog
from provision.model.facts import (
    CpuFacts,
    DiskFacts,
    DistroFacts,
    HostFacts,
    MemoryFacts,
    ZramFacts,
)
from provision.model.goals import Goals
from provision.model.plan import Plan
from provision.planner import plan
from provision.units import GIB, MIB

CATALOG = load_catalog()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEBIAN = DistroFacts(id="debian", family="debian", version="12", codename="bookworm", name="Debian GNU/Linux 12")
COMPRESSOR_SETS = (
    (),
    ("lzo-rle", "lzo", "lz4"),
    ("lzo-rle", "lzo", "lz4", "lz4hc", "842", "zstd"),
    ("lzo", "zstd"),
)


@dataclasses.dataclass(frozen=True)
class Shape:
    cpus: int
    ram: int
    available_fraction: float
    cgroup: int | None
    cgroup_no_swap: bool
    swap: int
    compressors: tuple[str, ...]
    debug_info: str
    virt: str


def facts_of(s: Shape) -> HostFacts:
    return HostFacts(
        hostname="gen",
        arch="x86_64",
        cpu=CpuFacts(logical=s.cpus, usable=s.cpus, affinity=s.cpus),
        memory=MemoryFacts(
            total_bytes=s.ram,
            available_bytes=int(s.ram * s.available_fraction),
            cgroup_limit_bytes=s.cgroup,
            swap_total_bytes=s.swap,
            swap_free_bytes=s.swap,
            cgroup_swap_limit_bytes=0 if s.cgroup and s.cgroup_no_swap else None,
        ),
        distro=DEBIAN,
        disks=(
            DiskFacts("build", "/home/u", "/", 200 * GIB, 500 * GIB, "ext4"),
            DiskFacts("ccache", "/var/cache/ccache", "/", 200 * GIB, 500 * GIB, "ext4"),
            DiskFacts("home", "/home/u", "/", 200 * GIB, 500 * GIB, "ext4"),
        ),
        zram=ZramFacts(
            compressors=s.compressors,
            active=s.compressors[0] if s.compressors else None,
            source="sysfs" if s.compressors else "none",
            device_present=bool(s.compressors),
        ),
        toolchain={"gcc": "12.2.0", "make": "4.3", "ld": "2.40", "ccache": "4.7.5", "pahole": "1.24",
                   "flex": "2.6.4", "bison": "3.8.2", "bc": "1.07.1", "openssl": "3.0.11"},
        kernel_release="6.1.0-18-amd64",
        virtualization=s.virt,
    )


@st.composite
def shapes(draw) -> Shape:
    ram = draw(st.integers(512, 256 * 1024)) * MIB
    cgroup = draw(st.one_of(st.none(), st.integers(256, 256 * 1024).map(lambda m: m * MIB)))
    return Shape(
        cpus=draw(st.integers(1, 64)),
        ram=ram,
        available_fraction=draw(st.sampled_from((0.6, 0.8, 0.95))),
        cgroup=cgroup,
        cgroup_no_swap=draw(st.booleans()),
        swap=draw(st.sampled_from((0, 512 * MIB, 2 * GIB, 8 * GIB))),
        compressors=draw(st.sampled_from(COMPRESSOR_SETS)),
        debug_info=draw(st.sampled_from(("auto", "none", "dwarf", "btf"))),
        virt=draw(st.sampled_from(("none", "vm", "vm", "container:podman"))),
    )


def plan_of(facts: HostFacts, **goals) -> Plan:
    return plan(facts, Goals(**goals), CATALOG)


def finishing(facts: HostFacts, debug_info: str) -> int:
    """The -j of a plan whose every phase fits (the test is skipped for any other)."""
    p = plan_of(facts, debug_info=debug_info)
    assume(all(ph.fits != "short" for ph in p.phases))
    return p.jobs.value


def after_apply(facts: HostFacts, p: Plan) -> HostFacts:
    """The facts the apply of ``p`` leaves: kprov's zram device at the planned size, active."""
    if not p.zram.enabled or facts.in_container:
        return facts
    size = p.zram.size_bytes
    m = facts.memory
    memory = dataclasses.replace(
        m,
        swap_total_bytes=m.swap_total_bytes + size,
        swap_free_bytes=m.swap_free_bytes + size,
        zram_swap_bytes=size,
    )
    zram = dataclasses.replace(
        facts.zram, active=p.zram.algorithm, devices_in_use=("zram0",), kprov_devices=("zram0",)
    )
    return dataclasses.replace(facts, memory=memory, zram=zram)


def decisions(p: Plan) -> dict:
    return {
        "jobs": p.jobs.value,
        "zram_enabled": p.zram.enabled,
        "zram_percent": p.zram.percent,
        "zram_algorithm": p.zram.algorithm,
        "zram_size": p.zram.size_bytes,
        "ccache_enabled": p.ccache.enabled,
        "ccache_size": p.ccache.max_size_bytes,
    }


@SETTINGS
@given(shapes())
def test_a_plan_is_a_fixed_point_of_its_own_apply(s: Shape):
    facts = facts_of(s)
    first = plan_of(facts, debug_info=s.debug_info)
    second = plan_of(after_apply(facts, first), debug_info=s.debug_info)
    assert decisions(second) == decisions(first)


def test_the_1g_btf_host_of_issue_22_keeps_its_zram_size():
    s = Shape(1, 1 * GIB, 0.8, None, False, 0, COMPRESSOR_SETS[2], "btf", "vm")
    facts = facts_of(s)
    first = plan_of(facts, debug_info="btf")
    assert first.zram.enabled and first.zram.percent > 100
    again = facts
    for _ in range(3):
        again = after_apply(facts, plan_of(again, debug_info="btf"))
        assert decisions(plan_of(again, debug_info="btf")) == decisions(first)


@SETTINGS
@given(shapes(), st.integers(1, 64 * 1024))
def test_more_ram_never_gives_fewer_jobs(s: Shape, more_mib: int):
    # A limit at RAM is no limit to the planner (the 15% page-cache headroom of docs/calibration.md
    # §3 was measured for caps below RAM): a limit stays below RAM on both sides, as in the test of
    # a higher limit below, so the comparison is between two hosts with the same kind of budget.
    if s.cgroup is not None:
        s = dataclasses.replace(s, cgroup=min(s.cgroup, s.ram - 1 * MIB))
    bigger = dataclasses.replace(s, ram=min(s.ram + more_mib * MIB, 256 * GIB))
    assert plan_of(facts_of(bigger), debug_info=s.debug_info).jobs.value >= finishing(facts_of(s), s.debug_info)


@SETTINGS
@given(shapes(), st.integers(1, 64 * 1024))
def test_a_higher_cgroup_limit_never_gives_fewer_jobs(s: Shape, more_mib: int):
    low = dataclasses.replace(s, cgroup=min(s.cgroup or 256 * MIB, s.ram - 1 * MIB))
    high = dataclasses.replace(low, cgroup=min(low.cgroup + more_mib * MIB, s.ram - 1 * MIB))
    assert plan_of(facts_of(high), debug_info=s.debug_info).jobs.value >= finishing(facts_of(low), s.debug_info)


@SETTINGS
@given(shapes(), st.integers(1, 64))
def test_more_cpus_never_give_fewer_jobs(s: Shape, more: int):
    bigger = dataclasses.replace(s, cpus=min(64, s.cpus + more))
    assert plan_of(facts_of(bigger), debug_info=s.debug_info).jobs.value >= finishing(facts_of(s), s.debug_info)


@SETTINGS
@given(shapes(), st.integers(1, 256))
def test_a_forced_jobs_is_honoured(s: Shape, jobs: int):
    p = plan_of(facts_of(s), debug_info=s.debug_info, jobs=jobs)
    assert p.jobs.value == jobs and p.jobs.overridden
    assert f"at -j{jobs}:" in p.estimate.reason and f"-j{jobs} " in p.config.make_command
    compile_phase = p.phases[0]
    assert compile_phase.peak_bytes == p.jobs.base_bytes + p.jobs.per_job_bytes + (jobs - 1) * p.jobs.average_job_bytes


# --------------------------------------------------------------------------- issue 22, items 3, 4 and 6


def _shrink_advice(p: Plan) -> list[str]:
    out = []
    for w in p.warnings:
        if "or shrink it: " in w:
            out += [a.split(" (~", 1)[0] for a in w.split("or shrink it: ", 1)[1].split(";", 1)[0].split(", ")]
    return out


@SETTINGS
@given(shapes())
def test_every_config_change_advised_keeps_the_goals(s: Shape):
    """Advice never contradicts Kconfig (6.1: BTF depends on !SPLIT && !REDUCED) nor undoes an
    asked --debug-info."""
    from provision import calibration as cal
    from provision.rules.kconfig import depends_hold

    p = plan_of(facts_of(s), debug_info=s.debug_info)
    advised = _shrink_advice(p)
    if s.debug_info != "auto":
        assert "--debug-info none" not in advised
    for option in advised:
        if option.startswith("DEBUG_INFO_") and p.config.debug_info == "btf":
            known = {"DEBUG_INFO": True, option: True}
            assert depends_hold(cal.KCONFIG_DEPENDS["DEBUG_INFO_BTF"], known) is not False, option


@SETTINGS
@given(shapes())
def test_no_auto_plan_leaves_a_phase_short_that_a_lower_j_fits(s: Shape):
    """The link beside the modfinal jobs: an automatic -j is never one at which a serial phase is
    short while a lower -j would fit it."""
    p = plan_of(facts_of(s), debug_info=s.debug_info)
    for w in p.warnings:
        if "does not fit" in w:
            assert "it would fit (-j" not in w
    short = {ph.name for ph in p.phases if ph.fits == "short"}
    if short and p.jobs.value > 1:
        for lower in {1, p.jobs.value - 1}:
            at = plan_of(facts_of(s), debug_info=s.debug_info, jobs=lower)
            assert any(ph.fits == "short" for ph in at.phases), lower
    assert f"at -j{p.jobs.value}:" in p.estimate.reason and f"-j{p.jobs.value} " in p.config.make_command


@SETTINGS
@given(shapes(), st.integers(1, 256))
def test_allyesconfig_costs_no_more_modfinal_than_its_modules(s: Shape, more: int):
    """allyesconfig builds everything into vmlinux: 63 modules on x86 (docs/calibration.md §9),
    however many jobs run."""
    from provision import calibration as cal

    s = dataclasses.replace(s, cpus=s.cpus + more, ram=max(s.ram, 512 * GIB))
    p = plan_of(facts_of(s), target="allyesconfig")
    link = next(ph for ph in p.phases if ph.name == "vmlinux link")
    own = int(cal.link_peak_mib("allyes", "none") * MIB)
    assert link.peak_bytes - own - p.jobs.base_bytes <= 63 * cal.MODFINAL_JOB_MIB * MIB


@SETTINGS
@given(shapes(), st.integers(1, 64))
def test_the_thinlto_link_is_costed_at_the_backends_the_make_line_runs(s: Shape, cores: int):
    """ld.lld runs one ThinLTO backend per physical core when the make line does not limit them:
    the phase is sized at that, and the estimate runs them on the CPUs the build may use."""
    from provision import calibration as cal

    facts = facts_of(s)
    facts = dataclasses.replace(
        facts,
        cpu=dataclasses.replace(facts.cpu, physical_cores=min(cores, s.cpus)),
        toolchain={**facts.toolchain, "clang": "16.0.6", "ld.lld": "16.0.6"},
    )
    p = plan_of(facts, lto="thin", target="defconfig")
    if p.config.lto != "thin":
        return
    backends = min(cores, s.cpus)
    link = next(ph for ph in p.phases if ph.name == "ThinLTO link")
    assert link.peak_bytes == p.jobs.base_bytes + (cal.THINLTO_BASE_MIB + backends * cal.THINLTO_PER_BACKEND_MIB) * MIB
    noun = "ThinLTO backend" if backends == 1 else "ThinLTO backends"
    assert f"ld.lld runs {backends} {noun} here" in p.config.reasons["lto"]
    assert f"-j{p.jobs.value} " in p.config.make_command and f"at -j{p.jobs.value}:" in p.estimate.reason
