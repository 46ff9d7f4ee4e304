"""What the test modules share: podman readiness, strict mode for tests/run.sh, xdist groups.

Strict mode (``KPROV_TEST_STRICT=1``, set by tests/run.sh after its preflight): a test that skips
because a tool, package or image is missing *fails* instead, because the preflight has installed
and checked everything the suite uses - a skip there would hide a broken install. Skips that depend
on the hardware or kernel of the machine (listed in ``HOST_DEPENDENT_SKIPS``) stay skips.

Parallel runs (tests/run.sh: ``pytest -n 2 --dist loadscope``): each module runs on one worker,
so its module-scoped containers are made once, and the modules of a ``SERIAL_GROUPS`` group share
something of this host - kprov's apply lock (/run/kprov/apply.lock: a second root apply fails at
once), the host's swap on /dev/zram0, the unpacked kernel tree - so they run as one unit, one test
after another. The slowest units (``SLOWEST_FIRST``) are handed out first, so the two workers
finish together instead of one starting a six-minute scenario at the end.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = ROOT / "tests" / "podman" / "containers.conf"
IMAGES = ("localhost/kprov-debian:bookworm", "localhost/kprov-debian:trixie")
#: The apt caches tests/images/build.sh fills, one directory per Debian suite.
APT_CACHE = Path(os.environ.get("KPROV_APT_CACHE", "/var/cache/kprov-test/apt"))

#: Modules that must not run beside each other, by what they share (module names, without .py).
APPLY_GROUP = "host"
SERIAL_GROUPS = {
    # Root applies take /run/kprov/apply.lock (test_locking holds it on purpose); the zram tests
    # swap on /dev/zram0, which every container's /proc/swaps shows too.
    APPLY_GROUP: ("test_apply_container", "test_crash_consistency", "test_locking", "test_root_safety",
             "test_runner", "test_zram_ownership"),
    "linux-source": ("test_kconfig", "test_calibrate", "test_build", "test_tree_trust", "test_feedback"),
}
#: Work units (group names, else module names) by falling wall time, measured on a 2-core machine.
SLOWEST_FIRST = (APPLY_GROUP, "test_molecule_cache", "test_role", "test_molecule_fleet",
                 "test_molecule_systemd", "test_dpkg_repair", "test_collection", "linux-source")

#: Skip reasons that say something about this machine, not about a missing install.
HOST_DEPENDENT_SKIPS = (
    "this host has no /sys/block/zram0",  # zram is a kernel feature, not a package
    "this host's zram0 is in use",  # the machine's own swap, never touched by the suite
)


#: How the suite's inventories reach its containers: tests/ansible_plugins/connection/podman_pipelined.py,
#: containers.podman.podman with pipelining (one ``podman exec -i`` per module, as a module is one
#: round trip over SSH on a real host). test_collection and test_ansible_facts keep the
#: collection's own plugin, the one an Ansible user of the role would have.
CONNECTION = "podman_pipelined"
CONNECTION_PLUGINS = ROOT / "tests" / "ansible_plugins" / "connection"


def container_host(container: str, *host_vars: str, alias: str = "ctr", connection: str = CONNECTION) -> str:
    """An inventory line for one of the suite's containers, with extra ``key=value`` host_vars."""
    return " ".join((alias, f"ansible_connection={connection}", f"ansible_host={container}",
                     "ansible_python_interpreter=/usr/bin/python3", *host_vars)) + "\n"


def suite_ansible_env() -> dict[str, str]:
    """What the suite adds to the environment of podman and of its Ansible runs: runc and ulimits
    (tests/podman), and its connection plugin."""
    return {"CONTAINERS_CONF": str(CONTAINERS_CONF), "ANSIBLE_CONNECTION_PLUGINS": str(CONNECTION_PLUGINS)}


def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME, state and cache directory and no sudo caller or CCACHE_DIR: whatever kprov
    writes for a user lands here. The current directory is that home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("CCACHE_DIR", raising=False)
    monkeypatch.delenv("SUDO_UID", raising=False)
    monkeypatch.chdir(home)
    return home


