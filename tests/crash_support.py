"""Shared by the crash-consistency test and script: containers, kprov runs, end-state manifests.

A manifest is what kprov manages on a host, in a form two hosts can be compared by: each managed
file's mode, owner and sha256 (the applied plan only by its decisions, since its reasons quote
MemAvailable), Ansible's backup leftovers, dpkg's health and the planned packages, the running
distccd's command line and the swap devices (those of the container: /proc/swaps lists the
host's too).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from conftest import apt_cache_volumes, container_host, podman_env

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/kprov-debian:bookworm"
#: IMAGE with TEST_PACKAGES installed (tests/images/build.sh): for runs whose point is not the install.
BUILD_IMAGE = "localhost/kprov-debian:bookworm-build"
KPROV = Path(sys.executable).parent / "kprov"
FAULT_PLUGINS = Path(__file__).resolve().parent / "ansible_plugins" / "callback"
AREAS = ("packages", "zram", "ccache", "distcc", "hosts", "buildenv")
#: Where in each area the crash test strikes: after the Nth task that ran there (hosts has one).
STRIKE = {"packages": 2, "zram": 2, "ccache": 2, "distcc": 2, "hosts": 1, "buildenv": 2}

MANAGED_FILES = (
    "/etc/ccache.conf",
    "/etc/default/zramswap",
    "/etc/sysctl.d/90-kprov-zram.conf",
    "/etc/default/distcc",
    "/etc/distcc/hosts",
    "/etc/hosts",
    "/etc/profile.d/kprov-kbuild.sh",
    "/etc/kprov/zram-config.state",
    "/etc/kprov/role-vars.json",
)
MANAGED_DIRS = ("/etc/kprov", "/var/cache/ccache")

_MANIFEST_CODE = r"""
import glob, hashlib, json, os, subprocess, sys
files, dirs, packages, address = json.loads(sys.argv[1])
out = {"files": {}, "dirs": {}, "backups": [], "packages": {}}
for path in files:
    try:
        st = os.lstat(path)
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        out["files"][path] = None
        continue
    if path == "/etc/hosts":  # podman writes the rest (the container's own name and address)
        lines = data.decode().splitlines()
        begin = [i for i, l in enumerate(lines) if l == "# BEGIN kprov managed hosts"]
        end = [i for i, l in enumerate(lines) if l == "# END kprov managed hosts"]
        data = "\n".join(lines[begin[0]:end[0] + 1]).encode() if begin and end else b""
    data = data.replace(address.encode(), b"ADDRESS")  # each container has its own address
    out["files"][path] = [oct(st.st_mode), st.st_uid, st.st_gid, hashlib.sha256(data).hexdigest()]
for path in dirs:
    try:
        st = os.lstat(path)
        out["dirs"][path] = [oct(st.st_mode), st.st_uid, st.st_gid]
    except FileNotFoundError:
        out["dirs"][path] = None
for pattern in ("/etc/*~", "/etc/*/*~", "/etc/*/*/*~"):
    # Ansible names a backup FILE.PID.YYYY-MM-DD@HH:MM:SS~: keep the file it backs up.
    out["backups"] += sorted(p.rsplit(".", 2)[0] for p in glob.glob(pattern))
try:
    with open("/etc/kprov/plan.json") as f:
        plan = json.load(f)
    out["plan"] = {k: plan.get(k, {}).get("enabled") for k in ("zram", "ccache", "distcc")}
    out["plan"]["jobs"] = plan.get("jobs", {}).get("value")
    out["plan"]["packages"] = plan.get("packages")
except (OSError, ValueError):
    out["plan"] = None
for name in packages:
    r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", name], capture_output=True, text=True)
    out["packages"][name] = r.stdout.strip()
out["dpkg_audit"] = subprocess.run(["dpkg", "--audit"], capture_output=True, text=True).stdout.strip()
out["dpkg_updates"] = sorted(os.listdir("/var/lib/dpkg/updates"))
procs = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if "distccd" in cmd.split(" ")[0]:
            procs.append(cmd.replace(address, "ADDRESS"))
out["distccd"] = sorted(set(procs))
with open("/proc/swaps") as f:  # not namespaced: keep the swaps whose device is in this container
    out["swaps"] = [d for d in (line.split()[0] for line in f.read().splitlines()[1:]) if os.path.exists(d)]
print(json.dumps(out, sort_keys=True))
"""


def podman(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                          check=check, timeout=timeout)


def start_container(prefix: str = "kprov-crash", image: str = IMAGE) -> tuple[str, str]:
    """A fresh bookworm container on podman's default network: (name, its address)."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    podman("run", "-d", "--name", name, *apt_cache_volumes(), image, "sleep", "infinity")
    address = podman("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()
    return name, address


def remove_container(name: str) -> None:
    podman("rm", "-f", "-t", "0", name, check=False)


#: The packages area installs these instead of the whole kernel toolchain: a real apt install that
#: can be killed half-way, without minutes of downloads per run (the fault, not apt, is under test).
#: BUILD_IMAGE has them, and nothing else the plan lists (its manifest compares their dpkg status).
TEST_PACKAGES = '["ccache","distcc","gcc","make","zram-tools"]'


def inventory(path: Path, container: str) -> Path:
    path.write_text(container_host(container, f"kbuild_host_packages='{TEST_PACKAGES}'"))
    return path


def goals(address: str) -> tuple[str, ...]:
    """Switches that make every area of the role do something on a single container."""
    return ("--zram", "--ccache", "--distcc-server", "--allow", f"{address}/32", "--listen", address,
            "--host-entry", f"{address}=kprov-crash-self")


def kprov_apply(inv: Path, state: Path, *args: str, fault: str | None = None, mark: Path | None = None,
                census: Path | None = None, prefix: tuple[str, ...] = (),
                timeout: int = 1200) -> subprocess.CompletedProcess:
    """``kprov apply -i INV ARGS``; ``fault`` strikes (see kprov_fault), ``census`` lists the tasks run.

    ``prefix`` goes before the command (crash_every_task.py: a mount namespace of its own).
    """
    env = {**podman_env(), "XDG_STATE_HOME": str(state)}
    if fault or census:
        env.update(
            KPROV_FAULT_AT=fault or "",
            KPROV_FAULT_MARK=str(mark or ""),
            KPROV_FAULT_CENSUS=str(census or ""),
            ANSIBLE_CALLBACK_PLUGINS=str(FAULT_PLUGINS),
            ANSIBLE_CALLBACKS_ENABLED="kprov_fault",
        )
    return subprocess.run([*prefix, str(KPROV), "apply", "-i", str(inv), *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def manifest(container: str, address: str, packages: list[str] | None = None) -> dict:
    if packages is None:
        planned = podman("exec", container, "cat", "/etc/kprov/plan.json", check=False)
        packages = json.loads(planned.stdout).get("packages", []) if planned.returncode == 0 else []
    arg = json.dumps([list(MANAGED_FILES), list(MANAGED_DIRS), packages, address])
    out = podman("exec", container, "python3", "-c", _MANIFEST_CODE, arg)
    return json.loads(out.stdout)


def recap(output: str, host: str = "ctr") -> dict[str, int]:
    m = re.search(rf"^{host}\s*: (ok=.*)$", output, re.M)
    if not m:
        raise AssertionError(f"no recap line for {host} in:\n{output}")
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def without_backups(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "backups"}


def killed(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode in (-9, 137) or proc.returncode < 0


def kprov_ready() -> str | None:
    if not KPROV.exists():
        return f"{KPROV} is not installed"
    if os.geteuid() != 0:
        return "needs root for podman"
    return None
