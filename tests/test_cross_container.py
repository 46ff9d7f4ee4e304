"""A real cross build: ``kprov apply -i INVENTORY --arch arm64`` on a Debian 12 container installs
Debian's GNU cross toolchain for arm64, and the make line of the plan the role applied there
(``kprov env``'s exports in /etc/profile.d) builds arm64 defconfig's ``kernel/`` objects from
Debian's linux-source 6.1, mounted read-only, into an ``O=`` of the container. The objects must be
AArch64 ELF files.

By default a spread of ``kernel/`` units (one from each of its larger subdirectories: make
prepare runs first, as for the whole directory) keeps the test to a few minutes;
``KPROV_TEST_CROSS_WHOLE=1`` builds the whole ``kernel/`` directory (the test took 18 min that way
on 2 CPUs shared with other builds, the apply one of them).

Only the ``packages`` and ``buildenv`` areas run (``--tags``): what is tested is the cross
toolchain in the package list and the make line, not zram or ccache's configuration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import apt_cache_volumes, container_host, podman_env, podman_unready

IMAGE = "localhost/kprov-debian:bookworm-build"
KPROV = Path(sys.executable).parent / "kprov"
TREE = Path(os.environ.get("KPROV_LINUX_SOURCE_CACHE", "/var/tmp/kprov-linux")) / "linux-source-6.1"
CROSS = ("gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu")
WHOLE = os.environ.get("KPROV_TEST_CROSS_WHOLE") == "1"
UNITS = ("kernel/fork.o", "kernel/sched/core.o", "kernel/time/timer.o", "kernel/irq/manage.o",
         "kernel/printk/printk.o", "kernel/locking/mutex.o")

pytestmark = pytest.mark.podman


def podman(*args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                          check=check, timeout=timeout)


def in_ctr(name: str, script: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return podman("exec", name, "bash", "-c", script, check=False, timeout=timeout)


def installed(name: str, package: str) -> bool:
    return in_ctr(name, f"dpkg-query -W -f='${{db:Status-Status}}' {package}").stdout.strip() == "installed"


@pytest.fixture
def container(request):
    reason = podman_unready(IMAGE)
    if reason:
        pytest.skip(reason)
    if not (TREE / "Makefile").is_file() or (TREE / ".config").exists():
        pytest.skip(f"no clean linux-source 6.1 tree at {TREE} (tests/test_kconfig.py unpacks it)")
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed (pip install -e .)")
    name = f"kprov-cross-{uuid.uuid4().hex[:10]}"
    podman("run", "-d", "--name", name, *apt_cache_volumes(), "--volume", f"{TREE}:/src:ro",
           IMAGE, "sleep", "infinity")
    request.addfinalizer(lambda: podman("rm", "-f", "-t", "0", name, check=False))
    return name


def kprov(*args: str, state: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = {**podman_env(), "XDG_STATE_HOME": str(state)}
    return subprocess.run([str(KPROV), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def kprov_apply(inventory: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    """A root ``kprov apply`` (it takes the apply lock: conftest runs this module in the apply group)."""
    return kprov("apply", "-i", str(inventory), *args, state=state)


def test_apply_arch_arm64_installs_the_cross_toolchain_and_its_make_line_builds_kernel(container, tmp_path):
    inv = tmp_path / "inventory.ini"
    inv.write_text(container_host(container))
    state = tmp_path / "state"
    assert not any(installed(container, p) for p in CROSS)

    # the plan kprov makes for the container from its own facts, before anything is installed
    planned = kprov("plan", "-i", str(inv), "--arch", "aarch64", "--json", state=state, timeout=600)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert all(p in planned.stdout for p in CROSS), planned.stdout

    run = kprov_apply(inv, state, "--arch", "aarch64", "--tags", "packages,buildenv")
    assert run.returncode == 0, run.stdout + run.stderr
    assert all(installed(container, p) for p in CROSS), run.stdout

    plan = json.loads(in_ctr(container, "cat /etc/kprov/plan.json").stdout)
    make_vars = plan["config"]["make_vars"]
    assert make_vars["ARCH"] == "arm64" and make_vars["CROSS_COMPILE"] == "aarch64-linux-gnu-"
    assert "ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-" in plan["config"]["make_command"]
    assert set(CROSS) <= set(plan["packages"])
    assert plan["config"]["target"] == "defconfig"
    # costed as arm64 defconfig (docs/calibration.md §17), not as x86's
    assert "arm64-default" in plan["jobs"]["reason"], plan["jobs"]["reason"]

    # the plan's environment and make variables, as a user of the host gets them
    profile = in_ctr(container, "cat /etc/profile.d/kprov-kbuild.sh").stdout
    make_args = [line for line in profile.splitlines() if line.startswith("export KPROV_MAKE_ARGS=")]
    assert make_args and "ARCH=arm64" in make_args[0] and "CROSS_COMPILE=aarch64-linux-gnu-" in make_args[0], profile
    # not as ARCH= itself: kbuild reads it from the environment, and every user's native build would cross-compile
    assert not [line for line in profile.splitlines() if line.startswith(("export ARCH=", "export CROSS_COMPILE="))], profile
    # the plan's O= when it planned one, else a directory of the test's (the source is read-only)
    out_dir = plan["config"]["build_dir"] or "/var/tmp/kbuild-arm64"
    build = in_ctr(
        container,
        f'set -e; . /etc/profile.d/kprov-kbuild.sh; mkdir -p {out_dir}; '
        f'eval "make -s -C /src O={out_dir} $KPROV_MAKE_ARGS defconfig"; '
        f'eval "make -s -C /src O={out_dir} $KPROV_MAKE_ARGS {"kernel/" if WHOLE else " ".join(UNITS)}"',
        timeout=3000,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    config = in_ctr(container, f"grep -E '^CONFIG_(ARM64|X86_64)=' {out_dir}/.config").stdout
    assert config.strip() == "CONFIG_ARM64=y", config

    objects = in_ctr(container, f"cd {out_dir} && find kernel -name '*.o' | sort").stdout.split()
    assert set(UNITS) <= set(objects), objects
    if WHOLE:
        assert len(objects) > 100 and in_ctr(container, f"test -s {out_dir}/kernel/built-in.a").returncode == 0
    for obj in (*UNITS, objects[len(objects) // 2]):
        # the ELF header: \x7fELF, 64-bit (EI_CLASS 2), little-endian (EI_DATA 1), e_machine 183 = EM_AARCH64
        header = [int(b) for b in in_ctr(container, f"od -An -tu1 -N20 {out_dir}/{obj}").stdout.split()]
        assert header[:6] == [127, 69, 76, 70, 2, 1] and header[18] + 256 * header[19] == 183, (obj, header)
    readelf = in_ctr(container, f"aarch64-linux-gnu-readelf -h {out_dir}/kernel/fork.o").stdout
    assert "AArch64" in readelf, readelf
