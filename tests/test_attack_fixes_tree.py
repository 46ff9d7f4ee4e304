"""Attacks from a security review on what kprov as root reads for another user, each now failing safe.

* a build dir's .config that is a link to a root file (/etc/shadow) is not handed to the tree's
  owner as the seed: one line, exit 2, nothing written where the owner can read it;
* a root tree whose Makefile a POSIX ACL lets another user write is refused, not run as root;
* a ./ansible.cfg of another user (naming a vault password script) is refused before Ansible starts;
* a --ccache-dir whose ccache-named entries are symbolic links is not taken for a ccache cache,
  by kprov and by the role's module;
* a /etc/kprov/plan.json that is a FIFO or of the wrong shape is "no plan", with a note, never a hang.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_role_contract import _load_module, _Run

from provision.apply.ansible_env import inventory_envvars
from provision.apply.trust import check_config_trusted
from provision.cli.cache_status import GENERIC_SHARING, _plan_sharing, render_status, status
from provision.errors import UserError
from provision.facts.local import found_dir
from provision.tree import ownership

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "kprov"
USER = "kprov-fix-mallory"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="gives files to another user: runs as root")


@pytest.fixture(scope="module")
def mallory() -> pwd.struct_passwd:
    made = False
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", USER],
                       check=True, capture_output=True)
        entry, made = pwd.getpwnam(USER), True
    yield entry
    if made:
        subprocess.run(["userdel", USER], check=False, capture_output=True)


@pytest.fixture
def place():
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="kprov-fix-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def kprov(place: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "provision.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(place / "cache"),
           "XDG_STATE_HOME": str(place / "state")}
    env.pop("ANSIBLE_CONFIG", None)
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, cwd=cwd or "/", env=env)


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("kprov: ") and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def fake_tree(path: Path, ran: Path, extra: str = "") -> Path:
    """A kernel-shaped tree whose every make target notes the uid it ran as and writes a .config."""
    (path / "scripts").mkdir(parents=True)
    (path / "Kconfig").write_text("")
    (path / "Makefile").write_text(
        "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nMakefile: ;\n%:\n"
        f"\t@echo \"make ran as uid $$(id -u)\" >> {ran}\n{extra}"
        "\t@mkdir -p $(O)\n\t@printf '# Linux/x86 6.1.0 Kernel Configuration\\nCONFIG_MODULES=y\\n' > $(O)/.config\n"
    )
    (path / "scripts" / "config").write_text("#!/bin/sh\nexit 0\n")
    (path / "scripts" / "config").chmod(0o755)
    ran.touch()
    ran.chmod(0o666)
    return path


def give(path: Path, entry: pwd.struct_passwd) -> None:
    for p in [path, *path.rglob("*")]:
        os.lchown(p, entry.pw_uid, entry.pw_gid)


# --------------------------------------------------------------------------- 1. the --build-dir seed


@needs_root
def test_a_build_dir_config_linked_to_a_root_file_is_refused_and_never_copied(mallory, place):
    u = place / "u"
    tree = fake_tree(u / "t", place / "ran.log", f"\t@cp $(O)/.config {u}/leaked 2>/dev/null || true\n")
    (u / "b").mkdir()
    (u / "b" / ".config").symlink_to("/etc/shadow")
    give(u, mallory)
    done = kprov(place, "plan", "--tree", str(tree), "--build-dir", str(u / "b"))
    line = one_line(done)
    assert ".config to start from" in line and "symbolic link" in line
    assert not (u / "leaked").exists()
    assert (place / "ran.log").read_text() == ""  # nothing of the tree ran
    shadow = Path("/etc/shadow").read_bytes()
    for found in (place / "cache").rglob("*"):
        assert not (found.is_file() and not found.is_symlink() and found.read_bytes() == shadow)


@needs_root
def test_a_build_dir_config_of_another_user_is_refused(mallory, place):
    """A regular .config that belongs to neither root nor the user the tree runs as (here the tree
    is root's and runs as root) is not read: one line, exit 2."""
    tree = fake_tree(place / "t", place / "ran.log")
    build = place / "b"
    build.mkdir()
    (build / ".config").write_text("CONFIG_MODULES=y\n")
    os.lchown(build / ".config", mallory.pw_uid, mallory.pw_gid)
    line = one_line(kprov(place, "plan", "--tree", str(tree), "--build-dir", str(build)))
    assert "belongs to uid" in line
    assert (place / "ran.log").read_text() == ""


@needs_root
def test_a_build_dir_config_of_the_trees_owner_is_still_the_seed(mallory, place):
    u = place / "u"
    tree = fake_tree(u / "t", place / "ran.log")
    (u / "b").mkdir()
    (u / "b" / ".config").write_text("# Linux/x86 6.1.0 Kernel Configuration\nCONFIG_MODULES=y\n")
    give(u, mallory)
    done = kprov(place, "plan", "--tree", str(tree), "--build-dir", str(u / "b"))
    assert done.returncode == 0, done.stderr
    assert f"make ran as uid {mallory.pw_uid}" in (place / "ran.log").read_text()


# --------------------------------------------------------------------------- 2. POSIX ACLs


@needs_root
@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (package acl)")
def test_a_root_tree_an_acl_lets_another_user_write_is_refused(mallory, place):
    tree = fake_tree(place / "t", place / "ran.log")
    (tree / "Makefile").chmod(0o644)
    subprocess.run(["setfacl", "-m", f"u:{USER}:rw", str(tree / "Makefile")], check=True)
    line = one_line(kprov(place, "plan", "--tree", str(tree)))
    assert "Makefile can be written by users other than root" in line and "ACL" in line
    assert (place / "ran.log").read_text() == ""


@needs_root
@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (package acl)")
def test_an_acl_on_a_directory_of_the_tree_is_refused_too(mallory, place):
    tree = fake_tree(place / "t", place / "ran.log")
    subprocess.run(["setfacl", "-m", f"u:{USER}:rwx", str(tree / "scripts")], check=True)
    with pytest.raises(ownership.Refused, match="scripts can be written"):
        ownership.tree_runner(str(tree))


@needs_root
@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (package acl)")
def test_an_acl_naming_only_root_or_read_access_is_not_a_writer(mallory, place):
    tree = fake_tree(place / "t", place / "ran.log")
    subprocess.run(["setfacl", "-m", f"u:{USER}:r,u:root:rw", str(tree / "Makefile")], check=True)
    runner, _real = ownership.tree_runner(str(tree))
    assert not runner.drops


# --------------------------------------------------------------------------- 3. ./ansible.cfg


@needs_root
def test_an_ansible_cfg_of_another_user_in_the_working_directory_is_refused(mallory, place):
    (place / "inv").mkdir()
    (place / "inv" / "hosts").write_text("localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
    u = place / "u"
    u.mkdir()
    (u / "ansible.cfg").write_text(f"[defaults]\nvault_password_file = {u}/v.sh\n")
    (u / "v.sh").write_text(f"#!/bin/sh\necho \"ran as uid $(id -u)\" >> {u}/pwned\necho x\n")
    (u / "v.sh").chmod(0o755)
    give(u, mallory)
    line = one_line(kprov(place, "plan", "-i", str(place / "inv" / "hosts"), cwd=u))
    assert "ansible.cfg" in line and "an ansible.cfg is code too" in line
    assert not (u / "pwned").exists()


@needs_root
@pytest.mark.parametrize("how", ["file of another user", "group-writable file", "directory of another user"])
def test_inventory_envvars_refuses_an_untrusted_ansible_cfg(mallory, place, monkeypatch, how):
    d = place / "d"
    d.mkdir()
    cfg = d / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    if how == "file of another user":
        os.lchown(cfg, mallory.pw_uid, mallory.pw_gid)
    elif how == "group-writable file":
        cfg.chmod(0o664)
    else:
        os.lchown(d, mallory.pw_uid, mallory.pw_gid)
    monkeypatch.chdir(d)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    monkeypatch.delenv("SUDO_UID", raising=False)
    with pytest.raises(UserError, match="an ansible.cfg is code too"):
        inventory_envvars()
    monkeypatch.chdir("/")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(cfg))
    with pytest.raises(UserError, match="an ansible.cfg is code too"):
        inventory_envvars()


@needs_root
def test_an_ansible_cfg_of_the_sudo_user_or_root_is_kept(mallory, place, monkeypatch):
    d = place / "d"
    d.mkdir()
    (d / "ansible.cfg").write_text("[defaults]\n")
    monkeypatch.chdir(d)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(place))
    assert inventory_envvars()["ANSIBLE_CONFIG"] == str(d / "ansible.cfg")
    give(d, mallory)
    monkeypatch.setenv("SUDO_UID", str(mallory.pw_uid))
    check_config_trusted(str(d / "ansible.cfg"))  # the user who ran sudo may
    monkeypatch.delenv("SUDO_UID")
    with pytest.raises(UserError):
        check_config_trusted(str(d / "ansible.cfg"))


