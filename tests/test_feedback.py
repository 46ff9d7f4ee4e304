"""``kprov build`` fed back into ``kprov plan``: a real build of Debian's linux-source 6.1
(tinyconfig and a few objects) recorded with its profile, then planned again on the same tree and
config (the recorded figures, "measured by kprov build"), on another config (never used), after an
OOM kill (fewer jobs) and after a build with room to spare (more jobs); and one loader for a
calibration profile, an old one, and a build's record."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_kconfig import linux_source

from provision.build.record import BuildRecord, append, load
from provision.errors import UserError
from provision.facts.measured import build_profiles, parse_profile, read_profile
from provision.model.facts import FROM_BUILD, PROFILE_SCHEMA

KPROV = Path(sys.executable).parent / "kprov"
PLAN = ("--target", "tinyconfig", "--no-ccache")


def _kprov(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {"PATH": f"{KPROV.parent}:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home),
           "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"), "LANG": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "provision.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=str(home))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One real build at -j1 (tinyconfig, three objects), recorded: (home, tree, out, record)."""
    if os.geteuid() != 0:
        pytest.skip("builds with --as-root (the tree is root's)")
    tree = linux_source()
    home = tmp_path_factory.mktemp("feedback")
    out = home / "out"
    done = _kprov(home, "build", "--as-root", "--tree", str(tree), "--build-dir", str(out), *PLAN, "--no-zram",
                  "--", "-j1", "tinyconfig", "kernel/fork.o", "kernel/exit.o", "kernel/panic.o")
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    assert "next plan:      kprov plan --tree" in done.stdout
    records = load(home / "state" / "kprov" / "builds.jsonl")
    assert len(records) == 1
    yield home, tree, out, records[0]
    shutil.rmtree(out, ignore_errors=True)


