"""What the test modules share: podman readiness, and strict mode for tests/run.sh.

Strict mode (``KPROV_TEST_STRICT=1``, set by tests/run.sh after its preflight): a test that skips
because a tool, package or image is missing *fails* instead, because the preflight has installed
and checked everything the suite uses - a skip there would hide a broken install. Skips that depend
on the hardware or kernel of the machine (listed in ``HOST_DEPENDENT_SKIPS``) stay skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = ROOT / "tests" / "podman" / "containers.conf"
IMAGES = ("localhost/kprov-debian:bookworm", "localhost/kprov-debian:trixie")

#: Skip reasons that say something about this machine, not about a missing install.
HOST_DEPENDENT_SKIPS = (
    "this host has no /sys/block/zram0",  # zram is a kernel feature, not a package
    "this host's zram0 is in use",  # the machine's own swap, never touched by the suite
)


def podman_env(**extra: str) -> dict[str, str]:
    """The environment podman runs in for the suite (runc and ulimits from tests/podman)."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF), **extra}


def podman_unready(*images: str) -> str | None:
    """Why the podman tests cannot run here (podman or an image missing), or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (tests/run.sh installs it)"
    for image in images or IMAGES[:1]:
        found = subprocess.run(["podman", "image", "exists", image], env=podman_env(), check=False)
        if found.returncode != 0:
            return f"{image} is missing (tests/images/build.sh builds it)"
    return None


def strict() -> bool:
    return os.environ.get("KPROV_TEST_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (strict() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(allowed in reason for allowed in HOST_DEPENDENT_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under KPROV_TEST_STRICT=1 (tests/run.sh installs what the suite needs): {reason}"
