"""The distcc farm scenario (molecule/fleet): a real distributed compile on podman containers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CONTAINERS_CONF, podman_unready

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/kprov-debian:bookworm-build"  # tests/images/build.sh


@pytest.mark.podman
def test_molecule_fleet_scenario():
    reason = podman_unready(IMAGE)
    if reason:
        pytest.skip(reason)
    bindir = Path(sys.executable).parent
    if not (bindir / "molecule").exists():
        pytest.skip(f"molecule is not installed next to {sys.executable}")
    env = dict(
        os.environ,
        CONTAINERS_CONF=str(CONTAINERS_CONF),
        PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
    )
    start = time.monotonic()
    proc = subprocess.run(
        [str(bindir / "molecule"), "test", "-s", "fleet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    elapsed = time.monotonic() - start
    print(f"molecule test -s fleet: exit {proc.returncode} in {elapsed:.0f} s")
    out = proc.stdout
    assert proc.returncode == 0, out[-12000:]
    # the verify play printed the servers' COMPILE_OK lines for client1's units
    assert "COMPILE_OK" in out
    assert "denied by access list" in out