def _plan(home: Path, tree: Path, out: Path, *extra: str, zram: bool = False) -> dict:
    done = _kprov(home, "plan", "--tree", str(tree), "--build-dir", str(out), *PLAN, *(() if zram else ("--no-zram",)),
                  *extra, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_real_build_carries_its_figures_in_the_profile_format(built):
    _home, tree, _out, record = built
    assert record.profile is not None
    profile = parse_profile(record.profile, "record")
    assert profile.source == FROM_BUILD and profile.schema == PROFILE_SCHEMA
    assert profile.build_jobs == 1 and profile.tree == str(tree) and profile.kernel_version.startswith("6.1")
    assert profile.objects_sampled >= 3 and profile.rss_p99_bytes == record.job_peaks["p99"]
    assert 20 << 20 < profile.rss_p99_bytes <= profile.rss_max_bytes < 1 << 30
    assert profile.phase_peaks["compile"] >= profile.rss_max_bytes  # the whole tree's peak holds the largest job
    # three objects are not the whole build: no CPU-minutes or time taken from it
    assert profile.cpu_seconds_total == 0 and not profile.link.measured


def test_the_next_plan_of_the_same_tree_and_config_uses_the_recorded_figures(built):
    home, tree, out, record = built
    plan = _plan(home, tree, out)
    profile = parse_profile(record.profile)
    jobs = plan["jobs"]
    assert f"measured by kprov build on {record.started[:10]} at -j1" in jobs["reason"]
    assert jobs["per_job_bytes"] == profile.rss_p99_bytes and jobs["average_job_bytes"] == profile.rss_mean_bytes
    # the build at -j1 peaked far under its budget, on a host with more CPUs: -j rises, and says why
    cpus = plan["host"]["usable_cpus"]
    if cpus > 1:
        assert jobs["value"] > 1 and "raised from the -j1 of the recorded build" in jobs["reason"]
        assert "of its" in jobs["reason"] and "budget" in jobs["reason"]
    # the estimate's time stays the table's: three objects are not the build's CPU-minutes
    assert "measured by kprov build" not in plan["estimate"]["reason"]


def test_the_figures_of_another_config_are_never_used(built):
    home, tree, out, _record = built
    plan = _plan(home, tree, out, "--debug-info", "dwarf")  # tinyconfig with DWARF: another config hash
    text = json.dumps(plan)
    assert "measured by kprov build" not in text
    assert "table figure" in plan["jobs"]["reason"]


@pytest.mark.parametrize("outcome", ["oom", "stalls"])
def test_an_oom_kill_or_heavy_stalls_at_a_j_lower_the_next_plans_j(built, tmp_path, outcome):
    """The record here is the real record of ``built`` with its OOM fields (or its memory stall
    time) set as kprov build writes them after such a build, written through the validated
    writer and planned for real: a real OOM kill in a small cgroup is tests/test_build.py's."""
    home, tree, out, record = built
    first = _plan(home, tree, out)
    if first["host"]["usable_cpus"] < 2:
        pytest.skip("one usable CPU: -j1 cannot go lower")
    j, budget = first["jobs"]["value"], first["jobs"]["budget_bytes"]
    profile = dataclasses.replace(parse_profile(record.profile), build_jobs=j, budget_bytes=budget)
    changes: dict = {"jobs": j}
    if outcome == "oom":
        profile = dataclasses.replace(profile, oom_jobs=j, oom_phase="compile", oom_date=record.started,
                                      oom_budget_bytes=budget)
        changes.update(exit_code=2, oom={"phase": "compile", "jobs": j, "program": "cc1", "by": "gcc's report"})
    else:  # memory stalled a fifth of the build's time
        profile = dataclasses.replace(profile, stall_seconds=round(profile.build_seconds / 5, 2))
        changes.update(stall_us=int(profile.build_seconds / 5 * 1e6))
    written = BuildRecord.from_dict(dict(record.to_dict(), profile=profile.to_dict(), **changes))
    other = tmp_path / "home"
    (other / "state" / "kprov").mkdir(parents=True)
    append(written, other / "state" / "kprov" / "builds.jsonl")
    loaded = build_profiles(other / "state" / "kprov" / "builds.jsonl")  # validated on load
    assert len(loaded) == 1 and (loaded[0].oom_jobs == j if outcome == "oom" else loaded[0].stall_seconds > 0)
    jobs = _plan(other, tree, out)["jobs"]
    assert jobs["value"] < j, jobs["reason"]
    assert f"lowered from the -j{j} of the recorded build" in jobs["reason"]
    if outcome == "oom":
        assert "was killed by the OOM killer in the compile phase" in jobs["reason"]
    else:
        assert "memory stalls took 20% of the build" in jobs["reason"]
    assert f"so that {j} jobs need that budget and one job's p99 more" in jobs["reason"]
    if outcome == "oom":
        # the same record where zram may be planned: zram holds the killed job's difference
        # (the build had no zram), so zram grows and -j stays, both saying why
        plan = _plan(other, tree, out, zram=True)
        if not plan["zram"]["enabled"]:
            pytest.skip(f"zram is not planned on this host: {plan['zram']['reason'][:200]}")
        assert plan["zram"]["reason"].startswith("on: memory limits -j"), plan["zram"]["reason"]
        assert plan["jobs"]["value"] == j and f"-j{j} as the recorded build: the build at -j{j}" in plan["jobs"]["reason"]


def test_a_whole_builds_cpu_minutes_and_time_are_the_next_estimate(built, tmp_path):
    """A whole build of the tree is several minutes here (tinyconfig: 472 units in 6m31s at -j2
    on the loaded 2-core test machine, docs/calibration.md §16): this record is the real record
    of ``built`` with the figures kprov build stores for a whole build set (CPU-minutes, units,
    wall time at the plan's -j), written through the validated writer and planned for real."""
    home, tree, out, record = built
    j = _plan(home, tree, out)["jobs"]["value"]
    profile = dataclasses.replace(parse_profile(record.profile), build_jobs=j, cpu_seconds_total=174.0,
                                  objects_total=472, prepare_seconds=30.0, build_seconds=391.0)
    other = tmp_path / "home"
    (other / "state" / "kprov").mkdir(parents=True)
    append(BuildRecord.from_dict(dict(record.to_dict(), jobs=j, profile=profile.to_dict())),
           other / "state" / "kprov" / "builds.jsonl")
    estimate = _plan(other, tree, out)["estimate"]
    assert estimate["seconds"] == 391.0 and estimate["cpu_seconds"] == 174.0
    assert estimate["reason"].startswith(f"~7 min at -j{j}: the build at -j{j} took 7 min")
    assert f"compile CPU 3 CPU-minutes for 472 units (measured by kprov build on {record.started[:10]}" in estimate["reason"]


def test_a_calibration_profile_an_old_one_and_a_build_record_load_through_one_loader(built, tmp_path):
    _home, _tree, _out, record = built
    from_build = parse_profile(record.profile)
    calibration = dataclasses.replace(from_build, source="kprov calibrate", build_jobs=0, phase_peaks={}, path="")
    current = tmp_path / "current.json"
    current.write_text(json.dumps({k: v for k, v in calibration.to_dict().items() if k != "path"}))
    assert read_profile(current).rss_p99_bytes == from_build.rss_p99_bytes
    # a schema-1 profile (calibrate's before builds wrote profiles) still loads
    old = {k: v for k, v in calibration.to_dict().items()
           if k in ("method", "date", "kernel_version", "tree", "target", "arch", "config_hash", "compiler", "host",
                    "objects_sampled", "rss_p99_bytes", "rss_mean_bytes", "cpu_seconds_total", "link")}
    (tmp_path / "old.json").write_text(json.dumps(dict(old, schema=1)))
    loaded = read_profile(tmp_path / "old.json")
    assert loaded.schema == PROFILE_SCHEMA and loaded.source == "kprov calibrate" and loaded.build_jobs == 0
    # a schema this kprov does not know is one line
    (tmp_path / "new.json").write_text(json.dumps(dict(old, schema=9)))
    with pytest.raises(UserError) as err:
        read_profile(tmp_path / "new.json")
    assert "profile schema 9 is not one this kprov reads" in str(err.value) and "\n" not in str(err.value)


def test_a_record_whose_profile_is_not_a_profile_is_skipped_never_trusted(built, tmp_path):
    """Hand-edited history lines: the profile of a wrong type, out of bounds, of an unknown schema,
    or under another user's tree path full of escapes; only the intact one is taken."""
    _home, _tree, _out, record = built
    path = tmp_path / "builds.jsonl"
    good = record.to_dict()
    bad_profiles = ["x", dict(record.profile, rss_p99_bytes=-1), dict(record.profile, schema=9),
                    dict(record.profile, phase_peaks={"compile": "lots"}), dict(record.profile, build_jobs=True)]
    with open(path, "w") as f:
        for profile in bad_profiles:
            f.write(json.dumps(dict(good, profile=profile)) + "\n")
        f.write("[" * 50_000 + "\n")
        f.write(json.dumps(dict(good, profile=dict(record.profile, tree="/src/\x1b]0;owned\x07"))) + "\n")
        f.write(json.dumps(good) + "\n")
    taken = build_profiles(path)
    assert [p.path.rsplit(":", 1)[1] for p in taken] == ["7", "8"]
    assert taken[0].tree == "/src/\x1b]0;owned\x07"  # kept as data; every output escapes it


def test_the_summary_shows_ccaches_counters_over_the_build(built):
    """Two builds of one object through a ccache directory of the test's own: the second is a
    local hit, and the summary says so from ccache --print-stats before and after."""
    if shutil.which("ccache") is None:
        pytest.skip("ccache is not installed")
    home, tree, out, _record = built
    summaries = []
    for _ in range(2):
        (out / "kernel" / "panic.o").unlink(missing_ok=True)
        done = _kprov(home, "build", "--as-root", "--tree", str(tree), "--build-dir", str(out), "--target", "tinyconfig",
                      "--ccache", "--ccache-dir", str(home / "ccache"), "--no-zram", "--", "-j1", "kernel/panic.o")
        assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
        summaries.append(next(line for line in done.stdout.splitlines() if line.startswith("  ccache:")))
    first, second = ({k: int(v) for v, k in re.findall(r"(\d+) (hits|misses|errors|timeouts)", s.split(";")[0])}
                     for s in summaries)
    assert first["misses"] >= 1, summaries[0]  # kernel/panic.o was not in the new cache
    assert second["hits"] >= 1, summaries[1]  # ... and is now
    assert "remote 0 hits, 0 misses, 0 errors, 0 timeouts" in summaries[1]
    record = load(home / "state" / "kprov" / "builds.jsonl")[-1]
    assert record.ccache["local_storage_hit"] == second["hits"]
