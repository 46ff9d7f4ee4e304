"""The shared ccache's group and store for real: ``kprov apply -i --tags ccache`` into a podman
container.

Only the ccache area runs (users, group, directory, /etc/ccache.conf, the store), and for a store
the packages area with the store's packages only (not the build packages). kprov adds a user to the cache's group only when asked, never creates one that does not
exist, and ``--ccache-private`` leaves no shared directory and no group. A store the plan switches
to the other backend, or drops, is stopped and its configuration removed, from kprov's own record.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import container_host
from test_apply_container import KPROV, changes, container, in_ctr, kprov_apply, recap  # noqa: F401  (container: a fixture)

pytestmark = pytest.mark.podman


def _ccache_apply(name: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed (pip install -e .)")
    inv = tmp_path / "inventory.ini"
    inv.write_text(container_host(name))
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



RETIRED_PATHS = ("/etc/redis/kprov-ccache.conf", "/run/kprov-ccache-redis", "/var/lib/kprov/ccache-redis",
                 "/etc/nginx/sites-available/kprov-ccache", "/etc/nginx/sites-enabled/kprov-ccache",
                 "/etc/nginx/kprov-ccache", "/etc/cron.d/kprov-ccache-trim", "/etc/kprov/ccache-store.json")


#: The packages area installs these instead of the whole kernel toolchain: the store's packages
#: come from the plan's package list (tasks/packages.yml), and the build tools are not under test.
STORE_PACKAGES = '["ccache","redis-server","nginx","cron"]'


def _store_apply(name: str, tmp_path: Path, store: bool, *args: str) -> subprocess.CompletedProcess:
    """The container as the inventory's store (group ccache_store), or as a plain host."""
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed (pip install -e .)")
    host = container_host(name, f"kbuild_host_packages='{STORE_PACKAGES}'")
    inv = tmp_path / "inventory.ini"
    inv.write_text(f"[ccache_store]\n{host}" if store else host)
    return kprov_apply(inv, tmp_path / "state", "--tags", "packages,ccache", "--ccache", "--no-zram", *args)


def test_check_on_a_fresh_store_host_changes_nothing(container, tmp_path):  # noqa: F811
    """--check where neither the store's packages nor its users exist yet: the run completes, says
    what it would install, and the container is as the image left it."""
    before = changes(container)
    check = _store_apply(container, tmp_path, True, "--ccache-backend", "redis", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "redis-server" in check.stdout and "would install" in check.stdout, check.stdout
    assert changes(container) == before


def _answers(name: str, address: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=2).close()"
    return in_ctr(name, f'python3 -c "{probe}"').returncode == 0


def _exists(name: str, path: str) -> bool:
    return in_ctr(name, f"test -e {path} || test -L {path}").returncode == 0


def test_a_store_the_plan_switches_or_drops_is_retired(container, tmp_path):  # noqa: F811
    redis = _store_apply(container, tmp_path, True, "--ccache-backend", "redis")
    assert redis.returncode == 0, redis.stdout + redis.stderr
    record = json.loads(in_ctr(container, "cat /etc/kprov/ccache-store.json").stdout)
    assert record["backend"] == "redis"
    address = in_ctr(container, "awk '$1 == \"bind\" {print $2}' /etc/redis/kprov-ccache.conf").stdout.strip()
    assert address and address != "127.0.0.1", address  # the store's own address (its default route's)
    assert _answers(container, address, 6380)

    # redis -> http: kprov's Redis stops and its files go; the Redis package stays
    http = _store_apply(container, tmp_path, True, "--ccache-backend", "http")
    assert http.returncode == 0, http.stdout + http.stderr
    assert not _answers(container, address, 6380) and _answers(container, address, 8380)
    # redis-server names its process by its address; [r] keeps pgrep from finding its own shell
    assert in_ctr(container, "pgrep -f '[r]edis-server.*:6380'").returncode != 0
    for path in RETIRED_PATHS[:3]:
        assert not _exists(container, path), path
    assert in_ctr(container, "dpkg-query -W -f='${db:Status-Status}' redis-server").stdout == "installed"
    record = json.loads(in_ctr(container, "cat /etc/kprov/ccache-store.json").stdout)
    assert record["backend"] == "http"
    assert in_ctr(container, f"touch {record['dir']}/kept-object").returncode == 0

    # out of the store group: the site, its password hashes, the trim entry and the record go;
    # nginx keeps running, the objects stay (the note says where), and so does the local cache
    plain = _store_apply(container, tmp_path, False)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert not _answers(container, address, 8380)
    for path in RETIRED_PATHS:
        assert not _exists(container, path), path
    assert in_ctr(container, "pgrep -x nginx").returncode == 0
    assert _exists(container, f"{record['dir']}/kept-object")
    assert f"objects are left in {record['dir']}" in " ".join(plain.stdout.split())
    assert not _exists(container, "/etc/kprov/ccache-remote.conf")
    assert "cache_dir = /var/cache/ccache" in in_ctr(container, "cat /etc/ccache.conf").stdout

    # nothing left to retire: a second run changes nothing
    again = _store_apply(container, tmp_path, False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again.stdout, "ctr")["changed"] == 0, again.stdout
    assert "objects are left" not in again.stdout
