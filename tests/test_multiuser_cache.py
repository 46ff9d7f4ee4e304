"""One build host, many users and trees: what every user's login shell gets from kprov
(/etc/profile.d/kprov-kbuild.sh, ``Plan.host_env``), what belongs to one tree (``kprov env
--tree``, ``kprov build``), which paths share hits, and ``kprov cache status``'s word on the
current directory's tree, with the real ccache of this host.

The podman test with two users building for real is tests/test_multiuser_cache_container.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import private_home

from provision import render
from provision.cli.app import Kprov
from provision.cli.cache_status import render_status, status
from provision.errors import UserError
from provision.facts.catalog import load_catalog
from provision.model.facts import HostFacts, TreeFacts
from provision.model.goals import CacheRemoteGoal, Goals
from provision.planner import plan

FIXTURES = Path(__file__).parent / "fixtures"
#: What belongs to one tree or one build, never to every user's shell.
PER_TREE = ("MAKEFLAGS", "KBUILD_OUTPUT", "CCACHE_BASEDIR")


def facts(name: str, tree: str | None = None) -> HostFacts:
    f = HostFacts.from_dict(json.loads((FIXTURES / f"{name}.json").read_text()))
    return dataclasses.replace(f, tree=TreeFacts(path=tree, kernel_version="6.1.0")) if tree else f


REMOTE = CacheRemoteGoal(url="redis://10.0.0.5:6380", user="ci", secret_file="/root/ci.secret", write=True)


@pytest.mark.parametrize("goals", [Goals(ccache_dir="/var/cache/ccache"),
                                   Goals(ccache_dir="/var/cache/ccache", ccache_remote=REMOTE)],
                         ids=["shared", "store"])
def test_root_planning_its_own_tree_gives_every_user_nothing_of_roots(goals):
    """The issue's host: root applies with its tree under /root; a second user sources profile.d."""
    p = plan(facts("debian12-2c-24g", "/root/src/linux"), goals, load_catalog())
    shell = p.to_role_vars()["kbuild_host_buildenv"]
    assert shell == p.host_env
    assert not [k for k, v in shell.items() if "/root" in v], shell
    assert not set(PER_TREE) & set(shell), shell
    assert shell["KPROV_MAKEFLAGS"] == p.env["MAKEFLAGS"] == f"-j{p.jobs.value}"
    assert shell["KCFLAGS"] == "-fdebug-prefix-map=/home/="
    # ccache's own configuration is every user's: the parent of the users' homes, never root's
    rv = p.to_role_vars()
    assert rv["kbuild_host_ccache_base_dir"] == "/home" and rv["kbuild_host_ccache_hash_dir"] is False
    assert "locale" in rv["kbuild_host_ccache_sloppiness"]
    # root's own `kprov env` (and kprov build) still carries root's tree
    assert p.env["CCACHE_BASEDIR"] == "/root/src" and p.env["KCFLAGS"] == "-fdebug-prefix-map=/root/src/="
    if goals.ccache_remote is not None:
        assert shell["CCACHE_CONFIGPATH"] == p.env["CCACHE_CONFIGPATH"] == "/etc/kprov/ccache-remote.conf"


def test_the_plan_says_which_trees_share_hits():
    under = plan(facts("debian12-2c-24g", "/home/alice/linux"), Goals(), load_catalog()).ccache.sharing
    assert any(line.startswith("trees under /home share hits") and "kprov env --tree" in line for line in under)
    assert "this plan's tree /home/alice/linux is under /home" in under
    elsewhere = plan(facts("debian12-2c-24g", "/srv/k/linux"), Goals(), load_catalog())
    assert any("/srv/k/linux is not under /home" in line and "CCACHE_BASEDIR=/srv/k" in line
               for line in elsewhere.ccache.sharing), elsewhere.ccache.sharing
    text = render.render_env(elsewhere)
    assert "export CCACHE_BASEDIR=/srv/k\n" in text and "export KCFLAGS=-fdebug-prefix-map=/srv/k/=\n" in text
    report = render.render_report(elsewhere)
    assert "every user's login shell (/etc/profile.d/kprov-kbuild.sh" in report
    assert "this tree and this build only" in report and "KCFLAGS" in report.split("this tree and this build only")[1]


def test_a_private_cache_shares_nothing_and_exports_no_base():
    p = plan(facts("debian12-2c-24g", "/home/alice/linux"), Goals(ccache_private=True), load_catalog())
    assert p.ccache.hash_dir and p.ccache.base_dir is None and p.ccache.sharing == ()
    assert "CCACHE_BASEDIR" not in p.env and "KCFLAGS" not in p.env and "KCFLAGS" not in p.host_env


def test_a_source_root_names_the_host_wide_base_dir():
    p = plan(facts("debian12-2c-24g", "/srv/src/linux"), Goals(source_root="/srv/src"), load_catalog())
    assert p.ccache.base_dir == "/srv/src" and p.host_env["KCFLAGS"] == "-fdebug-prefix-map=/srv/src/="
    assert "as asked (--source-root)" in p.ccache.reasons["sharing"]
    assert "this plan's tree /srv/src/linux is under /srv/src" in p.ccache.sharing
    # an inventory's kbuild_host_goals goes through the same rule
    with pytest.raises(UserError, match="compiler's own headers"):
        plan(facts("debian12-2c-24g"), Goals.from_dict({"source_root": "/usr"}), load_catalog())


