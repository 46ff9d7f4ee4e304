"""The shared compile cache scenario (molecule/cache): a store with both backends, a writer, a
reader and an outsider on podman, building a real slice of linux-source through the store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CONTAINERS_CONF, podman_unready
from test_kconfig import linux_source

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/kprov-debian:bookworm"
KERNEL_TREE = Path(os.environ.get("KPROV_CACHE_KERNEL_TREE", "/var/tmp/kprov-linux/linux-source-6.1"))


@pytest.mark.podman
def test_molecule_cache_scenario(tmp_path):
    reason = podman_unready(IMAGE)
    if reason:
        pytest.skip(reason)
    bindir = Path(sys.executable).parent
    if not (bindir / "molecule").exists():
        pytest.skip(f"molecule is not installed next to {sys.executable}")
    tree = KERNEL_TREE if "KPROV_CACHE_KERNEL_TREE" in os.environ else linux_source()  # unpacks it once
    if not (tree / "Makefile").exists():
        pytest.skip(f"no unpacked kernel tree at {tree}")
    secrets_dir = tmp_path / "secrets"
    env = dict(
        os.environ,
        CONTAINERS_CONF=str(CONTAINERS_CONF),
        PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
        KPROV_CACHE_SECRETS=str(secrets_dir),
        KPROV_CACHE_KERNEL_TREE=str(tree),
    )
    start = time.monotonic()
    proc = subprocess.run(
        [str(bindir / "molecule"), "test", "-s", "cache"],
        cwd=ROOT,
        env=env,
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    elapsed = time.monotonic() - start
    print(f"molecule test -s cache: exit {proc.returncode} in {elapsed:.0f} s")
    out = proc.stdout
    assert proc.returncode == 0, out[-12000:]
    # verify printed the builds' figures and idempotence passed
    assert "remote_hit_rate" in out
    assert "Idempotence completed successfully" in out or "idempotence: Executed: Successful" in out
    # No password in anything Ansible printed (converge with --diff, idempotence, verify) or left
    # in the scenario's directories.
    secrets = {p.name: p.read_text().strip() for p in sorted(secrets_dir.iterdir())}
    assert set(secrets) == {"store", "writer", "reader"}
    for name, secret in secrets.items():
        assert len(secret) >= 40, name
        assert secret not in out, f"the {name} password appears in molecule's output"
    leftovers = [ROOT / "molecule" / "cache", Path.home() / ".cache" / "molecule"]
    for base in leftovers:
        for path in base.rglob("*") if base.exists() else ():
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                for name, secret in secrets.items():
                    assert secret.encode() not in data, f"the {name} password is in {path}"
