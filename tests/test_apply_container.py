"""``kprov apply -i`` for real: the console script drives the role into a podman container.

The container (localhost/kprov-debian:bookworm, built by tests/images/build.sh) is reached through
the ``containers.podman.podman`` connection of the ``ansible`` package, so this is the CLI path a
user takes for a fleet host: goals from the command line, the role planning the host from its own
facts. ``--check`` on a fresh container (verified inside it: nothing changed); a real apply
(files and packages there) followed by a re-run that must report changed=0; an apply whose
distccd finds its port taken by another listener fails with one line naming the port.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import apt_cache_volumes, container_host, podman_env, podman_unready

from provision.calibration import DISTCC_PORT

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/kprov-debian:bookworm"
KPROV = Path(sys.executable).parent / "kprov"
#: Paths Ansible itself writes on a managed host (its remote tmp); not changes made by the role.
ANSIBLE_SCRATCH = ("/root/.ansible", "/tmp", "/var/tmp")

pytestmark = pytest.mark.podman


def podman(*args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                          check=check, timeout=timeout)


@pytest.fixture
def container(request):
    reason = podman_unready(IMAGE)
    if reason:
        pytest.skip(reason)
    name = f"kprov-apply-{uuid.uuid4().hex[:10]}"
    podman("run", "-d", "--name", name, *apt_cache_volumes(), IMAGE, "sleep", "infinity")
    request.addfinalizer(lambda: podman("rm", "-f", "-t", "0", name, check=False))
    return name


def in_ctr(name: str, script: str) -> subprocess.CompletedProcess:
    return podman("exec", name, "sh", "-c", script, check=False)


def changes(name: str) -> set[str]:
    """What differs from the image (podman diff), minus Ansible's own scratch space."""
    out = [ln for ln in podman("diff", name).stdout.split("\n") if ln.strip()]
    kept = {ln for ln in out if not any(ln[2:].startswith(p) for p in ANSIBLE_SCRATCH)}
    # "C /root" only says that something was added below it: keep it when that something is not
    # Ansible's scratch space (for example a ~/.distcc a version probe created)
    added = [ln[2:] for ln in out if ln[:2] in ("A ", "C ")]
    return {
        ln for ln in kept
        if not (ln.startswith("C ") and any(p.startswith(ln[2:].rstrip("/") + "/") for p in ANSIBLE_SCRATCH)
                and all(a == ln[2:] or any(a.startswith(p) for p in ANSIBLE_SCRATCH)
                        for a in added if a.startswith(ln[2:].rstrip("/") + "/")))
    }


def installed(name: str, package: str) -> bool:
    return in_ctr(name, f"dpkg-query -W -f='${{db:Status-Status}}' {package}").stdout.strip() == "installed"


def kprov_apply(inventory: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**podman_env(), "XDG_STATE_HOME": str(state)}
    return subprocess.run([str(KPROV), "apply", "-i", str(inventory), *args], env=env,
                          capture_output=True, text=True, timeout=1200, check=False)


def recap(output: str, host: str) -> dict[str, int]:
    m = re.search(rf"^{host}\s*: (ok=.*)$", output, re.M)
    assert m, f"no recap line for {host} in:\n{output}"
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


@pytest.fixture
def target(container, tmp_path):
    """(inventory file, XDG state dir) for the fresh container."""
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed (pip install -e .)")
    inv = tmp_path / "inventory.ini"
    inv.write_text(container_host(container))
    return inv, tmp_path / "state"


SWITCHES = ("--zram", "--ccache")
#: Only distcc installed, for the tests whose subject is distccd rather than the package install.
DISTCC_ONLY = "kbuild_host_packages='[\"distcc\"]'"


def test_kprov_apply_check_on_a_fresh_container_changes_nothing(container, target):
    inv, state = target
    baseline = changes(container)
    assert not installed(container, "ccache") and not installed(container, "zram-tools")

    check = kprov_apply(inv, state, "--check", *SWITCHES)
    assert check.returncode == 0, check.stdout + check.stderr
    assert recap(check.stdout, "ctr")["failed"] == 0
    assert re.search(r"^\[\d+\] \[changed\] ctr \| \w+ \| ", check.stdout, re.M), check.stdout
    assert changes(container) == baseline
    for path in ("/etc/ccache.conf", "/etc/default/zramswap", "/etc/kprov/plan.json"):
        assert in_ctr(container, f"test -e {path}").returncode != 0, f"--check created {path}"
    assert not installed(container, "ccache") and not installed(container, "zram-tools")