@pytest.mark.parametrize("bad", ["/", "/usr", "home", "/home/a b"])
def test_a_bad_source_root_is_one_line_and_exit_2(capsys, bad):
    _, rc = Kprov.run(["kprov", "plan", "--facts", str(FIXTURES / "laptop-8c-16g.json"), "--source-root", bad],
                      exit=False)
    out, err = capsys.readouterr()
    assert rc == 2 and out == "", out
    assert err.startswith("kprov: --source-root ") and len(err.strip().splitlines()) == 1, err


# --------------------------------------------------------------------------- kprov cache status


def _kernel_tree(root: Path) -> Path:
    for name in ("Makefile", "Kconfig", "Kbuild"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("# a kernel tree's top files\n")
    (root / "kernel").mkdir()
    return root


@pytest.fixture
def ccache_here(tmp_path, monkeypatch):
    if shutil.which("ccache") is None:
        if os.environ.get("KPROV_TEST_STRICT"):
            pytest.fail("ccache is not installed (tests/system-packages.txt)")
        pytest.skip("ccache is not installed")
    home = private_home(tmp_path, monkeypatch)
    monkeypatch.setenv("CCACHE_DIR", str(home / "cache"))
    monkeypatch.delenv("CCACHE_BASEDIR", raising=False)
    return home


def _status(cwd: Path, tmp_path: Path) -> dict:
    return status(config_path=str(tmp_path / "no-remote.conf"), plan_path=str(tmp_path / "no-plan.json"), cwd=str(cwd))


def test_cache_status_says_whether_the_current_tree_is_covered(ccache_here, tmp_path, monkeypatch):
    tree = _kernel_tree(tmp_path / "src" / "linux")
    monkeypatch.setenv("CCACHE_BASEDIR", str(tmp_path / "src"))  # what ccache reads here, as a build would
    covered = _status(tree / "kernel", tmp_path)
    assert covered["tree"] == {"path": str(tree), "kernel_tree": True, "base_dir": str(tmp_path / "src"),
                               "hash_dir": True, "covered": True}
    line = render_status(covered).splitlines()[-1]
    assert line.startswith(f"this tree: {tree} is under base_dir {tmp_path / 'src'}: it shares hits"), line

    # an O= directory names its tree through its `source` link
    out = tmp_path / "elsewhere" / "linux-build"
    out.mkdir(parents=True)
    (out / "Makefile").write_text("# kbuild's O= Makefile\n")
    (out / "source").symlink_to(tree)
    monkeypatch.setenv("CCACHE_BASEDIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CCACHE_NOHASHDIR", "true")
    outside = _status(out, tmp_path)
    assert outside["tree"]["path"] == str(tree) and not outside["tree"]["covered"]
    assert outside["tree"]["hash_dir"] is False
    line = render_status(outside).splitlines()[-1]
    assert f"is not under base_dir {tmp_path / 'elsewhere'}: its builds share no hits" in line
    assert f"kprov env --tree {tree}" in line and "hash_dir" not in line


def test_cache_status_without_a_base_dir_says_so(ccache_here, tmp_path):
    data = _status(tmp_path, tmp_path)
    assert data["tree"]["base_dir"] is None and not data["tree"]["covered"] and not data["tree"]["kernel_tree"]
    line = render_status(data).splitlines()[-1]
    assert "ccache has no base_dir here" in line and "kprov apply sets one" in line


def test_kprov_cache_status_json_has_the_tree(ccache_here, tmp_path, monkeypatch):
    tree = _kernel_tree(tmp_path / "k" / "linux")
    monkeypatch.chdir(tree)
    env = {**os.environ, "CCACHE_BASEDIR": str(tmp_path / "k")}
    kprov = Path(os.sys.executable).parent / "kprov"
    if not kprov.exists():
        pytest.skip(f"{kprov} is not installed (pip install -e .)")
    done = subprocess.run([str(kprov), "cache", "status", "--json"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tree"]["covered"] is True


def test_kprov_build_sets_the_base_dir_of_the_tree_it_builds(tmp_path, monkeypatch):
    """kprov build in a tree the plan was not told about (the current directory): make gets that
    tree's CCACHE_BASEDIR and debug map, not the host-wide ones, and no -j of the login shell's."""
    private_home(tmp_path, monkeypatch)
    tree = tmp_path / "srcs" / "linux"
    tree.mkdir(parents=True)
    seen = tmp_path / "env.out"
    (tree / "Makefile").write_text(
        "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n"
        f'all defconfig %:\n\t@env | grep -E "^(CCACHE_BASEDIR|KCFLAGS|KPROV_MAKEFLAGS)=" > {seen}; true\n'
    )
    (tree / "Kconfig").write_text("")
    (tree / "Kbuild").write_text("")
    (tree / "scripts").mkdir()  # kprov build plans the tree it is in: it must look like a kernel tree
    monkeypatch.chdir(tree)
    monkeypatch.setenv("CCACHE_BASEDIR", "/home")  # what a login shell could hold: the build replaces it
    kprov = Path(os.sys.executable).parent / "kprov"
    if not kprov.exists():
        pytest.skip(f"{kprov} is not installed (pip install -e .)")
    args = [str(kprov), "build", "--ccache", "--build-dir", str(tmp_path / "out")]
    if os.geteuid() == 0:
        args.insert(2, "--as-root")  # the tree is root's own: a build as root outside a container must ask
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    got = dict(line.split("=", 1) for line in seen.read_text().splitlines())
    base = str(tree.parent.resolve())
    assert got == {"CCACHE_BASEDIR": base, "KCFLAGS": f"-fdebug-prefix-map={base}/="}, got