# --------------------------------------------------------------------------- 4. ccache entries that are links


def _symlinked_ccache(place: Path, mallory: pwd.struct_passwd) -> Path:
    cc = place / "u" / "cc"
    cc.mkdir(parents=True)
    (cc / "0").symlink_to("/etc")
    (cc / "tmp").symlink_to("/root")
    (cc / "ccache.conf").symlink_to("/etc/shadow")
    give(place / "u", mallory)
    return cc


@needs_root
def test_a_ccache_dir_of_symlinked_entries_is_not_a_ccache_cache(mallory, place, monkeypatch):
    cc = _symlinked_ccache(place, mallory)
    assert found_dir(cc).kind == "other"
    line = one_line(kprov(place, "plan", "--ccache-dir", str(cc)))
    assert "not a ccache cache" in line
    line = one_line(kprov(place, "apply", "--check", "--ccache-dir", str(cc)))
    assert "not a ccache cache" in line
    module = _load_module("kbuild_host_paths", monkeypatch, _Run)
    assert "not a ccache cache" in module.group_dir_problem(str(cc), "kbuild")


@needs_root
@pytest.mark.parametrize("entry", ["0", "tmp", "ccache.conf", "stats", "CACHEDIR.TAG"])
def test_one_entry_of_the_wrong_kind_makes_it_other(place, monkeypatch, entry):
    cc = place / "cc"
    cc.mkdir()
    for d in ("0", "f", "tmp"):
        (cc / d).mkdir()
    for f in ("ccache.conf", "stats", "CACHEDIR.TAG"):
        (cc / f).write_text("")
    module = _load_module("kbuild_host_paths", monkeypatch, _Run)
    assert found_dir(cc).kind == "ccache"
    assert module.group_dir_problem(str(cc), "kbuild") is None
    target = cc / entry
    if target.is_dir():
        target.rmdir()
        target.write_text("")  # a file where ccache keeps a directory
    else:
        target.unlink()
        target.mkdir()  # a directory where ccache keeps a file
    assert found_dir(cc).kind == "other"
    assert "not a ccache cache" in module.group_dir_problem(str(cc), "kbuild")


