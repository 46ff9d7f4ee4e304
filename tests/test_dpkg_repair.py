"""An interrupted dpkg, for real: the role's packages area against a podman container.

One container serves every case. dpkg is left the way a run killed during an install leaves it
(what the OOM killer does to ``apt-get install``): the package being installed (``bc``) unpacked
but not configured, and another one (``dc``) half-installed with its journal entry still pending
under /var/lib/dpkg/updates - exactly what dpkg writes before it unpacks a package, so apt then
refuses every install ("dpkg was interrupted"). The role runs through ansible-runner, as
``kprov apply -i`` runs it, limited to its packages area and a one-package list.
"""

from __future__ import annotations

import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest
from conftest import IMAGES, container_host, podman_env, podman_unready, suite_ansible_env

from provision.apply import failures, progress
from provision.apply.runner import run_playbook

IMAGE = IMAGES[0]  # localhost/kprov-debian:bookworm
ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "playbooks" / "roles" / "kbuild_host" / "library"
DEBS = "/root/kprov-debs"
CHECK_TASK = "Finish an interrupted dpkg run"

pytestmark = pytest.mark.podman


def podman(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                          check=check, timeout=timeout)


def sh(name: str, script: str, check: bool = True) -> str:
    proc = podman("exec", name, "sh", "-euc", script, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script!r} failed in {name}: {proc.stdout}{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="module")
def ctr(request):
    reason = podman_unready(IMAGE)
    if reason:
        pytest.skip(reason)
    name = f"kprov-dpkg-{uuid.uuid4().hex[:10]}"
    podman("run", "-d", "--rm", "--name", name, IMAGE, "sleep", "infinity")
    request.addfinalizer(lambda: podman("rm", "-f", "-t", "0", name, check=False))
    # The two .deb files the interrupted run was working on, fetched once from the image's mirror.
    # The lists count as fresh for the role (cache_valid_time), so no run updates them.
    # python3-apt too, which the apt module would otherwise install itself on its first real run.
    sh(name, f"mkdir -p {DEBS} /var/lib/apt/periodic && cd {DEBS} && apt-get download -q bc dc >/dev/null"
             " && touch /var/lib/apt/periodic/update-success-stamp"
             " && DEBIAN_FRONTEND=noninteractive apt-get install -q -y python3-apt >/dev/null")
    reset(name)
    return name


def reset(name: str) -> None:
    """bc and dc installed, dpkg at rest, no proxy."""
    sh(name, f"""
        rm -f /etc/apt/apt.conf.d/99kprov-test-proxy
        dpkg -i {DEBS}/dc_*.deb {DEBS}/bc_*.deb >/dev/null 2>&1
        dpkg --configure -a
    """)


def interrupt(name: str) -> None:
    """dpkg as a killed ``apt-get install bc`` leaves it: bc unpacked, dc half-installed mid-journal."""
    reset(name)
    sh(name, f"""
        dpkg --purge bc >/dev/null 2>&1
        dpkg --unpack {DEBS}/bc_*.deb >/dev/null 2>&1
        dpkg-query -s dc | sed 's/^Status: .*/Status: install reinstreq half-installed/' > /var/lib/dpkg/updates/0001
    """)
    assert status(name, "bc") == "install ok unpacked"
    assert status(name, "dc") == "install reinstreq half-installed"


def status(name: str, package: str) -> str:
    return sh(name, f"dpkg-query -W -f='${{Status}}' {package}", check=False).strip()


def dpkg_state(name: str) -> str:
    """Everything dpkg knows: its status database, the pending journal, and the unpacked files."""
    return sh(name, "cd /var/lib/dpkg && sha256sum status updates/* info/bc.list info/dc.list 2>/dev/null;"
                    " ls -la updates; ls /usr/bin/bc /usr/bin/dc", check=False)


