"""``kprov build`` and ``kprov history``: Kbuild's lines read into phases, the record, and real
builds of Debian's linux-source (tinyconfig, a few objects) run as an unprivileged user, one
refused as root, one OOM-killed in a small memory cgroup, drawn as SVG."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import no_swap_cgroup_under, own_v1_memory_cgroup
from test_cache_status import (
    SECRET,
    redis,  # noqa: F401 - the fixture, for the hung store
)
from test_kconfig import linux_source

from provision.build.phases import classify, oom_line
from provision.build.record import (
    BuildRecord,
    PhaseStats,
    append,
    load,
    percentiles,
    thin,
)
from provision.build.report import history_table, plot, summary

KPROV = Path(sys.executable).parent / "kprov"
STRICT = os.environ.get("KPROV_TEST_STRICT") == "1"


@pytest.mark.parametrize("line, seen, want", [
    ("  HOSTCC  scripts/kconfig/conf.o", False, ("prepare", False)),
    ("# configuration written to .config", False, ("config", False)),
    ("  SYSHDR  arch/x86/include/generated/uapi/asm/unistd_32.h", False, ("prepare", False)),
    ("  CC      scripts/mod/empty.o", False, ("prepare", False)),
    ("  CC      kernel/fork.o", False, ("compile", True)),
    ("  AS      arch/x86/entry/entry_64.o", True, ("compile", True)),
    ("  CC [M]  fs/ext4/super.o", True, ("compile", True)),
    ("  AR      kernel/built-in.a", True, ("compile", False)),
    ("  LD      vmlinux.o", True, ("vmlinux.o", False)),
    ("  OBJTOOL vmlinux.o", True, ("vmlinux.o", False)),
    ("  MODPOST vmlinux.symvers", True, ("vmlinux.o", False)),
    ("  LD      .tmp_vmlinux.kallsyms1", True, ("vmlinux link", False)),
    ("  KSYMS   .tmp_vmlinux.kallsyms1.S", True, ("vmlinux link", False)),
    ("  BTF     .btf.vmlinux.bin.o", True, ("vmlinux link", False)),
    ("  LD      vmlinux", True, ("vmlinux link", False)),
    ("  BUILD   arch/x86/boot/bzImage", True, ("vmlinux link", False)),
    ("  MODPOST Module.symvers", True, ("modfinal", False)),
    ("  CC [M]  fs/ext4/ext4.mod.o", True, ("modfinal", False)),
    ("  LD [M]  fs/ext4/ext4.ko", True, ("modfinal", False)),
    ("kernel/fork.c:12:1: warning: unused variable", True, (None, False)),
    ("make[2]: *** [scripts/Makefile.build:250: kernel/fork.o] Error 1", True, (None, False)),
])
def test_kbuild_lines_name_their_phase_and_the_compile_units(line, seen, want):
    assert classify(line, seen) == want


def test_gccs_report_of_a_killed_compiler_is_an_oom():
    assert oom_line("gcc: fatal error: Killed signal terminated program cc1") == "cc1"
    assert oom_line("kernel/fork.c: error: killed the wrong thing") is None


def test_percentiles_and_thinning():
    assert percentiles([]) == {"count": 0}
    p = percentiles(list(range(1, 101)))
    assert (p["p50"], p["p90"], p["p99"], p["max"], p["count"]) == (50, 90, 99, 100, 100)
    points = [[i] for i in range(10_000)]
    thinned = thin(points, 100)
    assert len(thinned) == 100 and thinned[0] == [0] and thinned[-1] == [9999]
    assert thin(points[:5], 100) == points[:5]


def _record(**kw) -> BuildRecord:
    base = dict(
        started="2026-12-07T10:00:00Z", host="h", user="u", tree="/src/linux", tree_version="6.1.0",
        config_hash="ab" * 32, compiler="gcc", arch="x86_64", jobs=2, argv=["make", "-j2"], exit_code=0,
        wall_seconds=100.0, cpu_seconds=180.0, units=3, expected_units=None,
        phases={"compile": PhaseStats(90.0, 170.0, 300 << 20, 0, 400 << 20)}, job_peaks={"count": 0},
        budget_bytes=1 << 30, swap_peak_bytes=0,
        samples=[[0.0, 1 << 20, 0, 0, "prepare"], [50.0, 200 << 20, 0, 2, "compile"], [100.0, 300 << 20, 0, 1, "compile"]],
    )
    base.update(kw)
    return BuildRecord(**base)


def test_records_append_and_load_skipping_what_is_not_a_record(tmp_path):
    path = tmp_path / "state" / "kprov" / "builds.jsonl"
    append(_record(), path)
    with open(path, "a") as f:
        f.write("not json\n{\"schema\": 99}\n")
    append(_record(exit_code=2, oom={"phase": "compile", "jobs": 2, "program": "cc1", "by": "gcc's report"}), path)
    got = load(path)
    assert [r.exit_code for r in got] == [0, 2] and got[1].oom["program"] == "cc1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    table = history_table(got)
    assert "OOM" in table.splitlines()[2] and "6.1.0" in table


def test_a_history_that_is_a_symlink_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "builds.jsonl"
    link.symlink_to(target)
    with pytest.raises(Exception, match="is not a regular file"):
        append(_record(), link)
    assert target.read_text() == ""


def test_the_plot_is_svg_with_the_budget_phases_and_series():
    svg = plot(_record(tree_version="6.1.0 <&>"))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert len(root.findall(f".//{ns}polyline")) == 3
    assert any("plan's budget" in (t.text or "") for t in root.iter(f"{ns}text"))
    assert {r.findtext(f"{ns}title") for r in root.iter(f"{ns}rect")} >= {"prepare", "compile"}
    assert "6.1.0 <&>" in root.findtext(f"{ns}title")  # escaped in the file, intact when parsed


def test_the_summary_names_each_phase_against_the_plans_figure():
    text = summary(_record(exit_code=2, oom={"phase": "compile", "jobs": 2, "program": "cc1", "by": "gcc's report"},
                           tail=["  CC      kernel/fork.o", "gcc: fatal error: Killed signal terminated program cc1"]))
    assert text.startswith("kprov build was OOM-killed in 1m40s")
    assert "compile         1m30s     2m50s    300 MiB       400 MiB" in text
    assert "OOM kill:       cc1 killed in the compile phase at -j2" in text
    assert "Killed signal terminated program cc1" in text


# --------------------------------------------------------------------------- real builds


@pytest.fixture(scope="module")
def tree() -> Path:
    return linux_source()


def _as_nobody(workdir: Path) -> list[str]:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        if STRICT:
            pytest.fail("needs root and setpriv to run kprov build as an unprivileged user")
        pytest.skip("needs root and setpriv")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _kprov(prefix: list[str], home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {"PATH": f"{KPROV.parent}:/usr/bin:/bin", "HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
           "XDG_CACHE_HOME": str(home / "cache"), "LANG": "C.UTF-8"}
    return subprocess.run([*prefix, sys.executable, "-m", "provision.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False, cwd=str(home))


@pytest.fixture
def nobody_home():
    """A home directory nobody can reach (pytest's tmp_path is under a 0700 directory)."""
    home = Path(tempfile.mkdtemp(prefix="kprov-build-", dir="/var/tmp"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_a_real_build_as_an_unprivileged_user_is_recorded_summarised_and_drawn(tree, nobody_home):
    home = nobody_home
    home.chmod(0o755)
    shutil.chown(home, 65534, 65534)
    prefix = _as_nobody(home)
    out = home / "out"
    base = ("build", "--tree", str(tree), "--build-dir", str(out), "--no-ccache")
    done = _kprov(prefix, home, *base, "--", "-j2", "tinyconfig")
    assert done.returncode == 0, done.stderr[-2000:]
    done = _kprov(prefix, home, *base, "--", "-j2", "kernel/fork.o", "kernel/exit.o", "kernel/panic.o")
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    assert "  CC      kernel/fork.o" in done.stdout  # make's own lines passed through
    assert "kprov build finished" in done.stdout
    records = [json.loads(line) for line in (home / "state" / "kprov" / "builds.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["exit_code"] == 0 and r["user"] == "nobody" for r in records)
    last = records[-1]
    assert last["units"] == 3 and last["jobs"] == 2 and last["tree_version"].startswith("6.1")
    assert {"prepare", "compile"} <= set(last["phases"]) and last["config_hash"] == records[0]["config_hash"]
    assert last["job_peaks"]["count"] >= 3 and 20 << 20 < last["job_peaks"]["max"] < 1 << 30
    assert len(last["samples"]) >= 10 * last["wall_seconds"] * 0.5  # about ten samples a second
    history = _kprov(prefix, home, "history")
    assert history.returncode == 0 and len(history.stdout.splitlines()) == 3
    svg = home / "b.svg"
    drawn = _kprov(prefix, home, "history", "--plot", str(svg))
    assert drawn.returncode == 0, drawn.stderr
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_a_build_as_root_outside_a_container_is_refused_unless_asked(tree, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    done = _kprov([], tmp_path, "build", "--tree", str(tree), "--build-dir", str(tmp_path / "out"), "--", "tinyconfig")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("kprov: kprov build runs the tree's own code") and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "state").exists()


def _memory_cgroup(tmp_path: Path, limit: int) -> Path | None:
    """A child of this process's own v1 memory cgroup (a cgroup elsewhere may refuse it), capped
    with no swap (memsw = mem)."""
    own = own_v1_memory_cgroup()
    if os.geteuid() != 0 or own is None:
        return None
    return no_swap_cgroup_under(own, f"kprov-test-{os.getpid()}-{time.monotonic_ns()}", limit)


def test_a_build_oom_killed_in_a_small_cgroup_is_named_as_such(tree, tmp_path):
    out = tmp_path / "out"
    prepared = _kprov([], tmp_path, "build", "--as-root", "--tree", str(tree), "--build-dir", str(out),
                      "--no-ccache", "--", "-j2", "tinyconfig", "prepare")
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    group = _memory_cgroup(tmp_path, 128 << 20)
    if group is None:
        if STRICT:
            pytest.fail("needs root and a cgroup v1 memory controller")
        pytest.skip("needs root and a cgroup v1 memory controller")
    try:
        # kprov joins the cgroup too; make and its jobs raise their own OOM score
        # (run.BUILD_OOM_SCORE_ADJ), so a compile job is killed, never kprov
        script = f"echo $$ > {group}/cgroup.procs && exec \"$@\""
        env = {"PATH": f"{KPROV.parent}:/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"),
               "XDG_CACHE_HOME": str(tmp_path / "cache")}
        done = subprocess.run(
            ["sh", "-c", script, "sh", str(KPROV), "build", "--as-root", "--no-ccache", "--tree", str(tree),
             "--build-dir", str(out), "--", "-j2", "kernel/sched/core.o", "kernel/sched/fair.o"],
            capture_output=True, text=True, env=env, timeout=600, check=False,
        )
    finally:
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    record = json.loads((tmp_path / "state" / "kprov" / "builds.jsonl").read_text().splitlines()[-1])
    assert record["oom"] is not None and record["oom"]["phase"] == "compile" and record["oom"]["jobs"] == 2
    assert "OOM kill:" in done.stdout and "was OOM-killed" in done.stdout


def test_a_store_that_hangs_mid_build_is_dropped_and_costs_seconds_not_a_timeout_per_unit(tree, tmp_path, redis):  # noqa: F811
    """A Redis store on loopback stopped with SIGSTOP once compiling starts: the breaker reads
    ccache's remote error and timeout counters, drops the store from the build's private copy of
    the configuration, and the build finishes on the local cache."""
    port, server = redis
    if os.geteuid() != 0:
        pytest.skip("needs root to build with --as-root")
    out, cache = tmp_path / "out", tmp_path / "ccache"
    env = {"PATH": f"{KPROV.parent}:/usr/bin:/bin:/usr/sbin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    base = [sys.executable, "-m", "provision.cli", "build", "--as-root", "--tree", str(tree), "--build-dir", str(out)]
    done = subprocess.run([*base, "--no-ccache", "--", "-j2", "tinyconfig", "prepare"], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    conf = tmp_path / "ccache-remote.conf"
    conf.write_text(f"remote_storage = redis://writer:{SECRET}@127.0.0.1:{port}|connect-timeout=100|operation-timeout=1000\n")
    conf.chmod(0o600)
    build = subprocess.Popen([*base, "--ccache", "--ccache-dir", str(cache), "--", "-j2", "kernel/"],
                             env={**env, "CCACHE_CONFIGPATH": str(conf)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    lines = []
    assert build.stdout is not None
    for line in build.stdout:
        lines.append(line)
        if line.startswith("  CC      kernel/") and sum(x.startswith("  CC      kernel/") for x in lines) == 5:
            os.kill(server.pid, signal.SIGSTOP)  # the store hangs: connections open, nothing answers
    rc = build.wait(timeout=600)
    stdout = "".join(lines)
    assert rc == 0, stdout[-3000:] + build.stderr.read()[-2000:]
    record = json.loads((tmp_path / "state" / "kprov" / "builds.jsonl").read_text().splitlines()[-1])
    remote = record["remote_cache"]
    assert remote["dropped_at"] is not None and remote["dropped_at"] > 0
    # each failure is a remote timeout of at most 1 s on one of two jobs: a few seconds in all,
    # not ~1 s for each of the build's ~80 units
    assert 3 <= remote["failures"] <= 10 and record["units"] >= 80
    assert "dropped" in stdout and SECRET not in stdout and SECRET not in json.dumps(record)
    assert conf.read_text().startswith("remote_storage")  # the user's own file is untouched
    assert not list(Path(tempfile.gettempdir()).glob("kprov-build-*/ccache.conf"))  # the private copy is gone


# --------------------------------------------------------------------------- hostile input to build and history


def test_a_j_count_that_is_not_ascii_digits_is_refused_before_anything_runs():
    from provision.cli.build import _jobs_of
    from provision.errors import UserError

    assert _jobs_of(("-j8",)) == 8 and _jobs_of(("-j", "3", "kernel/")) == 3 and _jobs_of(("--jobs=2",)) == 2
    for bad in ("-j²", "-j٣", "--jobs=𝟠", "-j1e3"):
        with pytest.raises(UserError, match="-j takes a whole number"):
            _jobs_of((bad,))


def test_records_of_the_wrong_type_are_skipped_never_trusted(tmp_path):
    path = tmp_path / "builds.jsonl"
    good = _record()
    append(good, path)
    bad = []
    for change in ({"wall_seconds": "abc"}, {"samples": [["a", 1]]}, {"budget_bytes": "1"},
                   {"phases": {"config": {"seconds": 1, "cpu_seconds": 1, "peak_anon_bytes": "x", "peak_swap_bytes": 0}}},
                   {"jobs": True}, {"wall_seconds": float("inf")}):
        data = good.to_dict()
        data.update(change)
        bad.append(json.dumps(data))
    deep = "[" * 100_000 + "]" * 100_000
    with open(path, "a") as f:
        f.write("\n".join(bad + [deep]) + "\n")
    got = load(path)
    assert len(got) == 1 and got[0] == good
    plot(got[0])  # what load returns can be drawn


def test_a_history_that_is_a_fifo_or_a_directory_is_one_line_before_the_build(tmp_path):
    from provision.build.record import check_writable
    from provision.errors import EnvironmentProblem

    fifo = tmp_path / "builds.jsonl"
    os.mkfifo(fifo)
    for call in (lambda: check_writable(fifo), lambda: append(_record(), fifo), lambda: load(fifo)):
        with pytest.raises(EnvironmentProblem, match="not a regular file"):
            call()
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    with pytest.raises(EnvironmentProblem, match="not a regular file"):
        load(folder)


def test_the_plot_is_written_through_a_random_temporary_file(tmp_path):
    from provision.cli.build import _write_new

    target = tmp_path / "p.svg"
    for pid in range(os.getpid() - 2, os.getpid() + 3):  # what a neighbour could plant beforehand
        (tmp_path / f".p.svg.{pid}.tmp").write_text("theirs")
    _write_new(target, "<svg/>")
    assert target.read_text() == "<svg/>"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == sorted(
        f".p.svg.{pid}.tmp" for pid in range(os.getpid() - 2, os.getpid() + 3))  # theirs untouched, none of ours left


def test_the_status_line_escapes_what_a_record_brought():
    from provision.build.run import BuildRequest, _Watch

    request = BuildRequest(argv=["make"], cwd="/", env={}, host="h", user="u", compiler="gcc", arch="x86_64", jobs=2,
                           expected_seconds=60.0, expected_source="the last build, \x1b]0;owned\x07")
    line = _Watch(request, out=None, err=None, tty=False).status_text()
    assert "\x1b" not in line and "\x07" not in line and "\\x1b" in line


def test_root_never_builds_another_users_tree(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    tree = Path(tempfile.mkdtemp(prefix="kprov-tree-", dir="/var/tmp"))
    try:
        marker = tree / "ran"
        (tree / "Makefile").write_text(f"%:\n\tid -u > {marker}\nall:\n\tid -u > {marker}\n")
        for p in (tree, tree / "Makefile"):
            os.chown(p, 65534, 65534)
        done = _kprov([], tmp_path, "build", "--as-root", "--tree", str(tree), "--", "all")
        assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
        assert "is nobody's: build it as nobody" in done.stderr and not marker.exists()
    finally:
        shutil.rmtree(tree, ignore_errors=True)
