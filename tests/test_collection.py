"""The role as Ansible users consume it: the kprov.kbuild collection and `kprov ansible-path`.

The collection is built with the real ``ansible-galaxy collection build``, installed from the
tarball into a temporary collections path, and its role is run by FQCN in a real playbook against
a podman container, with no roles path pointing into kprov.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import podman_env, podman_unready

import provision
from provision.resources import role_dir
from provision.role.collection import FQCN

BIN = Path(sys.executable).parent
KPROV = BIN / "kprov"
IMAGE = "localhost/kprov-debian:bookworm"


def kprov(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(KPROV), *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("collection")
    proc = kprov("collection", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    built = out / f"kprov-kbuild-{provision.__version__}.tar.gz"
    assert str(built) in proc.stdout.splitlines()[0]
    return built


def test_the_tarball_carries_this_role_and_fqcn_playbooks(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        fleet = tar.extractfile("playbooks/fleet.yml").read().decode()
        spec = yaml.safe_load(tar.extractfile("roles/kbuild_host/meta/argument_specs.yml"))
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("kprov", "kbuild", provision.__version__)
    for part in ("roles/kbuild_host/tasks/main.yml", "roles/kbuild_host/meta/argument_specs.yml",
                 "plugins/filter/kprov.py", "plugins/modules/kbuild_host_probe.py",
                 "plugins/modules/kbuild_host_dpkg.py", "plugins/module_utils/kbuild_host_sysprobe.py"):
        assert part in names, part
    # a collection role gets no embedded plugin directories: they live in plugins/ only
    assert not [n for n in names if n.split("/")[2:3] in (["library"], ["filter_plugins"], ["module_utils"])]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert f"name: {FQCN}" in fleet and "name: kbuild_host\n" not in fleet
    assert spec == yaml.safe_load((role_dir() / "meta" / "argument_specs.yml").read_text())


def test_ansible_path_names_the_directory_of_the_role() -> None:
    proc = kprov("ansible-path")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert (path / "kbuild_host" / "tasks" / "main.yml").is_file()
    assert (path / "kbuild_host" / "meta" / "argument_specs.yml").is_file()


def test_a_bad_output_directory_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = kprov("collection", "--output", str(blocker))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"kprov: --output {blocker}: not a directory"]


# --------------------------------------------------------------------------- what --output may hold

TARBALL = f"kprov-kbuild-{provision.__version__}.tar.gz"


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kprov: "), proc.stderr
    return lines[0]


def state(path: Path) -> tuple:
    """What could change about ``path`` (not following a symlink), and its content when it is a file."""
    info = os.lstat(path)
    content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
    return info.st_mode, info.st_uid, info.st_ino, info.st_mtime_ns, content


def victim(tmp_path: Path) -> Path:
    """A file of root's that only root may read."""
    path = tmp_path / "shadow-like"
    path.write_text("root's secret\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("planted", ["symlink", "other-owner", "directory", "fifo", "dangling-symlink"])
def test_a_planted_tarball_name_is_refused_and_nothing_changes(tmp_path: Path, planted: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / TARBALL
    secret = victim(tmp_path)
    if planted == "symlink":
        target.symlink_to(secret)
    elif planted == "dangling-symlink":
        target.symlink_to(tmp_path / "not-yet")
    elif planted == "other-owner":
        target.write_text("someone else's\n")
        os.chown(target, 65534, 65534)
    elif planted == "directory":
        target.mkdir()
    else:
        os.mkfifo(target)
    before = {p: state(p) for p in (secret, target, out)}
    proc = kprov("collection", "--output", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(target) in one_line(proc)
    assert proc.stdout == ""
    assert {p: state(p) for p in (secret, target, out)} == before
    assert sorted(os.listdir(out)) == [TARBALL]  # no half-built file left beside it
    assert not (tmp_path / "not-yet").exists()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and secret.read_text() == "root's secret\n"


def test_a_tarball_of_ones_own_is_replaced_by_a_rename_never_written_through(tmp_path: Path) -> None:
    """A regular file of the caller's is replaced, as a new file: a hard link to it elsewhere (the
    same inode) keeps its content and mode."""
    out = tmp_path / "out"
    out.mkdir()
    secret = victim(tmp_path)
    os.link(secret, out / TARBALL)
    proc = kprov("collection", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert secret.read_text() == "root's secret\n" and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert (out / TARBALL).stat().st_ino != secret.stat().st_ino
    with tarfile.open(out / TARBALL) as tar:
        assert "MANIFEST.json" in tar.getnames()
    assert sorted(os.listdir(out)) == [TARBALL]


@pytest.mark.parametrize("where", ["dangling-symlink", "under-a-file", "proc-missing", "proc"])
def test_an_output_that_cannot_be_a_directory_is_one_line_and_exit_2(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    if where == "dangling-symlink":
        output = tmp_path / "link"
        output.symlink_to(tmp_path / "nowhere")
    elif where == "under-a-file":
        output = blocker / "sub"
    elif where == "proc-missing":
        output = Path("/proc/kprov-no-such-dir/out")
    else:
        output = Path("/proc")
    before = sorted(os.listdir(tmp_path))
    proc = kprov("collection", "--output", str(output))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert one_line(proc).startswith(f"kprov: --output {output}: ")
    assert proc.stdout == ""
    assert sorted(os.listdir(tmp_path)) == before
    assert not (tmp_path / "nowhere").exists()


def test_an_output_name_with_control_characters_is_printed_escaped(tmp_path: Path) -> None:
    out = tmp_path / "a\x1b[31mred\nline"
    proc = kprov("collection", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / TARBALL).is_file()
    assert "\x1b" not in proc.stdout
    shown = str(out).replace("\x1b", "\\x1b").replace("\n", "\\n")
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0] == f"{shown}/{TARBALL}"
    assert shown in lines[1]

    bad = tmp_path / "b\x1b]0;title\x07\nx"
    bad.write_text("a file")
    proc = kprov("collection", "--output", str(bad))
    assert proc.returncode == 2
    line = one_line(proc)
    assert "\x1b" not in line and "\x07" not in line and "\\x1b]0;title\\x07\\nx" in line


# --------------------------------------------------------------------------- a real run by FQCN


@pytest.fixture
def installed(tarball: Path, tmp_path: Path) -> Path:
    path = tmp_path / "collections"
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(path), str(tarball)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (path / "ansible_collections" / "kprov" / "kbuild" / "roles" / "kbuild_host").is_dir()
    return path


@pytest.fixture
def container():
    reason = podman_unready(IMAGE)
    if reason:
        pytest.skip(reason)
    name = f"kprov-coll-{uuid.uuid4().hex[:10]}"
    subprocess.run(["podman", "run", "-d", "--name", name, IMAGE, "sleep", "infinity"],
                   env=podman_env(), capture_output=True, check=True, timeout=120)
    yield name
    subprocess.run(["podman", "rm", "-f", "-t", "0", name], env=podman_env(), capture_output=True, check=False)


def _play(tmp_path: Path, container: str, collections: Path) -> tuple[list[str], dict[str, str]]:
    inv = tmp_path / "inventory.ini"
    inv.write_text(f"ctr ansible_connection=containers.podman.podman ansible_host={container} "
                   "ansible_python_interpreter=/usr/bin/python3\n")
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{
        "name": "A kernel build host from the collection",
        "hosts": "ctr",
        "gather_facts": True,
        "roles": [{"role": FQCN}],
    }]))
    empty = tmp_path / "no-roles"
    empty.mkdir()
    env = podman_env(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_ROLES_PATH=str(empty),  # the role can only come from the collection
        ANSIBLE_LIBRARY=str(empty),
        ANSIBLE_FILTER_PLUGINS=str(empty),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
    )
    return ["-i", str(inv), str(play), "--check", "--diff"], env


@pytest.mark.podman
def test_the_collection_role_runs_by_fqcn(installed: Path, container: str, tmp_path: Path) -> None:
    args, env = _play(tmp_path, container, installed)
    proc = subprocess.run([str(BIN / "ansible-playbook"), *args], env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    # the role's embedded module, filters and templates ran from the collection
    assert "kprov.kbuild.kbuild_host : Probe" in out or "kbuild_host : Probe" in out, out[-4000:]
    assert "/etc/ccache.conf" in out or "ccache" in out
    recap = [ln for ln in out.splitlines() if ln.startswith("ctr ") and "failed=" in ln]
    assert recap and "failed=0" in recap[-1], out[-2000:]


@pytest.mark.podman
def test_a_controller_without_kprov_stops_at_once_with_one_line(installed: Path, container: str,
                                                                tmp_path: Path) -> None:
    args, env = _play(tmp_path, container, installed)
    blocked = (
        "import sys\n"
        "class NoKprov:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'provision' or name.startswith('provision.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoKprov())\n"
        "from ansible.cli.playbook import main\n"
        f"sys.argv = ['ansible-playbook', *{args!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", blocked], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "kprov is not installed on the Ansible controller: run `pip install kprov` there" in out, out[-3000:]
    recap = [ln for ln in out.splitlines() if ln.startswith("ctr ") and "failed=" in ln]
    assert recap and "failed=1" in recap[-1], out[-2000:]
    # it stopped before any change: nothing of the role's work reached the container
    ls = subprocess.run(["podman", "exec", container, "sh", "-c", "ls /etc/ccache.conf /etc/kprov 2>&1; true"],
                        env=podman_env(), capture_output=True, text=True, check=False)
    assert "No such file" in ls.stdout