def run_role(name: str, tmp_path: Path, monkeypatch, *, check: bool = False, packages=("bc",), **role_vars):
    """The role's packages area against the container; returns (outcome, events)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(container_host(name))
    events: list[dict] = []
    extravars = {"kbuild_host_goals": {"zram": False, "ccache": False},
                 "kbuild_host_packages": list(packages), **role_vars}
    outcome = run_playbook("site.yml", inventory=str(inventory), extravars=extravars, check=check,
                                  tags=["kbuild_host_packages"], on_event=events.append,
                                  extra_env=suite_ansible_env())
    return outcome, events


def failed_event(events: list[dict]) -> dict:
    failed = [e["event_data"] for e in events if e.get("event") == "runner_on_failed"]
    assert len(failed) == 1, [e.get("event") for e in events]
    return failed[0]


def cause(data: dict) -> str:
    return failures.cause_line(data["task"], progress.area_of(data), data["res"])


def notes(events: list[dict]) -> list[str]:
    found = []
    for e in events:
        if e.get("event") == "runner_on_ok":
            found += progress.role_notes((e["event_data"].get("res") or {}).get("ansible_stats"))
    return found


@pytest.mark.parametrize("mode", ["repair off", "check mode"])
def test_an_interrupted_dpkg_is_reported_with_the_commands_and_left_alone(ctr, tmp_path, monkeypatch, mode):
    interrupt(ctr)
    before = dpkg_state(ctr)
    if mode == "repair off":
        outcome, events = run_role(ctr, tmp_path, monkeypatch, kbuild_host_packages_repair=False)
    else:
        outcome, events = run_role(ctr, tmp_path, monkeypatch, check=True)
    assert outcome.result.failed_hosts == ("ctr",)
    data = failed_event(events)
    assert data["task"] == CHECK_TASK
    res = data["res"]
    assert res["interrupted"] and res["journal"] == ["0001"] and res["ran"] == []
    assert res["reason"] == ("repair_off" if mode == "repair off" else "check_mode")
    assert res["commands"] == ["dpkg --configure -a", "apt-get install --reinstall dc"]
    msg = res["msg"]
    assert "\n" not in msg
    assert "unpacked: bc" in msg and "half-installed: dc" in msg
    assert "run as root: dpkg --configure -a; apt-get install --reinstall dc" in msg
    line = cause(data)
    assert line.startswith(f"apply failed at '{CHECK_TASK}': dpkg was interrupted"), line
    assert "dpkg --configure -a && apt-get install --reinstall dc" in line, line
    assert line.endswith("or rerun without " + ("--no-repair" if mode == "repair off" else "--check")), line
    assert len(line) <= failures.CAUSE_LINE_MAX, line
    assert dpkg_state(ctr) == before


def test_an_interrupted_dpkg_is_repaired_noted_and_a_rerun_changes_nothing(ctr, tmp_path, monkeypatch):
    interrupt(ctr)
    outcome, events = run_role(ctr, tmp_path / "first", monkeypatch)
    assert outcome.result.ok, [e["event_data"].get("res", {}).get("msg") for e in events
                               if e.get("event") == "runner_on_failed"]
    assert status(ctr, "bc") == "install ok installed"
    assert status(ctr, "dc") == "install ok installed"
    assert sh(ctr, "ls /var/lib/dpkg/updates; dpkg --audit") == ""
    assert sh(ctr, "echo 6*7 | bc").strip() == "42"
    repair = [e["event_data"]["res"] for e in events
              if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == CHECK_TASK]
    assert repair and repair[0]["changed"]
    assert repair[0]["ran"] == [
        "DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a",
        ("DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall -o Dpkg::Options::=--force-confold"
         " -o DPkg::Lock::Timeout=60 dc"),
    ]
    (note,) = [n for n in notes(events) if "dpkg" in n]
    assert "dpkg was interrupted (1 journal entry in /var/lib/dpkg/updates; half-installed: dc; unpacked: bc)" in note
    assert "dpkg --force-confold --configure -a" in note and "--reinstall" in note and " dc" in note
    assert "maintainer scripts of other pending packages may have run" in note

    again, events = run_role(ctr, tmp_path / "again", monkeypatch)
    assert again.result.ok
    assert again.result.total("changed") == 0, [
        e["event_data"].get("task") for e in events
        if e.get("event") == "runner_on_ok" and (e["event_data"].get("res") or {}).get("changed")]
    assert not [n for n in notes(events) if "dpkg" in n]


def test_a_held_dpkg_lock_names_its_holder(ctr, tmp_path, monkeypatch):
    """Another package run holds the lock past the wait: the failure names its pid and program."""
    holder = textwrap.dedent("""
        import fcntl, os, time
        fd = os.open("/var/lib/dpkg/lock-frontend", os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        open("/run/kprov-test-holder", "w").write(str(os.getpid()))
        time.sleep(600)
    """)
    sh(ctr, f"rm -f /run/kprov-test-holder; cat > /root/holder.py <<'EOF'\n{holder}\nEOF")
    podman("exec", "-d", ctr, "python3", "/root/holder.py")
    try:
        pid = sh(ctr, "while [ ! -s /run/kprov-test-holder ]; do sleep 0.1; done; cat /run/kprov-test-holder")
        project = tmp_path / "project"
        project.mkdir()
        (project / "lock.yml").write_text(textwrap.dedent("""
            - name: Wait briefly for the dpkg lock
              hosts: all
              gather_facts: false
              tasks:
                - name: Finish an interrupted dpkg run
                  kbuild_host_dpkg:
                    lock_timeout: 1
        """))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        inventory = tmp_path / "inventory.ini"
        inventory.write_text(container_host(ctr))
        events: list[dict] = []
        outcome = run_playbook("lock.yml", inventory=str(inventory), project_dir=project,
                                      on_event=events.append,
                                      extra_env={**suite_ansible_env(),
                                                 "ANSIBLE_LIBRARY": str(LIBRARY)})
    finally:
        sh(ctr, "kill $(cat /run/kprov-test-holder)", check=False)
    assert outcome.result.failed_hosts == ("ctr",)
    data = failed_event(events)
    assert data["res"]["lock_holder"]["pid"] == int(pid)
    assert data["res"]["lock_holder"]["name"] == "python3"
    assert f"held by pid {pid} (python3)" in data["res"]["msg"]
    line = cause(data)
    assert f"pid {pid} (python3)" in line and "wait for it to finish" in line, line


def test_an_unreachable_mirror_is_named_in_the_cause(ctr, tmp_path, monkeypatch):
    """apt behind a proxy that refuses (127.0.0.1:9 in the container) and a package to download."""
    reset(ctr)
    sh(ctr, "echo 'Acquire::http::Proxy \"http://127.0.0.1:9\";' > /etc/apt/apt.conf.d/99kprov-test-proxy")
    mirror = sh(ctr, "awk '/^deb /{print $2; exit}' /etc/apt/sources.list").strip()
    assert status(ctr, "ed") != "install ok installed"
    try:
        outcome, events = run_role(ctr, tmp_path, monkeypatch, packages=("ed",))
    finally:
        sh(ctr, "rm -f /etc/apt/apt.conf.d/99kprov-test-proxy")
    assert outcome.result.failed_hosts == ("ctr",)
    data = failed_event(events)
    assert data["task"] == "Install the packages (apt)"
    line = cause(data)
    host = mirror.split("/")[2]
    assert line == (f"apply failed at 'Install the packages (apt)': the package mirror {host} is unreachable "
                    "(through the proxy 127.0.0.1:9: connection refused); check the network, proxy and mirror "
                    "settings"), line
    assert "apt-get" not in line
