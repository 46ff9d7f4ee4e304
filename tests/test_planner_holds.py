"""Plans that hold where kernels are really built (issue 22, items 3, 4, 6 and 7): the link beside
the modfinal jobs weighed against zram, config advice that Kconfig keeps, what the make line
really runs, and one wording for one fact."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from provision import calibration as cal
from provision.units import GIB, MIB

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))

from hosts import synthetic  # noqa: E402
from test_planner import build_host, p  # noqa: E402

from provision.model.facts import HostFacts  # noqa: E402


def synthetic_host(name: str, **memory) -> HostFacts:
    facts = HostFacts.from_dict(json.loads(json.dumps(synthetic()[name])))
    if memory:
        facts = dataclasses.replace(facts, memory=dataclasses.replace(facts.memory, **memory))
    return facts


def phase(result, name):
    return next(ph for ph in result.phases if ph.name == name)


# --------------------------------------------------------------------------- item 3


def board_without_swap() -> HostFacts:
    """The 512 MiB 4-core board of issue 22 (no swap): the link 79 MiB short at -j4."""
    return synthetic_host("board-4c-512m", swap_total_bytes=0, swap_free_bytes=0)


def test_the_link_beside_modfinal_jobs_lowers_j_when_zram_cannot_hold_it():
    result = p(board_without_swap(), debug_info="none")
    assert result.jobs.value == 2 and result.jobs.limited_by == "memory"
    why = result.jobs.reason
    # the issue's board: 32 MiB base + 320 MiB link + one modfinal job (MODFINAL_JOB_MIB, measured) per
    # further job beside it; 465 MiB is what its budget, zram and swap hold
    at4, at2 = 32 + 320 + 3 * cal.MODFINAL_JOB_MIB, 32 + 320 + cal.MODFINAL_JOB_MIB
    assert f"-j2, not 4: at -j4 the vmlinux link with the modfinal jobs beside it needs ~{at4} MiB, {at4 - 465} MiB more" in why
    assert f"At -j2 it needs ~{at2} MiB and fits" in why and "more compile time (estimate)" in why
    assert "more zram would not be counted for it" in why
    link = phase(result, "vmlinux link")
    assert link.fits != "short" and link.peak_bytes == at2 * MIB
    # the table, the estimate and the make line all say -j2
    assert "make -j2 " in result.config.make_command and "at -j2:" in result.estimate.reason
    assert not any("does not fit" in w for w in result.warnings)


def test_a_forced_jobs_that_leaves_the_link_short_is_told_the_j_that_fits():
    result = p(board_without_swap(), debug_info="none", jobs=4)
    assert result.jobs.value == 4
    warning = next(w for w in result.warnings if w.startswith("the vmlinux link does not fit"))
    assert "At -j2 it would fit (-j4 as asked)" in warning
    assert "a lower -j would not make" not in warning


def test_a_link_that_leans_on_zram_keeps_j_when_zram_costs_less_time():
    """At -j4 the link needs 544 MiB over a 450 MiB budget: zram holds it (~7 s slower) where -j2
    would fit it in RAM at minutes of compile time: -j stays 4, and the reason says why."""
    facts = build_host(cpus=4, ram_gib=(450 + 256) / 1024, available_gib=0.69, compressors=("lzo-rle", "lz4"))
    result = p(facts, target="defconfig", debug_info="none")
    assert result.jobs.value == 4
    assert "-j4 over -j2: the vmlinux link leans on zram and swap at -j4" in result.jobs.reason
    assert f"at {cal.ZRAM_HELD_SLOWDOWN:g}x (measured)" in result.jobs.reason
    assert phase(result, "vmlinux link").fits == "swap"


def test_a_phase_without_modfinal_beside_it_never_lowers_j():
    result = p(build_host(cpus=4, ram_gib=4, compressors=()), lto="full", target="defconfig", compiler="clang")
    assert result.jobs.value == 4
    warning = next(w for w in result.warnings if w.startswith("the full LTO link does not fit"))
    assert "-j does not change it: no modfinal jobs run beside the full LTO link" in warning


def test_allyesconfig_counts_only_its_few_modules_beside_the_link():
    """allyesconfig builds everything into vmlinux: 63 test and sample modules on x86 6.1
    (docs/calibration.md §9), not -j minus 1 modfinal jobs; tinyconfig has none at all."""
    facts = build_host(cpus=128, ram_gib=512)
    result = p(facts, target="allyesconfig")
    link = phase(result, "vmlinux link")
    own = cal.link_peak_mib("allyes", "none") * MIB
    assert link.peak_bytes - own - cal.BUILD_BASE_MIB * MIB == 63 * cal.MODFINAL_JOB_MIB * MIB
    tiny = phase(p(facts, target="tinyconfig"), "vmlinux link")
    assert "modfinal" not in tiny.reason
    assert tiny.peak_bytes == (cal.BUILD_BASE_MIB + cal.link_peak_mib("tiny", "none")) * MIB


# --------------------------------------------------------------------------- item 7


def _all_text(result) -> str:
    z = result.zram
    return " ".join([result.jobs.reason, z.reason, *z.reasons.values(), *result.warnings, *(ph.reason for ph in result.phases)])


def test_memory_limits_j_has_one_wording_in_the_jobs_and_zram_reasons():
    """The board: 1 compile job fits the budget alone, 3 with zram. The jobs reason and the zram
    reason say the same thing in the same words."""
    result = p(synthetic_host("board-4c-512m"))
    assert "memory limits -j without zram" in result.zram.reason
    assert "memory limits -j without zram" in result.zram.reasons["algorithm"]
    assert "memory is the limit" in result.jobs.reason
    # with --debug-info none zram lifts -j to the 4 CPUs: the jobs reason used to say "memory is not
    # the limit" beside the zram reason's "memory limits -j"
    lifted = p(synthetic_host("board-4c-512m"), debug_info="none")
    assert lifted.jobs.value == 4 and "memory limits -j without zram" in lifted.zram.reason
    assert "memory is not the limit" not in lifted.jobs.reason
    assert (
        "memory limits -j without zram (room for 1 job in the budget alone), not with the zram counted"
        in lifted.jobs.reason
    )


def test_the_zram_capacity_reason_states_the_fraction_the_formula_uses():
    result = p(synthetic_host("board-4c-512m"))
    capacity = result.zram.reasons["capacity"]
    assert "45% of its need outside RAM" in capacity and "82% more than the budget" in capacity
    assert "45% more than RAM holds" not in capacity
    ram_budget = 256 * MIB
    assert abs(cal.zram_rescue_bytes(ram_budget) / ram_budget - 0.82) < 0.005


def test_a_container_is_not_told_to_add_swap():
    result = p(synthetic_host("cgroup-2g-on-24g"), target="allyesconfig")
    warnings = [w for w in result.warnings if "does not fit" in w]
    assert warnings and not any("of swap (or zram)" in w for w in warnings)
    assert all("raise the container's memory limit or set up zram on the host" in w for w in warnings)


def test_a_cgroup_limit_on_a_big_host_is_not_called_a_small_host():
    facts = dataclasses.replace(synthetic_host("cgroup-2g-on-24g"), virtualization="vm")
    result = p(facts)
    assert result.zram.enabled
    assert "a small host" not in result.zram.reason
    assert "a small memory limit (the cgroup's 2.0 GiB on a host of 23.5 GiB RAM" in result.zram.reason


# --------------------------------------------------------------------------- item 4

LINUX_61 = Path("/var/tmp/kprov-linux/linux-source-6.1")


def _shrink_advice(warning: str) -> str:
    return warning.split("or shrink it: ", 1)[1].split(";", 1)[0] if "or shrink it: " in warning else ""


def test_btf_as_asked_is_never_advised_away():
    """6.1: DEBUG_INFO_BTF depends on !DEBUG_INFO_SPLIT && !DEBUG_INFO_REDUCED; --debug-info none
    undoes what was asked. Neither is advised, and the warning says why."""
    for facts in (synthetic_host("board-4c-512m"), synthetic_host("tiny-1c-1g-noswap")):
        result = p(facts, debug_info="btf")
        short = [w for w in result.warnings if "does not fit" in w]
        assert short
        for w in short:
            advice = _shrink_advice(w)
            assert "DEBUG_INFO_REDUCED" not in advice and "DEBUG_INFO_SPLIT" not in advice
            assert "--debug-info none" not in advice
            assert "not DEBUG_INFO_REDUCED or DEBUG_INFO_SPLIT: DEBUG_INFO_BTF (--debug-info btf, as asked) depends on" in w
            assert "not --debug-info none: --debug-info btf was asked for" in w


def test_dwarf_as_asked_gets_the_variants_kconfig_keeps():
    result = p(synthetic_host("tiny-1c-1g-noswap"), debug_info="dwarf")
    w = next(w for w in result.warnings if w.startswith("the vmlinux link does not fit"))
    assert "DEBUG_INFO_REDUCED (~" in _shrink_advice(w) and "DEBUG_INFO_SPLIT (~" in _shrink_advice(w)
    assert "--debug-info none" not in _shrink_advice(w)


def test_btf_on_a_config_with_reduced_dwarf_disables_reduced_first():
    """arm64 defconfig has DEBUG_INFO_REDUCED, which rules BTF out: the plan's own scripts/config
    turns it off before it enables BTF (else olddefconfig drops BTF)."""
    result = p(synthetic_host("board-4c-512m"), debug_info="btf")
    script = result.config.config_commands[1]
    assert "--disable DEBUG_INFO_REDUCED --disable DEBUG_INFO_SPLIT --enable DEBUG_INFO_BTF" in script


def test_the_trees_own_kconfig_decides(tmp_path):
    """With --tree the tree's lib/Kconfig.debug is read: a tree whose BTF allows REDUCED gets
    REDUCED advised; the 6.1 tree's says what the table says."""
    from provision.model.facts import TreeEvaluation
    from provision.planner import plan
    from provision.tree.kconfig import tree_depends
    from test_planner import CATALOG
    from provision.model.goals import Goals

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "Kconfig.debug").write_text(
        "if DEBUG_INFO\n\nconfig DEBUG_INFO_REDUCED\n\tbool \"Reduce\"\n\thelp\n\t  if you say Y here\n\n"
        "config DEBUG_INFO_SPLIT\n\tbool \"Split\"\n\tdepends on $(cc-option,-gsplit-dwarf)\n\n"
        "config DEBUG_INFO_BTF\n\tbool \"BTF\"\n\tdepends on BPF_SYSCALL\n\nendif # DEBUG_INFO\n"
    )
    depends = tree_depends(str(tmp_path))
    assert depends["DEBUG_INFO_BTF"] == "(DEBUG_INFO) && (BPF_SYSCALL)"
    assert depends["DEBUG_INFO_REDUCED"] == "(DEBUG_INFO)"
    facts = synthetic_host("tiny-1c-1g-noswap")
    result = plan(facts, Goals(debug_info="btf"), CATALOG, TreeEvaluation(depends=depends))
    w = next(w for w in result.warnings if w.startswith("the BTF (pahole) does not fit"))
    assert "DEBUG_INFO_REDUCED (~" in _shrink_advice(w)
    assert "not DEBUG_INFO_REDUCED" not in w
    if LINUX_61.is_dir():
        from provision.rules.kconfig import depends_hold

        real = tree_depends(str(LINUX_61))
        assert set(real) == set(cal.KCONFIG_DEPENDS)
        for reduced in (True, False):
            for split in (True, False):
                known = {"DEBUG_INFO": True, "DEBUG_INFO_REDUCED": reduced, "DEBUG_INFO_SPLIT": split}
                assert depends_hold(real["DEBUG_INFO_BTF"], known) == depends_hold(cal.KCONFIG_DEPENDS["DEBUG_INFO_BTF"], known)
        assert depends_hold(real["DEBUG_INFO_BTF"], {"DEBUG_INFO": True, "DEBUG_INFO_REDUCED": True}) is False


