"""A kernel tree's code is run as the tree's owner, under one deadline, in one process group.

``kprov plan --tree`` (and env, apply, calibrate) runs the tree's make to evaluate Kconfig. A
kernel-shaped tree whose Makefile has a catch-all rule, and whose ``scripts/config`` is a script,
shows who ran them: each writes its uid, effective capabilities, NoNewPrivs, groups and an
environment variable of kprov's to a marker file. As root, a tree of another user runs as that
user; a root tree that others could change is refused with one line, exit 2, nothing run; a
Makefile that sleeps is stopped at ``KPROV_TREE_DEADLINE_S``; kprov stopped or killed leaves no
process of the tree behind; kprov as a normal user evaluates without root. The last test runs
Debian's linux-source through a tree of links owned by another user: the same config comes out.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.errors import UserError
from provision.facts.local import gather
from provision.model.goals import Goals
from provision.planner.config import config_commands, config_request
from provision.tree import kconfig, ownership

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "kprov"
OWNER = "kprov-tree-owner"
OTHER = "kprov-tree-other"
ZERO_CAPS = "0000000000000000"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs kprov as root and as other users")


# --------------------------------------------------------------------------- users, places, trees


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", name],
            check=True, capture_output=True,
        )
        return pwd.getpwnam(name)


@pytest.fixture(scope="module")
def users():
    made = [name for name in (OWNER, OTHER) if not _exists(name)]
    entries = {name: _user(name) for name in (OWNER, OTHER)}
    yield entries
    for name in made:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@dataclass
class Place:
    base: Path  # root's, 0755, in /var/tmp: every user can reach what is below it
    marks: Path  # 1777: the marker files
    cache: Path  # XDG_CACHE_HOME of the root runs
    token: str  # in the command line of every process a sleeping tree starts

    @property
    def marker(self) -> Path:
        return self.marks / "ran"

    def env(self, **extra: str) -> dict[str, str]:
        return {"XDG_CACHE_HOME": str(self.cache), "XDG_STATE_HOME": str(self.base / "state"),
                "KPROV_TEST_SECRET": "root-secret", **extra}

    def ran(self) -> list[list[str]]:
        if not self.marker.exists():
            return []
        return [line.split() for line in self.marker.read_text().splitlines() if line.strip()]


@pytest.fixture
def place():
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="kprov-trust-"))
    base.chmod(0o755)
    marks = base / "marks"
    marks.mkdir()
    marks.chmod(0o1777)
    cache = base / "cache"
    cache.mkdir()
    cache.chmod(0o755)
    token = f"999.{os.getpid()}{time.monotonic_ns() % 10**6:06d}"
    yield Place(base=base, marks=marks, cache=cache, token=token)
    for pid in leftovers(token, str(base)):  # a failed test must not leave its sleepers behind
        with_suppressed(os.kill, pid, signal.SIGKILL)
    shutil.rmtree(base, ignore_errors=True)


def with_suppressed(fn, *args) -> None:
    try:
        fn(*args)
    except OSError:
        pass


PROBE = ("$(id -u) $(grep ^CapEff /proc/self/status | cut -f2) $(grep ^NoNewPrivs /proc/self/status | cut -f2) "
         "$(id -G | tr ' ' ,) [$KPROV_TEST_SECRET]")


def fake_tree(path: Path, marker: Path, sleep: str | None = None, sleep_on: str = "%") -> Path:
    """A kernel-shaped tree: every make target writes a .config to O= (and, with ``sleep``,
    sleeps, once in the background and once in the foreground); ``scripts/config`` is a script.
    Both write PROBE to ``marker`` first."""
    (path / "scripts").mkdir(parents=True)
    (path / "Kconfig").write_text("")
    probe = PROBE.replace("$", "$$")
    config = ("'# Linux/x86 6.1.0 Kernel Configuration' 'CONFIG_CC_VERSION_TEXT=\"gcc (fake) 12\"' "
              "'CONFIG_MODULES=y' 'CONFIG_EXT4_FS=m'")
    said = f"\t@echo \"make {probe}\" >> {marker}\n"
    sleeps = f"\t@sleep {sleep} & sleep {sleep}\n" if sleep else ""
    rules = f"{sleep_on}:\n{said}{sleeps}\n" if sleep and sleep_on != "%" else ""
    rules += f"%:\n{said}{sleeps if sleep_on == '%' else ''}\t@mkdir -p $(O)\n\t@printf '%s\\n' {config} > $(O)/.config\n"
    (path / "Makefile").write_text(f"VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nNAME = Fake\n\nMakefile: ;\n\n{rules}")
    script = path / "scripts" / "config"
    script.write_text(f"#!/bin/sh\necho \"config {PROBE}\" >> {marker}\nexit 0\n")
    script.chmod(0o755)
    return path


def chown_tree(path: Path, entry: pwd.struct_passwd) -> None:
    for p in [path, *path.rglob("*")]:
        os.lchown(p, entry.pw_uid, entry.pw_gid)


# --------------------------------------------------------------------------- running kprov


def _command() -> list[str]:
    return [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "provision.cli"]


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def kprov(*args: str, env: dict | None = None, prefix: tuple[str, ...] = (), timeout: float = 120,
          cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, *_command(), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd or "/",
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, preexec_fn=_default_signals,
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kprov: ") and "Traceback" not in result.stderr
    return lines[0]


def leftovers(*needles: str) -> list[int]:
    """Live processes (not zombies) whose command line holds one of ``needles``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and any(n in cmdline for n in needles):
            found.append(int(entry.name))
    return found


