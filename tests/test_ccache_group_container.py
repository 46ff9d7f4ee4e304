"""The shared ccache's group for real: ``kprov apply -i --tags ccache`` into a podman container.

Only the ccache area runs (users, group, directory, /etc/ccache.conf; no packages). kprov adds a
user to the cache's group only when asked, never creates one that does not exist, and
``--ccache-private`` leaves no shared directory and no group.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from test_apply_container import KPROV, container, in_ctr, kprov_apply  # noqa: F401  (container: a fixture)

pytestmark = pytest.mark.podman


def _ccache_apply(name: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed (pip install -e .)")
    inv = tmp_path / "inventory.ini"
    inv.write_text(f"ctr ansible_connection=containers.podman.podman ansible_host={name} "
                   "ansible_python_interpreter=/usr/bin/python3\n")
    return kprov_apply(inv, tmp_path / "state", "--tags", "ccache", "--ccache", "--no-zram", *args)


def _members(name: str) -> str:
    return in_ctr(name, "getent group kbuild | cut -d: -f4").stdout.strip()


def test_the_ccache_group_gets_only_the_users_asked_for(container, tmp_path):  # noqa: F811
    assert in_ctr(container, "useradd -m alice && useradd -m bob").returncode == 0

    shared = _ccache_apply(container, tmp_path, "--ccache-group-add", "alice")
    assert shared.returncode == 0, shared.stdout + shared.stderr
    assert "kbuild" in in_ctr(container, "id -nG alice").stdout.split()
    assert "kbuild" not in in_ctr(container, "id -nG bob").stdout.split()
    assert _members(container) == "alice"
    assert in_ctr(container, "stat -c '%U:%G %a' /var/cache/ccache").stdout.strip() == "root:kbuild 2775"
    conf = in_ctr(container, "cat /etc/ccache.conf").stdout
    assert "cache_dir = /var/cache/ccache" in conf and "umask = 002" in conf

    # a user that does not exist is refused there, never created
    ghost = _ccache_apply(container, tmp_path, "--ccache-group-add", "ghost")
    assert ghost.returncode == 1, ghost.stdout + ghost.stderr
    assert in_ctr(container, "getent passwd ghost").returncode != 0
    assert _members(container) == "alice"

    # a run that asks for nobody adds nobody (and takes nobody out)
    again = _ccache_apply(container, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _members(container) == "alice"


def test_a_private_ccache_leaves_no_shared_dir_and_no_group(container, tmp_path):  # noqa: F811
    private = _ccache_apply(container, tmp_path, "--ccache-private")
    assert private.returncode == 0, private.stdout + private.stderr
    assert in_ctr(container, "test -e /var/cache/ccache").returncode != 0
    assert in_ctr(container, "getent group kbuild").returncode != 0
    assert in_ctr(container, "test -e /root/.cache/ccache").returncode != 0  # the role creates no cache dir
    conf = in_ctr(container, "cat /etc/ccache.conf").stdout
    assert "max_size = " in conf
    assert not re.search(r"^(cache_dir|umask)\s*=", conf, re.M), conf
