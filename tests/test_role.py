"""The kbuild_host role: ansible-lint's production profile and the Molecule default scenario.

Molecule converges real Debian containers (bookworm, trixie), re-runs for idempotence, runs the
role in check mode and verifies distcc, ccache, zram config and /etc/hosts inside them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CONTAINERS_CONF, IMAGES, podman_unready

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env["NO_COLOR"] = "1"
    # As `kprov` runs playbooks/gather.yml: the role's probe module is found through these.
    role = ROOT / "playbooks" / "roles" / "kbuild_host"
    env["ANSIBLE_LIBRARY"] = str(role / "library")
    env["ANSIBLE_MODULE_UTILS"] = str(role / "module_utils")
    return env


def _run(argv: list[str], timeout: int) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=build_env(), capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - start
    print(f"{' '.join(argv)}: exit {proc.returncode} in {elapsed:.1f}s")
    return proc, elapsed


def test_ansible_lint_production_profile() -> None:
    if not (VENV_BIN / "ansible-lint").exists() and shutil.which("ansible-lint") is None:
        pytest.skip("ansible-lint is not installed")
    proc, _ = _run(["ansible-lint", "--profile", "production", "playbooks/"], timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


@pytest.mark.podman
def test_molecule_default_scenario() -> None:
    reason = podman_unready(*IMAGES)
    if reason:
        pytest.skip(reason)
    proc, elapsed = _run(["molecule", "test", "-s", "default"], timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    # Molecule reports each action of the sequence; idempotence and verify must have run and passed.
    for action in ("converge", "idempotence", "check", "verify"):
        assert f"{action}: Executed: Successful" in out, f"{action} did not pass:\n{out[-4000:]}"
    assert "Idempotence completed successfully" in out or "idempotence: Executed: Successful" in out
    print(f"molecule test -s default: {elapsed:.1f}s")
