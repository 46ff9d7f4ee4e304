"""One build host, two users, one shared ccache: ``kprov apply -i`` into a podman container, then
two unprivileged users build the same defconfig slice of linux-source 6.1 from their own copy of
the tree, each in a login shell (``su - USER``), with only what kprov wrote for every user.

alice keeps her tree at ``~/linux`` and bob at ``~/src/linux``; each builds out of tree in kprov's
default ``O=``, beside the tree (``~/linux-build``, ``~/src/linux-build``): different absolute
paths and different ``O=``, the same path from ``O=`` to the tree. Each copy is an overlay of the
host's unpacked tree (``:O``), so each user has a tree of their own at their own path without
copying 1.2 GB twice.

- The default apply (a shared ``/var/cache/ccache``, no store): bob's build of the slice after
  alice's must hit >= 95% of its compile units in the shared cache.
- A compile-cache store (this host is the inventory's ``ccache_store``, and writes to itself):
  alice's build fills the store; with the local cache emptied, bob's build must get >= 95% of its
  units from the store.

Either way the login shells hold no path of root's and no ``MAKEFLAGS``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest
from conftest import apt_cache_volumes, container_host, podman_unready
from test_apply_container import KPROV, in_ctr, kprov_apply, podman, recap
from test_kconfig import linux_source

IMAGE = "localhost/kprov-debian:bookworm-build"

#: What a kernel slice needs beyond the image (its compiler, make and ccache), and the store's
#: Redis: the packages area installs these instead of the plan's whole build toolchain.
PACKAGES = '["bc","bison","ccache","flex","gcc","libc6-dev","libelf-dev","libssl-dev","make","redis-server"]'

#: The slice both users build: four directories of kernel/ in defconfig (with the prepare step's
#: own units; the whole of kernel/, measured the same way, takes several times as long: 278 of 279
#: local hits, 267 of 271 remote hits, README's "Shared cache").
SLICE = "kernel/time/ kernel/irq/ kernel/locking/ kernel/sched/"

#: Where each user keeps the tree (in their home) and builds it (kprov's default O=, beside it).
TREES = {"alice": "/home/alice/linux", "bob": "/home/bob/src/linux"}

pytestmark = pytest.mark.podman


@pytest.fixture
def host(request, tmp_path):
    """A container with the users alice and bob, each with an own copy of linux-source 6.1."""
    reason = podman_unready(IMAGE)
    if reason:
        pytest.skip(reason)
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed (pip install -e .)")
    tree = linux_source()
    name = f"kprov-multiuser-{uuid.uuid4().hex[:10]}"
    copies = [a for user, path in TREES.items() for a in ("--volume", f"{tree}:{path}:O")]
    podman("run", "-d", "--name", name, *apt_cache_volumes(), *copies, IMAGE, "sleep", "infinity")
    request.addfinalizer(lambda: podman("rm", "-f", "-t", "0", name, check=False))
    made = in_ctr(name, "set -e; for u in alice bob; do useradd -s /bin/bash $u; "
                        "chown $u: /home/$u; done; chown bob: /home/bob/src")
    assert made.returncode == 0, made.stderr
    return name


def _apply(name: str, tmp_path: Path, *args: str, store: bool = False) -> None:
    line = container_host(name, f"kbuild_host_packages='{PACKAGES}'")
    inv = tmp_path / "inventory.ini"
    inv.write_text(f"[ccache_store]\n{line}" if store else line)
    args = ("--tags", "packages,ccache,buildenv", "--ccache", "--no-zram", "--ccache-group-add", "alice",
            "--ccache-group-add", "bob", *args)
    deadline = time.monotonic() + 900
    while True:
        proc = kprov_apply(inv, tmp_path / "state", *args)
        # this host's apply lock: another apply (another test run of this machine) holds it
        if "another kprov apply is running" not in proc.stderr or time.monotonic() > deadline:
            break
        time.sleep(10)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr
    assert recap(proc.stdout, "ctr")["failed"] == 0


def login_env(name: str, user: str) -> dict[str, str]:
    """The environment of ``user``'s login shell."""
    out = in_ctr(name, f"su - {user} -c env").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def build(name: str, user: str, fresh: bool = False) -> None:
    """``user`` builds SLICE of defconfig in a login shell, with the make arguments kprov exports
    for every user (``$KPROV_MAKEFLAGS``: -j; ``$KPROV_MAKE_ARGS``: CC=...)."""
    tree = TREES[user]
    out = f"{tree}-build"
    script = (
        "set -e; "
        + (f"rm -rf {out}; " if fresh else "")
        + f"eval make $KPROV_MAKEFLAGS $KPROV_MAKE_ARGS -s -C {tree} O={out} defconfig; "
        f"eval make $KPROV_MAKEFLAGS $KPROV_MAKE_ARGS -C {tree} O={out} {SLICE}"
    )
    proc = podman("exec", "--user", "root", name, "su", "-", user, "-c", script, check=False, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def stats(name: str) -> dict[str, int]:
    out = in_ctr(name, "ccache --print-stats").stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def figures(s: dict[str, int]) -> dict[str, float | int]:
    hits = s.get("direct_cache_hit", 0) + s.get("preprocessed_cache_hit", 0)
    misses = s.get("cache_miss", 0)
    rhits, rmisses = s.get("remote_storage_hit", 0), s.get("remote_storage_miss", 0)
    return {
        "units": hits + misses, "hits": hits, "hit_rate": round(hits / (hits + misses), 4) if hits + misses else 0.0,
        "remote_hits": rhits, "remote_misses": rmisses,
        "remote_hit_rate": round(rhits / (rhits + rmisses), 4) if rhits + rmisses else 0.0,
    }


def check_login_env(name: str) -> None:
    """What every user's login shell gets from kprov: nothing of root's, no MAKEFLAGS."""
    for user in TREES:
        env = login_env(name, user)
        ours = {k: v for k, v in env.items() if k.startswith(("CCACHE_", "KBUILD_", "KPROV_", "KCFLAGS", "DISTCC_"))}
        assert "MAKEFLAGS" not in env, env
        assert not [v for v in ours.values() if "/root" in v], ours
        assert re.fullmatch(r"-j[0-9]+", ours.get("KPROV_MAKEFLAGS", "")), ours


def test_a_second_user_hits_the_first_users_objects_in_the_shared_cache(host, tmp_path):
    _apply(host, tmp_path)
    conf = in_ctr(host, "cat /etc/ccache.conf").stdout
    assert re.search(r"^hash_dir = false$", conf, re.M) and re.search(r"^base_dir = /home$", conf, re.M), conf
    check_login_env(host)

    build(host, "alice")
    assert in_ctr(host, "ccache -z").returncode == 0
    build(host, "bob")
    got = figures(stats(host))
    print("bob after alice, shared local cache:", json.dumps(got))
    assert got["units"] >= 50, got
    assert got["hit_rate"] >= 0.95, got


def test_a_second_user_hits_the_first_users_objects_in_the_store(host, tmp_path):
    _apply(host, tmp_path, "--ccache-backend", "redis", store=True)
    check_login_env(host)
    for user in TREES:
        assert login_env(host, user).get("CCACHE_CONFIGPATH") == "/etc/kprov/ccache-remote.conf"

    build(host, "alice")  # fills the local cache and the store
    filled = figures(stats(host))
    assert filled["units"] >= 50 and in_ctr(host, "ccache -C -z").returncode == 0, filled
    build(host, "bob")
    got = figures(stats(host))
    print("bob after alice, empty local cache, Redis store:", json.dumps(got))
    assert got["remote_hits"] + got["remote_misses"] >= 50, got
    assert got["remote_hit_rate"] >= 0.95, got