# --------------------------------------------------------------------------- item 6


def test_thinlto_is_sized_at_the_backends_ld_lld_runs():
    """16 physical cores, an 8 GiB host: ld.lld runs 16 backends (~9 GiB with the thin link), not
    the 11 that fit; the reason says how to limit them on the make line."""
    facts = build_host(cpus=16, ram_gib=8, tools={"clang": "16.0.6", "ld.lld": "16.0.6", "make": "4.3"})
    facts = dataclasses.replace(facts, cpu=dataclasses.replace(facts.cpu, physical_cores=16))
    result = p(facts, lto="thin", target="defconfig")
    link = phase(result, "ThinLTO link")
    assert link.peak_bytes == (cal.BUILD_BASE_MIB + cal.THINLTO_BASE_MIB + 16 * cal.THINLTO_PER_BACKEND_MIB) * MIB
    assert "16 backends" in link.reason
    lto = result.config.reasons["lto"]
    assert "ld.lld runs 16 ThinLTO backends here" in lto and "LD='ld.lld --thinlto-jobs=" in lto
    # the estimate's ThinLTO time runs 16 backends on the 16 CPUs
    cpu = result.estimate.cpu_seconds
    assert abs(next(ph.seconds for ph in result.phases if ph.name == "ThinLTO link") - cpu * cal.LTO_LINK_CPU_SHARE / 16) < 1