# --------------------------------------------------------------------------- 5. /etc/kprov/plan.json


def test_a_plan_json_that_is_a_fifo_is_no_plan_not_a_hang(tmp_path):
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    code = ("from provision.cli.cache_status import _plan_sharing; import sys; "
            f"print(_plan_sharing({str(fifo)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 0, done.stderr
    assert "not a regular file" in done.stdout and "no plan" in done.stdout


@pytest.mark.parametrize("text", [
    '{"ccache":{"sharing":5}}', '{"ccache":{"sharing":[1,2]}}', '{"ccache":5}', "[1]", '"x"', "null",
    "[" * 100_000 + "]" * 100_000, '{"ccache":{"sharing":["a"]}', "\xff\xfe", "",
])
def test_a_malformed_plan_json_is_no_plan_with_a_note(tmp_path, text):
    plan = tmp_path / "plan.json"
    plan.write_bytes(text.encode("latin-1"))
    lines = _plan_sharing(str(plan))
    assert len(lines) == 1 and "no plan" in lines[0] and lines[0].endswith(GENERIC_SHARING)
    data = status("/nonexistent", plan_path=str(plan))
    assert "no plan" in render_status(data)


def test_a_big_or_missing_plan_json(tmp_path):
    assert _plan_sharing(str(tmp_path / "none.json")) == []
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"ccache": {"sharing": ["x" * (2 << 20)]}}))
    assert "larger than" in _plan_sharing(str(big))[0]
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"ccache": {"sharing": ["a line", "another"]}}))
    assert _plan_sharing(str(good)) == ["a line", "another"]
    (tmp_path / "link.json").symlink_to(good)
    assert _plan_sharing(str(tmp_path / "link.json")) == ["a line", "another"]