def own_v1_memory_cgroup() -> Path | None:
    """This process's cgroup v1 memory cgroup directory (a child of it is one the host lets us
    make), or None without one."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            d = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            return d if (d / "memory.limit_in_bytes").exists() else None
    return None


def no_swap_cgroup_under(own: Path, name: str, limit: int) -> Path:
    """A child memory cgroup ``name`` of ``own`` capped at ``limit`` bytes, without swap (memsw =
    limit, where swap accounting exists). The caller removes it."""
    child = own / name
    child.mkdir()
    (child / "memory.limit_in_bytes").write_text(str(limit))
    memsw = child / "memory.memsw.limit_in_bytes"
    if memsw.exists():
        memsw.write_text(str(limit))
    return child


def podman_env(**extra: str) -> dict[str, str]:
    """The process environment with suite_ansible_env() and extra."""
    return {**os.environ, **suite_ansible_env(), **extra}


#: Colour codes some Molecule versions print even with colour turned off.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def molecule_test(scenario: str, image: str, timeout: float | None = None, **env: str) -> str:
    """``molecule test -s SCENARIO`` from the checkout, with the venv's tools and the suite's
    podman settings: skips when podman, ``image`` or molecule is missing, asserts that it passed,
    and returns its output (stdout and stderr, colour codes removed)."""
    reason = podman_unready(image)
    if reason:
        pytest.skip(reason)
    bindir = Path(sys.executable).parent
    if not (bindir / "molecule").exists():
        pytest.skip(f"molecule is not installed next to {sys.executable}")
    run_env = podman_env(
        PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
        NO_COLOR="1",
        COLUMNS="250",  # wide enough that Molecule does not wrap the lines the tests look for
        **env,
    )
    start = time.monotonic()
    proc = subprocess.run(
        [str(bindir / "molecule"), "test", "-s", scenario], cwd=ROOT, env=run_env, check=False,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )
    print(f"molecule test -s {scenario}: exit {proc.returncode} in {time.monotonic() - start:.0f} s")
    out = ANSI.sub("", proc.stdout)
    assert proc.returncode == 0, out[-12000:]
    return out


def podman_unready(*images: str) -> str | None:
    """Why the podman tests cannot run here (podman or an image missing), or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (tests/run.sh installs it)"
    for image in images or IMAGES[:1]:
        found = subprocess.run(["podman", "image", "exists", image], env=podman_env(), check=False)
        if found.returncode != 0:
            return f"{image} is missing (tests/images/build.sh builds it)"
    return None


def apt_cache_volumes(suite: str = "bookworm") -> list[str]:
    """``podman run`` options that lay the suite's apt cache under a container's apt directories.

    Overlay volumes (``:O``): the container reads the lists and .deb files tests/images/build.sh
    fetched, and writes only to a layer of its own, so apt runs in full there while downloading
    little, and no container sees another's lock. Empty when there is no cache: apt downloads.
    """
    cache = APT_CACHE / suite
    if not (cache / "filled").is_file():
        return []
    return ["--volume", f"{cache}/archives:/var/cache/apt/archives:O",
            "--volume", f"{cache}/lists:/var/lib/apt/lists:O"]


#: What a test module calls when it runs a root ``kprov apply`` (and so takes the apply lock).
APPLY_CALLS = ("kprov_apply(", "runner.apply(", "ApplyLock(")


@functools.cache
def _applies(path: Path) -> bool:
    try:
        text = path.read_text()
    except OSError:
        return False
    return any(call in text for call in APPLY_CALLS)


def work_unit(nodeid: str) -> str:
    """The unit of a parallel run a test belongs to: its module, or the group it shares the host in.

    A module not listed in ``SERIAL_GROUPS`` that runs ``kprov apply`` (``APPLY_CALLS``) joins the
    apply lock's group too.
    """
    file = nodeid.split("::", 1)[0]
    module = file.rpartition("/")[2].removesuffix(".py")
    for group, modules in SERIAL_GROUPS.items():
        if module in modules:
            return group
    if _applies(ROOT / file):
        return APPLY_GROUP
    return module


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with a module per unit, and the modules of a ``SERIAL_GROUPS`` group in one."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return SharedScopeScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):  # not an xdist worker: keep the file order
        return
    # Every worker sorts the same way (a stable sort of the same collection), as xdist requires;
    # with --no-loadscope-reorder the units are handed out in this order.
    rank = {unit: i for i, unit in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))


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