def none_left(*needles: str, within: float = 10.0) -> list[int]:
    end = time.monotonic() + within
    while (left := leftovers(*needles)) and time.monotonic() < end:
        time.sleep(0.1)
    return left


def wait_for_marker(place: Place, proc: subprocess.Popen, within: float = 60.0) -> None:
    end = time.monotonic() + within
    while not place.ran():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the tree's make never started"
        time.sleep(0.05)


# --------------------------------------------------------------------------- as the tree's owner


def _assert_ran_as(rows: list[list[str]], entry: pwd.struct_passwd, kinds: set[str]) -> None:
    assert {row[0] for row in rows} == kinds, rows
    groups = {str(g) for g in os.getgrouplist(entry.pw_name, entry.pw_gid)}
    for kind, uid, caps, nnp, gids, secret in rows:
        assert uid == str(entry.pw_uid) and uid != "0", rows
        assert caps == ZERO_CAPS and nnp == "1", rows  # no capability, no way to gain privileges
        assert set(gids.split(",")) == groups and "0" not in gids.split(","), rows  # root's groups stay behind
        assert secret == "[]", rows  # kprov's environment stays behind


def test_a_tree_of_another_user_is_evaluated_as_that_user(users, place: Place):
    owner = users[OWNER]
    tree = fake_tree(place.base / "linux", place.marker)
    chown_tree(tree, owner)
    result = kprov("plan", "--tree", str(tree), "--debug-info", "dwarf", "--json", env=place.env())
    assert result.returncode == 0, result.stderr
    _assert_ran_as(place.ran(), owner, {"make", "config"})
    assert len(place.ran()) == 3  # defconfig, scripts/config, olddefconfig
    assert f"evaluating Kconfig as {OWNER} (uid {owner.pw_uid}), the tree's owner" in result.stderr
    plan = json.loads(result.stdout)
    scratch = place.cache / "kprov" / "owners" / str(owner.pw_uid) / "kconfig"
    assert f"O={scratch}/" in plan["config"]["reasons"]["kconfig"] and plan["config"]["source"] == "evaluated"
    (directory,) = [p for p in scratch.iterdir() if p.is_dir()]
    info = directory.lstat()
    assert (info.st_uid, info.st_mode & 0o777) == (owner.pw_uid, 0o700)  # the owner's scratch O=
    assert all(p.stat().st_uid == 0 and not p.stat().st_mode & 0o022 for p in (scratch, scratch.parent))


@pytest.mark.parametrize("whose", ["Makefile", "scripts/config", "above"])
def test_a_root_tree_another_user_can_change_runs_as_that_user(users, place: Place, whose: str):
    owner = users[OWNER]
    if whose == "above":  # root's tree in the user's directory: the user can swap it
        home = place.base / "home"
        home.mkdir()
        os.chown(home, owner.pw_uid, owner.pw_gid)
        tree = fake_tree(home / "linux", place.marker)
    else:
        tree = fake_tree(place.base / "linux", place.marker)
        os.lchown(tree / whose, owner.pw_uid, owner.pw_gid)
    result = kprov("plan", "--tree", str(tree), "--debug-info", "dwarf", env=place.env())
    assert result.returncode == 0, result.stderr
    _assert_ran_as(place.ran(), owner, {"make", "config"})