def test_kprov_apply_converges_a_container_and_a_rerun_changes_nothing(container, target):
    inv, state = target
    first = kprov_apply(inv, state, *SWITCHES)
    assert first.returncode == 0, first.stdout + first.stderr
    stats = recap(first.stdout, "ctr")
    assert stats["changed"] > 0 and stats["failed"] == 0 and stats["unreachable"] == 0
    plan = json.loads(in_ctr(container, "cat /etc/kprov/plan.json").stdout)
    assert plan["zram"]["enabled"] and plan["ccache"]["enabled"]
    zramswap = in_ctr(container, "cat /etc/default/zramswap").stdout
    assert f"ALGO={plan['zram']['algorithm']}" in zramswap
    assert plan["zram"]["algorithm"] in plan["host"]["zram_compressors"]
    assert f"PERCENT={plan['zram']['percent']}" in zramswap
    assert "max_size" in in_ctr(container, "cat /etc/ccache.conf").stdout
    missing = [p for p in plan["packages"] if not installed(container, p)]
    assert not missing, f"planned packages not installed: {missing}"
    assert installed(container, "ccache") and installed(container, "zram-tools")

    again = kprov_apply(inv, state, "--diff", *SWITCHES)  # --diff: a failure shows what moved
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again.stdout, "ctr")["changed"] == 0, again.stdout


def test_kprov_apply_to_an_unreachable_container_fails_naming_it(tmp_path):
    reason = podman_unready(IMAGE)
    if reason:
        pytest.skip(reason)
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed (pip install -e .)")
    ghost = f"kprov-absent-{uuid.uuid4().hex[:10]}"
    inv = tmp_path / "inventory.ini"
    inv.write_text(container_host(ghost, alias="ghost"))
    proc = kprov_apply(inv, tmp_path / "state", "--check")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("kprov: apply failed: ghost is unreachable: "), err
    assert "run artifacts: " + str(tmp_path / "state" / "kprov" / "runs") in err
    assert len(err.splitlines()) == 1


def test_a_port_already_taken_fails_naming_the_port_and_leaves_its_holder_alone(container, tmp_path):
    """Another listener has distccd's port on the planned listen address before apply starts."""
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed (pip install -e .)")
    address = podman("inspect", "-f", "{{.NetworkSettings.IPAddress}}", container).stdout.strip()
    holder = (f"import socket, time; s = socket.socket(); s.bind(({address!r}, {DISTCC_PORT})); "
              "s.listen(); open('/run/port-holder', 'w').write('listening'); time.sleep(3600)")
    podman("exec", "-d", container, "python3", "-c", holder)
    taken = in_ctr(container, "for i in $(seq 100); do [ -s /run/port-holder ] && exit 0; sleep 0.1; done; exit 1")
    assert taken.returncode == 0, "the port holder did not start"
    inv = tmp_path / "inventory.ini"
    inv.write_text(container_host(container, DISTCC_ONLY))
    proc = kprov_apply(inv, tmp_path / "state", "--no-zram", "--no-ccache", "--distcc-server",
                       "--allow", f"{address}/32", "--listen", address)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(r"kprov: apply failed on ctr at '[^']*distccd[^']*': ", last), last
    assert last.endswith(")") and "(run artifacts: " + str(tmp_path / "state" / "kprov" / "runs") in last, last
    assert len(last.split(" (run artifacts: ")[0]) <= 220, last
    # kprov stopped there: it did not take the port from its holder.
    listeners = in_ctr(container, f"ss -ltnpH 'sport = :{DISTCC_PORT}'").stdout
    assert "python3" in listeners and "distccd" not in listeners, listeners
    assert re.search(rf"port {DISTCC_PORT} on {re.escape(address)} is already in use", last), last


def test_a_killed_distccd_left_as_a_zombie_is_started_by_the_next_apply(container, tmp_path):
    """The container's PID 1 (sleep) does not reap: a killed distccd stays in the process table
    under the pid its pid file names, and the init script's status calls that running."""
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed (pip install -e .)")
    address = podman("inspect", "-f", "{{.NetworkSettings.IPAddress}}", container).stdout.strip()
    inv = tmp_path / "inventory.ini"
    inv.write_text(container_host(container, DISTCC_ONLY))
    goals = ("--no-zram", "--no-ccache", "--distcc-server", "--allow", f"{address}/32", "--listen", address)

    def listening() -> bool:  # (ss cannot name distccd's process here: root lacks CAP_SYS_PTRACE)
        return bool(in_ctr(container, f"ss -ltnH 'sport = :{DISTCC_PORT}'").stdout.strip())

    first = kprov_apply(inv, tmp_path / "state", *goals)
    assert first.returncode == 0, first.stdout + first.stderr
    assert listening()
    killed = in_ctr(container, "pid=$(cat /var/run/distccd.pid) && kill -TERM $pid && "
                               "for i in $(seq 100); do grep -q '^State:.*Z' /proc/$pid/status && exit 0; "
                               "sleep 0.1; done; exit 1")
    assert killed.returncode == 0, "distccd did not become a zombie"
    assert in_ctr(container, "/etc/init.d/distcc status").returncode == 0  # what the init script believes
    assert not listening()

    second = kprov_apply(inv, tmp_path / "state", *goals)
    assert second.returncode == 0, second.stdout + second.stderr
    assert re.search(r"\[changed\] ctr \| distcc \| Enable and start distccd", second.stdout), second.stdout
    assert listening()
    third = kprov_apply(inv, tmp_path / "state", *goals)
    assert recap(third.stdout, "ctr")["changed"] == 0, third.stdout
