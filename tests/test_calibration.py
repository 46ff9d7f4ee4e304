"""The calibration table: every constant has a source that cites docs/calibration.md, and the
look-ups cover every case."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provision import calibration as cal
from provision.model.schema import TARGETS

CLASSES = cal.CLASSES
DOC = Path(__file__).resolve().parent.parent / cal.DOC


def _sections() -> set[str]:
    return set(re.findall(r"^## §(\d+) ", DOC.read_text(), re.MULTILINE))


def test_every_constant_names_its_source():
    assert len(cal.TABLE) >= 50
    for name, const in cal.TABLE.items():
        assert const.name == name
        assert const.source.startswith(("measured:", "published:", "estimate:")), name
        assert len(const.source) > 30, name


def test_every_source_cites_a_section_of_the_calibration_record_in_the_repository():
    sections = _sections()
    assert {str(n) for n in range(1, 13)} <= sections
    for name, const in cal.TABLE.items():
        assert "REFERENCE.md" not in const.source, name
        cited = re.findall(r"§(\d+)", const.source)
        assert cal.DOC in const.source and cited, f"{name} does not cite {cal.DOC} §N"
        assert set(cited) <= sections, f"{name} cites a section {cal.DOC} does not have: {cited}"


def test_the_record_holds_every_figure_the_planner_uses():
    text = DOC.read_text()
    for figure in ("p99 / max | 75 / 114 / 155 / 256 MiB", "302 MiB", "1,317 s", "3.3:1", "3.6:1", "53 GB", "25 GB", "4.2", "2.8 GB", "5m49s",
                   "-j2 115", "768 MiB", "kprov calibrate", "DEBUG_INFO_NONE", "REDUCED", "8,880"):
        assert figure in text, figure
    for name in cal.TABLE:
        assert f"`{name}`" in text, f"{name} is not in {cal.DOC}"


def test_measured_figures_match_the_record():
    assert cal.PER_JOB_MIB["default"] == 160  # defconfig cc1 p99 155 MiB
    assert cal.PER_JOB_MIB["tiny"] == 102
    assert cal.LINK_PEAK_MIB[("default", "none")] == 320  # ld of vmlinux ~302 MiB
    assert cal.DEBUG_MEMORY_FACTOR["dwarf"] == 1.25  # 224 -> 287 and 272 -> 324 MiB
    assert cal.ZRAM_RATIO["lz4"] == 3.3 and cal.ZRAM_RATIO["lzo-rle"] == 3.6
    assert cal.CCACHE_BROKEN_VERSIONS == ((4, 7, 0), (4, 7, 2))
    assert cal.DISTCC_DEFAULT_LIMIT == 4 and cal.DISTCC_LOCALHOST_LIMIT == 2 and cal.DISTCCD_EXTRA_JOBS == 2
    assert cal.ZRAM_MAX_PERCENT == 200


def test_every_target_has_a_class_and_every_class_every_figure():
    assert set(cal.TARGET_CLASS) == set(TARGETS)
    assert set(cal.TARGET_CLASS.values()) <= set(CLASSES)
    for klass in CLASSES:
        for debug in ("none", "dwarf", "btf"):
            for compiler in ("gcc", "clang"):
                assert cal.per_job_mib(klass, compiler, debug) > 0
                assert cal.build_cpu_seconds(klass, compiler, debug) > 0
            assert cal.link_peak_mib(klass, debug) > 0
            assert cal.objtool_peak_mib(klass, debug, (6, 1)) > 0
            assert cal.build_output_gib(klass, debug) > 0
            assert cal.ccache_footprint_mib(klass, debug) > 0
        assert cal.LTO_FULL_LINK_MIB[klass] >= 2048
        assert cal.PREPARE_SECONDS[klass] > 0 and cal.LINK_SECONDS[klass] > 0


@pytest.mark.parametrize("klass", CLASSES)
def test_debug_info_and_clang_never_make_a_job_cheaper(klass):
    plain = cal.per_job_mib(klass, "gcc", "none")
    assert cal.per_job_mib(klass, "gcc", "dwarf") > plain
    assert cal.per_job_mib(klass, "clang", "none") > plain
    assert cal.link_peak_mib(klass, "dwarf") > cal.link_peak_mib(klass, "none")
    assert cal.link_peak_mib(klass, "none") <= cal.link_peak_mib(klass, "dwarf", "split") < cal.link_peak_mib(klass, "dwarf")
    assert cal.link_peak_mib(klass, "dwarf", "reduced") < cal.link_peak_mib(klass, "dwarf")
    assert cal.build_output_gib(klass, "dwarf") > cal.build_output_gib(klass, "none")


def test_heavier_targets_need_more():
    order = ["tiny", "default", "distro", "allmod"]
    for a, b in zip(order, order[1:]):
        assert cal.PER_JOB_MIB[a] <= cal.PER_JOB_MIB[b]
        assert cal.CCACHE_FOOTPRINT_MIB[a] <= cal.CCACHE_FOOTPRINT_MIB[b]
    # allyesconfig links everything into vmlinux: its serial phases dwarf allmodconfig's
    for debug in ("none", "dwarf"):
        assert cal.link_peak_mib("allyes", debug) > 4 * cal.link_peak_mib("allmod", debug) / 2
        assert cal.objtool_peak_mib("allyes", debug, (6, 1)) >= 4 * cal.objtool_peak_mib("allmod", debug, (6, 1))


def test_objtool_rows_follow_the_kernel_version():
    assert cal.objtool_peak_mib("allyes", "dwarf", (6, 1)) == 54272  # ~53 GB before 6.5
    assert cal.objtool_peak_mib("allyes", "dwarf", (6, 5)) == 25600  # ~25 GB from 6.5
    assert cal.objtool_peak_mib("allyes", "dwarf", None) == 54272  # unknown version: the larger figure
    assert cal.objtool_peak_mib("distro", "dwarf", (6, 4)) == 2870
    assert cal.objtool_peak_mib("allyes", "none", (6, 2)) > cal.objtool_peak_mib("allyes", "none", (6, 3))


def test_config_traits_row_by_target_arch_and_version():
    row, key = cal.config_traits_row("defconfig", "arm64", (6, 1))
    assert row["debug"] == "dwarf" and "REDUCED" in row["flags"] and key == "defconfig/arm64/5.18"
    row, key = cal.config_traits_row("defconfig", "arm64", (5, 10))
    assert row["debug"] == "none" and key == "defconfig/*/any"
    assert cal.config_traits_row("defconfig", "x86", None)[0]["debug"] == "none"
    for target in ("allmodconfig", "allyesconfig"):
        for arch in ("x86", "riscv", None):
            row, _ = cal.config_traits_row(target, arch, (6, 1))
            assert row["debug"] == "none" and "GCOV_KERNEL" in row["lto_blocked"]
    assert cal.config_traits_row("allmodconfig", "x86", None)[0]["objtool"] is True
    assert cal.config_traits_row("tinyconfig", "arm", (4, 19))[0] == {"debug": "none", "modules": 0}
    assert cal.config_traits_row("allyesconfig", "x86", (6, 1))[0]["modules"] == 63


def test_zram_preferences_and_ratios():
    for mode in ("capacity", "speed"):
        assert set(cal.ZRAM_PREFERENCE[mode]) == set(cal.ZRAM_RATIO)
    assert cal.ZRAM_PREFERENCE["capacity"][0] == "zstd"
    assert cal.ZRAM_PREFERENCE["speed"][0] == "lz4"
    assert cal.zram_ratio("unheard-of") == cal.ZRAM_RATIO_UNKNOWN
    assert all(isinstance(v, str) for v in cal.ZRAM_SYSCTLS.values())
    assert 0 < cal.ZRAM_RESCUE_FRACTION < 0.5


def test_kbuild_env_is_fixed_and_complete():
    assert set(cal.KBUILD_ENV) == {
        "KBUILD_BUILD_TIMESTAMP", "KBUILD_BUILD_USER", "KBUILD_BUILD_HOST", "KBUILD_BUILD_VERSION"
    }
    assert all(cal.KBUILD_ENV.values())


def test_defining_a_constant_twice_fails():
    with pytest.raises(ValueError):
        cal._k("ZRAM_PRIORITY", 1, "estimate: duplicate on purpose")
