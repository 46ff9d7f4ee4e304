"""The shared compile cache scenario (molecule/cache): a store with both backends, a writer, a
reader and an outsider on podman, building a real slice of linux-source through the store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ROOT, molecule_test
from test_kconfig import linux_source

IMAGE = "localhost/kprov-debian:bookworm-build"
KERNEL_TREE = Path(os.environ.get("KPROV_CACHE_KERNEL_TREE", "/var/tmp/kprov-linux/linux-source-6.1"))


@pytest.mark.podman
def test_molecule_cache_scenario(tmp_path):
    tree = KERNEL_TREE if "KPROV_CACHE_KERNEL_TREE" in os.environ else linux_source()  # unpacks it once
    if not (tree / "Makefile").exists():
        pytest.skip(f"no unpacked kernel tree at {tree}")
    secrets_dir = tmp_path / "secrets"
    out = molecule_test("cache", IMAGE, KPROV_CACHE_SECRETS=str(secrets_dir), KPROV_CACHE_KERNEL_TREE=str(tree))
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