def _world_writable_dir(place: Place, users) -> Path:
    shared = place.base / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    return fake_tree(shared / "linux", place.marker)


def _world_writable_tree(place: Place, users) -> Path:
    tree = fake_tree(place.base / "linux", place.marker)
    tree.chmod(0o777)
    return tree


def _world_writable_makefile(place: Place, users) -> Path:
    tree = fake_tree(place.base / "linux", place.marker)
    (tree / "Makefile").chmod(0o666)
    return tree


def _group_writable_with_another_member(place: Place, users) -> Path:
    shared = place.base / "shared"
    shared.mkdir()
    os.chown(shared, 0, users[OTHER].pw_gid)  # the other user's group can write it
    shared.chmod(0o775)
    return fake_tree(shared / "linux", place.marker)


def _two_owners(place: Place, users) -> Path:
    tree = fake_tree(place.base / "linux", place.marker)
    chown_tree(tree, users[OWNER])
    os.lchown(tree / "scripts" / "config", users[OTHER].pw_uid, users[OTHER].pw_gid)
    return tree


def _owner_tree_in_a_world_writable_dir(place: Place, users) -> Path:
    tree = _world_writable_dir(place, users)
    chown_tree(tree, users[OWNER])
    return tree


def _link_out_to_a_world_writable_dir(place: Place, users) -> Path:
    tree = fake_tree(place.base / "linux", place.marker)
    shared = place.base / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / "extra.mk").write_text("")
    (tree / "extra.mk").symlink_to(shared / "extra.mk")
    return tree


UNSAFE = {
    "root tree in a 0777 directory": (_world_writable_dir, "can be written by users other than root"),
    "root tree 0777 itself": (_world_writable_tree, "can be written by users other than root"),
    "root tree with a 0666 Makefile": (_world_writable_makefile, "Makefile can be written by users other than root"),
    "root tree in a directory another user's group can write": (
        _group_writable_with_another_member, "can be written by users other than root"),
    "a tree of two users": (_two_owners, "kprov runs a tree's code as the one user who owns it"),
    "a user's tree in a 0777 directory": (_owner_tree_in_a_world_writable_dir, f"users other than {OWNER}"),
    "a link out of the tree into a 0777 directory": (_link_out_to_a_world_writable_dir, "shared can be written"),
}
COMMANDS = {
    "plan": ("plan",),
    "env": ("env",),
    "calibrate": ("calibrate", "--minutes", "1"),
    "apply --check": ("apply", "--check"),
}


#: Every case through plan; the other commands share the check, two cases each.
REFUSALS = [(case, "plan") for case in UNSAFE] + [
    (case, command) for command in COMMANDS if command != "plan"
    for case in ("root tree in a 0777 directory", "a tree of two users")
]


@pytest.mark.parametrize(("case", "command"), REFUSALS)
def test_a_tree_others_can_change_is_refused_before_anything_runs(users, place: Place, case: str, command: str):
    make, needle = UNSAFE[case]
    tree = make(place, users)
    result = kprov(*COMMANDS[command], "--tree", str(tree), env=place.env())
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr)
    line = one_line(result)
    assert needle in line and f"--tree {tree}" in line
    assert result.stdout == ""
    assert not place.marker.exists()  # nothing of the tree ran
    assert not (place.cache / "kprov").exists() and not (place.base / "state").exists()


# --------------------------------------------------------------------------- deadline, signals, death


@pytest.mark.parametrize("whose", [OWNER, "root"])
def test_a_makefile_that_sleeps_is_stopped_at_the_deadline(users, place: Place, whose: str):
    tree = fake_tree(place.base / "linux", place.marker, sleep=place.token)
    if whose != "root":
        chown_tree(tree, users[whose])
    start = time.monotonic()
    result = kprov("plan", "--tree", str(tree), env=place.env(KPROV_TREE_DEADLINE_S="2"), timeout=60)
    took = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert one_line(result).startswith("kprov: evaluating Kconfig")
    assert took < 30, took
    assert "took longer than 2 s (KPROV_TREE_DEADLINE_S)" in result.stdout
    assert "planned from the table" in result.stdout
    assert len(place.ran()) == 1  # it started, and was stopped
    assert none_left(place.token, str(tree), within=2) == []


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1e3", "nan", "inf", "86401", " 5", "\u0665"])
def test_a_bad_deadline_is_one_line(users, place: Place, value: str):
    tree = fake_tree(place.base / "linux", place.marker)
    chown_tree(tree, users[OWNER])
    result = kprov("plan", "--tree", str(tree), env=place.env(KPROV_TREE_DEADLINE_S=value))
    assert result.returncode == 2
    assert "KPROV_TREE_DEADLINE_S=" in one_line(result) and result.stdout == ""
    assert not place.marker.exists()