def test_the_estimate_includes_the_cold_ccache_it_plans():
    facts = build_host(cpus=2, ram_gib=24)
    on = p(facts, target="defconfig")
    off = p(facts, target="defconfig", ccache=False)
    assert on.ccache.enabled and "CC='ccache gcc'" in on.config.make_command
    assert abs(on.phases[0].seconds / off.phases[0].seconds - cal.CCACHE_COLD_SLOWDOWN) < 0.01
    assert f"x {cal.CCACHE_COLD_SLOWDOWN:g} for ccache filling a cold cache" in on.estimate.reason
    assert "ccache" not in off.estimate.reason


def _ci_runner(mount: str, fstype: str, ci: bool = True) -> HostFacts:
    from provision.model.facts import DiskFacts

    facts = build_host(cpus=4, ram_gib=16, virt="container:docker")
    disks = tuple(
        DiskFacts("ccache", "/root/.cache/ccache", mount, d.free_bytes, d.total_bytes, fstype) if d.role == "ccache" else d
        for d in facts.disks
    )
    return dataclasses.replace(facts, disks=disks, ci=ci)


def test_a_throw_away_ci_runner_plans_ccache_off():
    result = p(_ci_runner("/", "overlay"))
    assert not result.ccache.enabled and "CC=" not in result.config.make_command
    assert result.ccache.reason.startswith("off: a throw-away CI runner (a container, CI=true)")
    assert "every build starts with a cold cache" in result.ccache.reason and "1.33x slower" in result.ccache.reason
    # a persistent volume for the cache, or not a CI run: on
    assert p(_ci_runner("/root/.cache", "ext4")).ccache.enabled
    assert p(_ci_runner("/", "overlay", ci=False)).ccache.enabled
    # asked for: as asked
    assert p(_ci_runner("/", "overlay"), ccache=True).ccache.enabled


