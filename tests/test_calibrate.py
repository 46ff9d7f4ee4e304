"""provision.tree.calibrate and ``kprov calibrate``: measured for real on Debian's linux-source with a
small budget, then ``kprov plan --tree`` quotes the measured figures; the sampling and the profile
matching on their own."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest
from test_kconfig import CACHE, linux_source

from provision.cli.app import Kprov
from provision.errors import UserError
from provision.model.facts import CalibrationProfile, KconfigFacts, LinkMeasurement
from provision.tree.calibrate import METHOD, MIN_SAMPLE
from provision.tree.profiles import find_profile, load_profile, save_profile
from provision.tree.sampling import Progress, quantile_of, compile_command_of, relink, sample_order

#: Kconfig scratch and calibration build directories survive between runs (the first run of a
#: fresh machine builds Kconfig's and prepare's host tools: about a minute more).
PERSISTENT_CACHE = CACHE / "xdg-cache"


# --------------------------------------------------------------------------- pure parts


def test_the_sample_takes_the_largest_sources_then_a_proportional_spread():
    units = [(f"drivers/net/u{i}.o", 1000 + i) for i in range(600)] + [(f"kernel/u{i}.o", 500) for i in range(200)]
    units += [("net/wireless/nl80211.o", 10**6), ("drivers/gpu/big.o", 9 * 10**5)]
    largest, spread = sample_order(units, "a" * 64)
    assert largest[:2] == ["net/wireless/nl80211.o", "drivers/gpu/big.o"] and len(largest) == 16
    assert sorted(spread) == sorted(u for u, _ in units if u not in largest) and len(set(spread)) == len(spread)
    # any prefix covers the directories in proportion (600 : 200 less the largest)
    first = spread[:80]
    kernel = sum(u.startswith("kernel/") for u in first)
    assert 14 <= kernel <= 26
    assert sample_order(units, "a" * 64) == (largest, spread)  # the same config, the same sample


def test_the_weighted_quantile():
    pairs = [(100.0, 1.0)] * 98 + [(200.0, 1.0), (300.0, 1.0)]
    assert quantile_of(pairs, 0.5) == 100.0
    assert quantile_of(pairs, 0.99) == 200.0
    assert quantile_of([(10.0, 1.0), (20.0, 99.0)], 0.5) == 20.0


def test_the_compile_command_of_a_previous_build_is_read_from_its_cmd_files(tmp_path: Path):
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / ".main.o.cmd").write_text("cmd_init/main.o := ccache gcc -Wp,-MMD,init/.main.o.d -nostdinc\n")
    assert compile_command_of(tmp_path) == ["ccache", "gcc"]
    assert compile_command_of(tmp_path / "none") is None


def test_a_relink_without_a_previous_build_is_not_measured(tmp_path: Path):
    k = KconfigFacts(target="defconfig", arch="x86", kernel_version="6.1.192", debug_info="none", config_hash="a" * 64)
    link = relink(tmp_path, "/nonexistent", k, {}, lambda line: None)
    assert not link.measured and link.note.startswith("not measured: no previous build")


def test_the_progress_line_has_a_bar_and_an_eta():
    out = io.StringIO()
    progress = Progress(out)
    progress.bar(30, 120, 95, "units compiled")
    progress.say("done")
    lines = out.getvalue().splitlines()
    assert lines[0] == "kprov calibrate: [######..................] 30/120 units compiled, ETA 1m35s"
    assert lines[1] == "kprov calibrate: done"


def _profile(**kw) -> CalibrationProfile:
    base = dict(
        method=METHOD, date="2026-12-01T10:00:00+00:00", kernel_version="6.1.192", tree="/src/linux",
        target="defconfig", arch="x86", config_hash="a" * 64, compiler="gcc 12", host=socket.gethostname(),
        objects_sampled=50, rss_p99_bytes=150 << 20, link=LinkMeasurement(measured=False, note="not measured"),
    )
    base.update(kw)
    return CalibrationProfile(**base)


def test_only_a_profile_of_the_same_config_compiler_kernel_and_host_is_used(tmp_path: Path):
    k = KconfigFacts(target="defconfig", arch="x86", kernel_version="6.1.192", debug_info="none",
                     config_hash="a" * 64, compiler="gcc 12")
    save_profile(_profile(config_hash="b" * 64, target="allmodconfig"), tmp_path / "other-config.json")
    save_profile(_profile(compiler="clang 16"), tmp_path / "other-compiler.json")
    save_profile(_profile(host="elsewhere"), tmp_path / "other-host.json")
    found, notes = find_profile(k, "/src/linux", tmp_path)
    assert found is None and len(notes) == 3
    assert any("is for another config or compiler (config allmodconfig hash bbbbbbbbbbbb" in n for n in notes)
    assert any("compiler 'clang 16', not 'gcc 12'" in n for n in notes)
    assert any("measured on host elsewhere" in n for n in notes)
    save_profile(_profile(), tmp_path / "match.json")
    found, notes = find_profile(k, "/src/linux", tmp_path)
    assert found is not None and found.path == str(tmp_path / "match.json") and notes == []


def test_a_broken_profile_file_is_one_line(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 1, "method": 5}')
    with pytest.raises(UserError) as err:
        load_profile(bad)
    assert str(err.value).startswith(f"profile {bad}: ") and "\n" not in str(err.value)


# --------------------------------------------------------------------------- for real


def _kprov(args: list[str], capsys) -> tuple[int, str, str]:
    _inst, rc = Kprov.run(["kprov", *args], exit=False)
    out, err = capsys.readouterr()
    return rc, out, err


def test_calibrate_for_real_then_plan_quotes_the_measured_figures(tmp_path: Path, monkeypatch, capsys):
    tree = linux_source()  # tinyconfig on x86 is 32-bit: no objtool, so no libelf needed
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(PERSISTENT_CACHE))
    output = tmp_path / "profile.json"
    rc, out, err = _kprov(
        ["calibrate", "--tree", str(tree), "--target", "tinyconfig", "--minutes", "1", "--output", str(output)], capsys
    )
    assert rc == 0, err
    assert "kprov calibrate: make prepare" in err and "units compiled, ETA" in err
    assert "vmlinux link: not measured" in out
    stored = next((tmp_path / "state" / "kprov" / "calibration").glob("*.json"))
    assert f"profile: {stored}" in out and f"also written to: {output}" in out
    data = json.loads(stored.read_text())
    assert data == json.loads(output.read_text())
    for key in ("method", "date", "kernel_version", "config_hash", "compiler", "host"):
        assert data[key], key
    assert data["target"] == "tinyconfig" and data["host"] == socket.gethostname()
    assert data["objects_sampled"] >= MIN_SAMPLE and data["objects_total"] > data["objects_sampled"]
    assert 20 << 20 < data["rss_p99_bytes"] <= data["rss_max_bytes"] < 1 << 30
    assert data["cpu_seconds_total"] > 0 and data["prepare_seconds"] > 0

    rc, out, err = _kprov(["plan", "--tree", str(tree), "--target", "tinyconfig", "--json"], capsys)
    assert rc == 0, err
    plan = json.loads(out)
    assert plan["jobs"]["per_job_bytes"] == data["rss_p99_bytes"]
    assert f"measured on this tree: p99 of {data['objects_sampled']} compile jobs" in plan["jobs"]["reason"]
    assert plan["estimate"]["measured"] and "measured on this tree" in plan["estimate"]["reason"]
    link = next(ph for ph in plan["phases"] if ph["name"] == "vmlinux link")
    assert "estimate: run kprov calibrate" in link["reason"]  # the link was not measured

    rc, out, err = _kprov(["plan", "--tree", str(tree), "--target", "defconfig", "--json"], capsys)
    assert rc == 0, err
    other = json.loads(out)
    assert any("is for another config or compiler" in w and "tinyconfig" in w for w in other["warnings"])
    assert "estimate: run kprov calibrate" in other["jobs"]["reason"]


def test_calibrate_needs_a_tree(capsys):
    rc, _out, err = _kprov(["calibrate", "--minutes", "1"], capsys)
    assert rc == 2 and err.strip() == "kprov: kprov calibrate needs --tree PATH: the kernel tree to measure"
    rc, _out, err = _kprov(["calibrate", "--tree", "/", "--minutes", "0"], capsys)
    assert rc == 2 and "--minutes" in err and len(err.strip().splitlines()) == 1
