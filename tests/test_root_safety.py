"""Paths kprov writes as root cannot be turned against the host (symlinks, others' directories).

The check (the role's module_utils, used by the kbuild_host_paths module on every host and by
``kprov apply`` for the ccache directory a user names) runs on real trees in a temp dir; then a
planted ``/var/tmp`` symlink pointing into a temp "etc" is refused by ``kprov apply`` (exit 2) and
by the role itself, and the directory it points at keeps its mode and owner.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from provision.apply.runner import run_playbook
from provision.facts.local import sysprobe

KPROV = Path(sys.executable).parent / "kprov"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own and chown the test paths")
NOBODY = 65534


def unsafe(path: Path | str) -> str | None:
    return sysprobe().unsafe_path(str(path))


def test_a_plain_new_path_under_roots_directories_is_safe(tmp_path):
    tmp_path.chmod(0o755)
    assert unsafe(tmp_path / "cache" / "ccache") is None
    (tmp_path / "cache").mkdir()
    assert unsafe(tmp_path / "cache") is None


def test_the_path_itself_being_a_symlink_is_refused(tmp_path):
    tmp_path.chmod(0o755)
    (tmp_path / "etc").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "etc")
    assert "is a symlink" in unsafe(tmp_path / "link")
    (tmp_path / "file-link").symlink_to("/etc/passwd")
    assert "is a symlink" in unsafe(tmp_path / "file-link")


@needs_root
def test_a_component_symlink_owned_by_someone_else_is_refused_but_roots_is_followed(tmp_path):
    tmp_path.chmod(0o755)
    (tmp_path / "real").mkdir()
    (tmp_path / "roots").symlink_to(tmp_path / "real")
    assert unsafe(tmp_path / "roots" / "ccache") is None
    (tmp_path / "theirs").symlink_to(tmp_path / "real")
    os.lchown(tmp_path / "theirs", NOBODY, NOBODY)
    assert f"{tmp_path}/theirs is a symlink owned by uid {NOBODY}" in unsafe(tmp_path / "theirs" / "ccache")
    # root's link into an open directory is judged by where it leads
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    (tmp_path / "to-open").symlink_to(tmp_path / "open")
    assert "writable by everyone without the sticky bit" in unsafe(tmp_path / "to-open" / "ccache")


def test_a_parent_anyone_may_write_needs_the_sticky_bit(tmp_path):
    tmp_path.chmod(0o755)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert f"{shared} is writable by everyone without the sticky bit" in unsafe(shared / "ccache")
    shared.chmod(0o1777)  # like /tmp and /var/tmp
    assert unsafe(shared / "ccache") is None


@pytest.fixture
def planted(tmp_path):
    """/var/tmp/kprov-link-X -> a temp "etc" directory owned by root, mode 0755."""
    etc = tmp_path / "etc"
    etc.mkdir()
    etc.chmod(0o755)
    link = Path("/var/tmp") / f"kprov-link-{uuid.uuid4().hex[:8]}"
    link.symlink_to(etc)
    yield link, etc
    link.unlink()


@needs_root
def test_kprov_apply_refuses_a_symlinked_ccache_dir_and_changes_nothing(planted, tmp_path):
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed")
    link, etc = planted
    before = etc.stat()
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.run([str(KPROV), "apply", "--ccache", "--ccache-dir", str(link), "--tags", "ccache"],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        f"kprov: --ccache-dir: refusing to write as root: {link} is a symlink: kprov writes the path "
        "itself, never through a link"
    )
    after = etc.stat()
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == (
        stat.S_IMODE(before.st_mode), before.st_uid, before.st_gid)
    assert not (tmp_path / "state" / "kprov" / "runs").exists()


@needs_root
def test_the_role_itself_refuses_a_symlinked_ccache_dir(planted):
    from provision.facts.catalog import load_catalog
    from provision.facts.local import gather
    from provision.model.goals import Goals
    from provision.planner import plan

    link, etc = planted
    role_vars = plan(gather(), Goals(ccache=True), load_catalog()).to_role_vars()
    role_vars["kbuild_host_ccache_dir"] = str(link)  # what a fleet's host_vars could say
    out = io.StringIO()
    outcome = run_playbook("site.yml", inventory=None, extravars=role_vars, check=True, out=out,
                                  tags=["kbuild_host_ccache"])
    assert not outcome.result.ok
    assert f"refusing to write as root: {link} is a symlink" in out.getvalue()
    assert stat.S_IMODE(etc.stat().st_mode) == 0o755


@needs_root
def test_a_record_is_read_only_when_it_is_roots_regular_json_object(tmp_path):
    """kbuild_host_paths reads kprov's records (the store record) once, as data: a symlink, a file
    someone else owns, a huge file or anything but a JSON object reads as no record."""
    read = sysprobe().read_record
    good = tmp_path / "ccache-store.json"
    good.write_text('{"backend": "redis", "dir": "/var/lib/kprov-ccache-redis"}\n')
    assert read(str(good)) == {"backend": "redis", "dir": "/var/lib/kprov-ccache-redis"}
    assert read(str(tmp_path / "missing.json")) is None
    link = tmp_path / "link.json"
    link.symlink_to(good)
    assert read(str(link)) is None
    theirs = tmp_path / "theirs.json"
    theirs.write_text('{"backend": "http"}')
    os.chown(theirs, NOBODY, NOBODY)
    assert read(str(theirs)) is None
    for name, text in (("list.json", "[1, 2]"), ("broken.json", "{"), ("big.json", '{"a": "' + "x" * 70000 + '"}')):
        (tmp_path / name).write_text(text)
        assert read(str(tmp_path / name)) is None, name


@needs_root
def test_a_kprov_path_is_settled_only_when_roots_with_its_mode(tmp_path):
    """What lets a re-run skip a task: the path is root's, not a symlink, with the role's mode;
    a file then reads as its sha256, so the role can also tell whether its content is current."""
    settled = sysprobe().settled
    tmp_path.chmod(0o755)
    assert settled(str(tmp_path), "0755") == "dir"
    assert settled(str(tmp_path), "0700") is None
    record = tmp_path / "zram-config.state"
    record.write_text("mode=service\n")
    record.chmod(0o644)
    assert settled(str(record), "0644") == hashlib.sha256(b"mode=service\n").hexdigest()
    record.chmod(0o664)
    assert settled(str(record), "0644") is None
    record.chmod(0o644)
    os.chown(record, 0, NOBODY)
    assert settled(str(record), "0644") is None
    os.chown(record, 0, 0)
    link = tmp_path / "link.state"
    link.symlink_to(record)
    assert settled(str(link), "0777") is None and settled(str(link), "0644") is None
    assert settled(str(tmp_path / "missing"), "0644") is None