STOPS = {
    signal.SIGINT: 130,
    signal.SIGTERM: 130,
    signal.SIGHUP: 130,
    signal.SIGKILL: -signal.SIGKILL,
}


@pytest.mark.parametrize("command", ["plan", "calibrate"])
@pytest.mark.parametrize("sig", list(STOPS), ids=lambda s: signal.Signals(s).name)
def test_kprov_stopped_mid_evaluation_leaves_nothing_running(users, place: Place, sig: int, command: str):
    # plan sleeps in the Kconfig evaluation; calibrate in its own make prepare, past the evaluation
    tree = fake_tree(place.base / "linux", place.marker, sleep=place.token,
                     sleep_on="%" if command == "plan" else "prepare")
    chown_tree(tree, users[OWNER])
    args = ("plan",) if command == "plan" else ("calibrate", "--minutes", "1")
    proc = subprocess.Popen(
        [*_command(), *args, "--tree", str(tree)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd="/", env={**os.environ, "PYTHONPATH": str(ROOT), **place.env()}, preexec_fn=_default_signals,
    )
    try:
        end = time.monotonic() + 60
        while not leftovers(place.token):  # the sleepers run
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < end, "the tree's sleep never started"
            time.sleep(0.05)
        assert all(row[1] == str(users[OWNER].pw_uid) for row in place.ran())
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == STOPS[sig], err
    if sig != signal.SIGKILL:  # one line says why, after the progress lines
        assert err.splitlines()[-1] == f"kprov: stopped by {signal.Signals(sig).name}: the tree's make was killed"
        assert "Traceback" not in err and out == ""
    assert none_left(place.token, str(tree)) == []  # no make, no sleeper in the background


def test_kprov_as_a_normal_user_evaluates_without_root(place: Place):
    if not shutil.which("setpriv"):
        pytest.fail("needs setpriv (util-linux) to run kprov as nobody")
    tree = fake_tree(place.base / "linux", place.marker)  # root's, readable by everyone
    home = place.base / "nobody"
    home.mkdir()
    os.chown(home, 65534, 65534)
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".state"),
           "KPROV_TEST_SECRET": "its-own"}
    result = kprov("plan", "--tree", str(tree), "--debug-info", "dwarf", "--json", env=env,
                   prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    assert result.returncode == 0, result.stderr
    rows = place.ran()
    assert {row[0] for row in rows} == {"make", "config"} and len(rows) == 3
    assert all(row[1] == "65534" and row[3] == "1" and row[5] == "[its-own]" for row in rows), rows
    plan = json.loads(result.stdout)
    assert plan["config"]["source"] == "evaluated"
    assert f"O={home}/.cache/kprov/kconfig/" in plan["config"]["reasons"]["kconfig"]


def test_kprov_as_a_normal_user_killed_mid_evaluation_leaves_nothing_running(place: Place):
    tree = fake_tree(place.base / "linux", place.marker, sleep=place.token)
    home = place.base / "nobody"
    home.mkdir()
    os.chown(home, 65534, 65534)
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    proc = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *_command(), "plan", "--tree", str(tree)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    try:
        wait_for_marker(place, proc)
        end = time.monotonic() + 30
        while not leftovers(place.token):
            assert time.monotonic() < end
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert none_left(place.token, str(tree)) == []


def test_calibrate_runs_the_tree_as_its_owner(users, place: Place):
    owner = users[OWNER]
    tree = fake_tree(place.base / "linux", place.marker)
    chown_tree(tree, owner)
    result = kprov("calibrate", "--tree", str(tree), "--minutes", "1", env=place.env())
    # the fake tree lists no compile unit: calibrate stops there, after its own make runs
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == "kprov: kprov calibrate: make -n listed no compile unit for this config"
    rows = place.ran()
    assert len(rows) >= 3  # the evaluation's defconfig, then olddefconfig and prepare in the build dir
    _assert_ran_as(rows, owner, {"make"})
    build = place.cache / "kprov" / "owners" / str(owner.pw_uid) / "calibrate"
    dirs = {p.name: p.lstat() for p in build.iterdir()}
    ((name, info),) = [(n, i) for n, i in dirs.items() if not n.endswith(".kprov")]
    assert (info.st_uid, info.st_mode & 0o777) == (owner.pw_uid, 0o700)
    meta = dirs[f"{name}.kprov"]
    assert meta.st_uid == 0 and not meta.st_mode & 0o022  # the wrapper and kprov's notes: root's
    assert (build / f"{name}.kprov" / "ccwrap").stat().st_uid == 0


# --------------------------------------------------------------------------- what kprov reads back


def test_what_the_owner_leaves_in_the_scratch_is_read_without_following_a_link(users, place: Place):
    owner = users[OWNER]
    runner, _real = ownership.tree_runner(str(chown_fake(place, owner)))
    assert runner.drops and runner.uid == owner.pw_uid
    scratch = place.base / "scratch"
    scratch.mkdir()
    secret = place.base / "secret"
    secret.write_text("CONFIG_SECRET=y\n")
    secret.chmod(0o600)
    (scratch / ".config").symlink_to(secret)
    os.lchown(scratch / ".config", owner.pw_uid, owner.pw_gid)
    with pytest.raises(UserError) as err:
        ownership.read_below(scratch, ".config", "probe", owner=owner.pw_uid)
    assert "cannot read it" in err.value.message
    (scratch / ".config").unlink()
    os.link(secret, scratch / ".config")  # root's file, hard-linked in: not the owner's
    with pytest.raises(UserError) as err:
        ownership.read_below(scratch, ".config", "probe", owner=owner.pw_uid)
    assert "belongs to root" in err.value.message
    (scratch / ".config").unlink()
    os.mkfifo(scratch / ".config")
    os.lchown(scratch / ".config", owner.pw_uid, owner.pw_gid)
    with pytest.raises(UserError) as err:  # a FIFO does not block kprov
        ownership.read_below(scratch, ".config", "probe", owner=owner.pw_uid)
    assert "not a regular file" in err.value.message
    # a unit name with a link on its way: kprov removes nothing outside the build directory
    (scratch / "drivers").symlink_to(place.base)
    victim = place.base / "victim.o"
    victim.write_text("x")
    ownership.remove_below(scratch, "drivers/victim.o")
    assert victim.exists()


def chown_fake(place: Place, owner: pwd.struct_passwd) -> Path:
    tree = fake_tree(place.base / "linux", place.marker)
    chown_tree(tree, owner)
    return tree


# --------------------------------------------------------------------------- the real tree


def test_linux_source_run_as_another_user_gives_the_same_config(users, place: Place, monkeypatch):
    from test_kconfig import CACHE, linux_source

    source = linux_source()
    owner = users[OWNER]
    farm = place.base / "linux-links"  # the user's tree: links to the unpacked sources
    farm.mkdir()
    for entry in source.iterdir():
        (farm / entry.name).symlink_to(entry)
    chown_tree(farm, owner)
    monkeypatch.setenv("XDG_CACHE_HOME", str(place.cache))
    goals = Goals(target="defconfig")

    def evaluated(tree: Path, root: Path | None):
        facts = gather(tree=str(tree))
        return kconfig.evaluate(
            facts.tree, config_request(facts, goals), lambda base: config_commands(facts, goals, base), None, root
        )

    as_root = evaluated(source, CACHE / "xdg-cache" / "kprov" / "kconfig")
    as_owner = evaluated(farm, None)
    assert as_owner.config_hash == as_root.config_hash and as_owner.config == as_root.config
    assert (as_owner.arch, as_owner.kernel_version, as_owner.modules) == (as_root.arch, as_root.kernel_version,
                                                                          as_root.modules)
    scratch = place.cache / "kprov" / "owners" / str(owner.pw_uid) / "kconfig"
    (directory,) = [p for p in scratch.iterdir() if p.is_dir()]
    assert directory.stat().st_uid == owner.pw_uid
    assert (directory / "scripts" / "kconfig" / "conf").stat().st_uid == owner.pw_uid  # built as the owner
