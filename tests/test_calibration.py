"""The calibration table: every constant has a source, and the look-ups cover every case."""

from __future__ import annotations

import pytest

from provision import calibration as cal
from provision.model import TARGETS

CLASSES = ("tiny", "default", "local", "distro", "all")


def test_every_constant_names_its_source():
    assert len(cal.TABLE) >= 40
    for name, const in cal.TABLE.items():
        assert const.name == name
        assert const.source.startswith(("measured:", "published:", "estimate:")), name
        assert len(const.source) > 30, name


def test_measured_figures_match_reference():
    assert cal.PER_JOB_MIB["default"] == 160  # defconfig cc1 p99 155 MiB
    assert cal.PER_JOB_MIB["tiny"] == 102
    assert cal.LINK_PEAK_MIB[("default", "none")] == 320  # ld of vmlinux ~302 MiB
    assert cal.ZRAM_RATIO["lz4"] == 3.3 and cal.ZRAM_RATIO["lzo-rle"] == 3.6
    assert cal.CCACHE_BROKEN_VERSIONS == ((4, 7, 0), (4, 7, 2))
    assert cal.DISTCC_DEFAULT_LIMIT == 4 and cal.DISTCC_LOCALHOST_LIMIT == 2 and cal.DISTCCD_EXTRA_JOBS == 2
    assert cal.ZRAM_MAX_PERCENT == 200


def test_every_target_has_a_class_and_every_class_every_figure():
    assert set(cal.TARGET_CLASS) == set(TARGETS)
    for klass in CLASSES:
        for debug in ("none", "dwarf", "btf"):
            for compiler in ("gcc", "clang"):
                assert cal.per_job_mib(klass, compiler, debug) > 0
                assert cal.build_cpu_seconds(klass, compiler, debug) > 0
            assert cal.link_peak_mib(klass, debug) > 0
            assert cal.build_output_gib(klass, debug) > 0
            assert cal.ccache_footprint_mib(klass, debug) > 0
        assert cal.LTO_FULL_LINK_MIB[klass] >= 2048


@pytest.mark.parametrize("klass", CLASSES)
def test_debug_info_and_clang_never_make_a_job_cheaper(klass):
    plain = cal.per_job_mib(klass, "gcc", "none")
    assert cal.per_job_mib(klass, "gcc", "dwarf") > plain
    assert cal.per_job_mib(klass, "clang", "none") > plain
    assert cal.link_peak_mib(klass, "dwarf") > cal.link_peak_mib(klass, "none")
    assert cal.build_output_gib(klass, "dwarf") > cal.build_output_gib(klass, "none")


def test_heavier_targets_need_more():
    order = ["tiny", "default", "distro", "all"]
    for a, b in zip(order, order[1:]):
        assert cal.PER_JOB_MIB[a] <= cal.PER_JOB_MIB[b]
        assert cal.LINK_PEAK_MIB[(a, "none")] <= cal.LINK_PEAK_MIB[(b, "none")]
        assert cal.CCACHE_FOOTPRINT_MIB[a] <= cal.CCACHE_FOOTPRINT_MIB[b]


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