def test_local_facts_read_ci_from_the_environment(monkeypatch):
    from provision.facts.local import gather

    monkeypatch.setenv("CI", "true")
    assert gather().ci is True
    monkeypatch.delenv("CI")
    assert gather().ci is False


def test_a_recorded_build_of_a_few_targets_never_makes_a_lower_j_look_free():
    """A profile ``kprov build`` wrote for a few targets has no whole-build CPU (0): the compile time
    a lower -j costs still comes from the table, so the weighing of -j against zram is not rigged
    towards the lower -j by a zero."""
    from provision.model.facts import FROM_BUILD, CalibrationProfile
    from provision.model.goals import Goals
    from provision.planner.common import PlanNotes
    from provision.planner.config import choose_config
    from provision.planner.phases import compile_seconds

    facts = board_without_swap()
    cfg = choose_config(facts, Goals(debug_info="none"), None, PlanNotes())
    partial = CalibrationProfile(
        method="kprov build", date="2026-12-07T00:00:00", kernel_version="6.1.0", tree="/src/linux",
        target=cfg.target, arch="arm64", config_hash="0" * 64, compiler=cfg.compiler, host="board",
        objects_sampled=82, rss_p99_bytes=118 * MIB, source=FROM_BUILD, build_jobs=1, build_seconds=105.0,
    )
    assert partial.cpu_seconds_total == 0
    assert compile_seconds(facts, cfg, 2, partial) == compile_seconds(facts, cfg, 2, None)
    assert compile_seconds(facts, cfg, 1, partial)[0] > compile_seconds(facts, cfg, 2, partial)[0] > 0
