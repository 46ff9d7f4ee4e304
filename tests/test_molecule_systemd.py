"""The systemd scenario (molecule/systemd): the role on a container that boots systemd as PID 1.

The role takes its systemd paths there: zram-tools' zramswap.service enabled and configured (its
activation skipped with a note: a container has no /dev/zram0), distccd run as a systemd unit
through the sysv generator, and a second converge that changes nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CONTAINERS_CONF, podman_unready

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/kprov-debian:bookworm-systemd"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.podman
def test_molecule_systemd_scenario() -> None:
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
        NO_COLOR="1",
        # Wide enough that Molecule does not wrap the lines asserted on below.
        COLUMNS="250",
    )
    start = time.monotonic()
    proc = subprocess.run(
        [str(bindir / "molecule"), "test", "-s", "systemd"],
        check=False,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1800,
    )
    print(f"molecule test -s systemd: exit {proc.returncode} in {time.monotonic() - start:.0f} s")
    out = ANSI.sub("", proc.stdout)
    assert proc.returncode == 0, out[-12000:]
    for action in ("prepare", "converge", "idempotence", "verify"):
        assert f"{action}: Executed: Successful" in out, f"{action} did not pass:\n{out[-6000:]}"
    # The role's own note, printed by converge: it configured zram but could not activate it here.
    assert "kbuild_host: zram activation skipped: no /dev/zram0" in out
