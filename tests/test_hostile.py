"""Hostile input at kprov's boundary: every bad switch, facts file, Ansible facts file or inventory
is one line on stderr starting ``kprov: ``, exit 2, no traceback, and nothing outside a temporary
directory changes. Output that carries foreign text (host names, paths) is inert: no control
character reaches a terminal and nothing foreign becomes shell code under ``eval``.

The table runs in-process through ``Kprov.run`` (the same code the console script runs); what
depends on the process itself (a closed or full stdout, a deleted working directory, the locale,
the user id) runs the real ``kprov`` script. No case names a host other than localhost and no case
touches the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provision import render
from provision.cli.app import Kprov
from provision.errors import UserError
from provision.facts.ansible import facts_from_ansible
from provision.facts.catalog import load_catalog
from provision.facts.files import MAX_FILE_BYTES, parse_json
from provision.model.facts import HostFacts
from provision.model.goals import Goals
from provision.planner import plan

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
GOOD_FACTS = FIXTURES / "laptop-8c-16g.json"
GOOD_ANSIBLE = FIXTURES / "ansible" / "debian12-localhost-flat.json"
PROBE = FIXTURES / "ansible" / "debian12-localhost-probe.json"
SCRIPT = Path(sys.executable).parent / "kprov"

#: What a kprov run could change on this host if a check let hostile input through (directories
#: are walked, except the ccache directory, which can hold a million files: only itself is watched).
WATCHED = (
    "/etc/kprov",
    "/etc/ccache.conf",
    "/etc/default",
    "/etc/hosts",
    "/etc/profile.d",
    "/etc/sysctl.d",
    "/etc/distcc",
    "/etc/systemd/zram-generator.conf",
    "/var/cache/ccache",
)


def snapshot() -> dict[str, tuple[int, int, int] | None]:
    state: dict[str, tuple[int, int, int] | None] = {}
    for top in WATCHED:
        paths = [top]
        if os.path.isdir(top) and top.startswith("/etc/"):
            for base, dirs, files in os.walk(top):
                paths += [os.path.join(base, n) for n in dirs + files]
        for path in paths:
            try:
                info = os.lstat(path)
                state[path] = (info.st_mode, info.st_size, info.st_mtime_ns)
            except FileNotFoundError:
                state[path] = None
    return state


# --------------------------------------------------------------------------- building the inputs

Maker = Callable[[Path], None]


def _json_file(base: Path, mutate: Callable[[dict], None]) -> Maker:
    def make(path: Path) -> None:
        data = json.loads(base.read_text())
        mutate(data)
        path.write_text(json.dumps(data))

    return make


def _put(data: dict, dotted: str, value: object) -> None:
    """``data[a][b][0] = value`` for ``dotted`` "a.b.0"."""
    *parents, last = (int(k) if k.isdigit() else k for k in dotted.split("."))
    for key in parents:
        data = data[key]
    data[last] = value


def facts(dotted: str, value: object) -> Maker:
    """The good facts fixture with one value replaced."""
    return _json_file(GOOD_FACTS, lambda d: _put(d, dotted, value))


def ansible(key: str, value: object) -> Maker:
    """The good flat Ansible facts with one fact (``ansible_`` prefix added) replaced."""
    return _json_file(GOOD_ANSIBLE, lambda d: _put(d, f"ansible_{key}", value))


def probed(dotted: str, value: object) -> Maker:
    """The good Ansible facts with the role probe beside them, one probe value replaced."""

    def mutate(d: dict) -> None:
        d["probe"] = json.loads(PROBE.read_text())
        _put(d, f"probe.{dotted}" if dotted else "probe", value)

    return _json_file(GOOD_ANSIBLE, mutate)


def text(content: str) -> Maker:
    return lambda path: path.write_text(content)


def raw(content: bytes) -> Maker:
    return lambda path: path.write_bytes(content)


def fifo() -> Maker:
    return lambda path: os.mkfifo(path)


def symlink(target: str) -> Maker:
    return lambda path: path.symlink_to(target)


def directory() -> Maker:
    return lambda path: path.mkdir()


GOOD_TOKEN = "Zk3v9Qx-_p0LmN4rT7yW2aB5cD8eF1gH6iJ0kL3mN9o"


def secret(content: str = GOOD_TOKEN + "\n", mode: int = 0o600) -> Maker:
    """A store secret file (the good token, 0600, unless told otherwise)."""

    def make(path: Path) -> None:
        path.write_text(content)
        path.chmod(mode)

    return make


def remote(url: str = "redis://127.0.0.1:6380", *extra: str) -> tuple[str, ...]:
    return plan_facts("--ccache-remote", url, "--ccache-remote-secret", "{F}", *extra)


def sparse(size: int) -> Maker:
    def make(path: Path) -> None:
        with open(path, "wb") as handle:
            handle.truncate(size)  # a hole: no disk, no memory

    return make


def kernel_tree(**special: Maker) -> Maker:
    """A minimal kernel tree (what tree_facts recognises), with some of its files replaced."""

    def make(path: Path) -> None:
        path.mkdir()
        (path / "scripts").mkdir()
        (path / "Kconfig").write_text("mainmenu \"Linux\"\n")
        (path / "Documentation" / "process").mkdir(parents=True)
        files = {"Makefile": text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n"), **special}
        for name, maker in files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            maker(path / name)

    return make


def nested(depth: int, opener: str = "[", closer: str = "]") -> Maker:
    return text(opener * depth + closer * depth)


BIG = "9" * 400
HUGE = "9" * 5000  # beyond Python's 4,300-digit int/str limit

# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    """``args`` after ``kprov``; ``{F}`` is the file ``make`` built, ``{good}`` a good facts file."""

    args: tuple[str, ...]
    make: Maker | None = None
    needle: str = ""  # what the one line must mention


def plan_facts(*extra: str) -> tuple[str, ...]:
    return ("plan", "--facts", "{good}", *extra)


SERVER = ("--distcc-server", "--allow", "10.0.0.0/24")
FACTS = ("plan", "--facts", "{F}")
ANSIBLE = ("plan", "--ansible-facts", "{F}")

CASES: dict[str, Case] = {
    # ---- switches: empty text that used to mean "not given"
    "empty --facts": Case(("plan", "--facts", ""), needle="--facts"),
    "blank --facts": Case(("plan", "--facts", "   "), needle="--facts"),
    "empty --ansible-facts": Case(("plan", "--ansible-facts", ""), needle="--ansible-facts"),
    "empty --tree": Case(("plan", "--tree", ""), needle="--tree"),
    "--tree with --facts": Case(plan_facts("--tree", "/usr/src/linux"), needle="--tree"),
    "empty --ccache-size": Case(plan_facts("--ccache-size", ""), needle="--ccache-size"),
    "empty --listen": Case(plan_facts(*SERVER, "--listen", ""), needle="--listen"),
    "empty --build-dir": Case(plan_facts("--build-dir", ""), needle="--build-dir"),
    "empty --ccache-dir": Case(plan_facts("--ccache-dir", ""), needle="--ccache-dir"),
    "empty --source-root": Case(plan_facts("--source-root", ""), needle="--source-root"),
    "newline --source-root": Case(plan_facts("--source-root", "/home\nbase_dir = /"), needle="--source-root"),
    "template --source-root": Case(plan_facts("--source-root", "/srv/{{ lookup('pipe','id') }}"), needle="--source-root"),
    "empty --zram-algorithm": Case(plan_facts("--zram-algorithm", ""), needle="--zram-algorithm"),
    "empty --allow": Case(plan_facts("--distcc-server", "--allow", ""), needle="--allow"),
    "empty --distcc-hosts": Case(plan_facts("--distcc-hosts", ""), needle="--distcc-hosts"),
    "empty -i": Case(("plan", "-i", ""), needle="-i"),
    "empty --limit": Case(("apply", "--check", "-i", "inventory.ini", "--limit", ""), needle="--limit"),
    "empty --tags": Case(("apply", "--check", "--tags", ""), needle="--tags"),
    # ---- switches: numbers
    "arabic-indic digit --jobs": Case(plan_facts("--jobs", "\u0663"), needle="--jobs"),
    "fullwidth digit --jobs": Case(plan_facts("--jobs", "\uff13"), needle="--jobs"),
    "superscript --zram-percent": Case(plan_facts("--zram-percent", "\u00b2"), needle="--zram-percent"),
    "400 digits --jobs": Case(plan_facts("--jobs", BIG), needle="--jobs"),
    "400 digits --zram-percent": Case(plan_facts("--zram-percent", BIG), needle="--zram-percent"),
    "5000 digits --builds-to-keep": Case(plan_facts("--builds-to-keep", HUGE), needle="--builds-to-keep"),
    "negative --jobs": Case(plan_facts("--jobs=-1"), needle="--jobs"),
    "--jobs over 4096": Case(plan_facts("--jobs", "4097"), needle="--jobs"),
    "--zram-percent 0": Case(plan_facts("--zram-percent", "0"), needle="--zram-percent"),
    "--ccache-size 1e35T": Case(plan_facts("--ccache-size", "1e35T"), needle="--ccache-size"),
    "--ccache-size 400 digits": Case(plan_facts("--ccache-size", BIG + "G"), needle="--ccache-size"),
    "--ccache-size arabic-indic": Case(plan_facts("--ccache-size", "\u0663G"), needle="--ccache-size"),
    "--ccache-size negative": Case(plan_facts("--ccache-size=-5G"), needle="--ccache-size"),
    "--ccache-size 0": Case(plan_facts("--ccache-size", "0G"), needle="--ccache-size"),
    # ---- switches: distcc and hosts
    "distcc host superscript limit": Case(plan_facts("--distcc-hosts", "build1/\u00b2"), needle="build1"),
    "distcc host user@host": Case(plan_facts("--distcc-hosts", "root@build1/4"), needle="root@build1"),
    "distcc host option": Case(plan_facts("--distcc-hosts=-oProxyCommand=x"), needle="ProxyCommand"),
    "distcc host with space": Case(plan_facts("--distcc-hosts", "build1 build2"), needle="build1"),
    "allow the world": Case(plan_facts("--distcc-server", "--allow", "0.0.0.0/0"), needle="0.0.0.0/0"),
    "allow the v6 world": Case(plan_facts("--distcc-server", "--allow", "::/0"), needle="::/0"),
    "allow with newline": Case(plan_facts("--distcc-server", "--allow", "10.0.0.0/8\n"), needle="--allow"),
    "allow ipv4-mapped world": Case(
        plan_facts("--distcc-server", "--allow", "::ffff:0.0.0.0/96"), needle="::ffff:0.0.0.0/96"
    ),
    "listen anywhere": Case(plan_facts(*SERVER, "--listen", "0.0.0.0"), needle="0.0.0.0"),
    "listen scoped": Case(plan_facts(*SERVER, "--listen", "fe80::1%eth0"), needle="fe80::1"),
    "listen not an address": Case(plan_facts(*SERVER, "--listen", "build1;reboot"), needle="--listen"),
    "host entry without =": Case(plan_facts("--host-entry", "nonsense"), needle="nonsense"),
    "host entry shell name": Case(plan_facts("--host-entry", "10.0.0.7=$(reboot)"), needle="reboot"),
    "host entry newline name": Case(plan_facts("--host-entry", "10.0.0.7=a\nb"), needle="10.0.0.7"),
    "unknown target": Case(plan_facts("--target", "config;id"), needle="--target"),
    # ---- switches: the command line itself
    "bare kprov": Case((), needle="no command"),
    "unknown command": Case(("frobnicate",), needle="frobnicate"),
    "unknown switch": Case(plan_facts("--frobnicate"), needle="--frobnicate"),
    "stray argument": Case(plan_facts("extra"), needle="extra"),
    "two facts files": Case(("plan", "--facts", "{good}", "--ansible-facts", "{good}"), needle="exclusive"),
    "zram on and off": Case(plan_facts("--zram", "--no-zram"), needle="--zram"),
    "json and yaml": Case(plan_facts("--json", "--yaml"), needle="--json"),
    "--limit without -i": Case(plan_facts("--limit", "localhost"), needle="--limit"),
    "apply with --facts": Case(("apply", "--check", "--facts", "{good}"), needle="--facts"),
    # ---- inventories (missing or garbled only)
    "inventory missing": Case(("plan", "-i", "{F}"), needle="not found"),
    "inventory garbled": Case(("plan", "-i", "{F}"), raw(b"\xff\xfe\x00[[[garbage\n=\n"), needle="inventory"),
    "inventory fifo": Case(("plan", "-i", "{F}"), fifo(), needle="-i"),
    "inventory /dev/zero": Case(("plan", "-i", "/dev/zero"), needle="-i"),
    # ---- kernel trees
    "tree missing": Case(("plan", "--tree", "{F}"), needle="--tree"),
    "tree is a file": Case(("plan", "--tree", "{F}"), text("all:\n"), needle="--tree"),
    "tree Makefile fifo": Case(("plan", "--tree", "{F}"), kernel_tree(Makefile=fifo()), needle="Makefile"),
    "tree .config -> /dev/zero": Case(
        ("plan", "--tree", "{F}"), kernel_tree(**{".config": symlink("/dev/zero")}), needle=".config"
    ),
    "tree .config fifo": Case(("plan", "--tree", "{F}"), kernel_tree(**{".config": fifo()}), needle=".config"),
    "tree changes.rst -> /dev/zero": Case(
        ("plan", "--tree", "{F}"),
        kernel_tree(**{"Documentation/process/changes.rst": symlink("/dev/zero")}),
        needle="changes.rst",
    ),
    "build dir .config fifo": Case(
        ("plan", "--tree", "{F}", "--build-dir", "{F}/out"), kernel_tree(**{"out/.config": fifo()}),
        needle="--build-dir",
    ),
    "tree .config too big": Case(
        ("plan", "--tree", "{F}"), kernel_tree(**{".config": sparse(MAX_FILE_BYTES + 1)}), needle="MiB"
    ),
    # ---- facts files: the file itself
    "facts missing": Case(FACTS, needle="cannot read"),
    "facts directory": Case(FACTS, directory(), needle="regular file"),
    "facts fifo": Case(FACTS, fifo(), needle="regular file"),
    "facts /dev/zero": Case(("plan", "--facts", "/dev/zero"), needle="regular file"),
    "facts link to /dev/zero": Case(FACTS, symlink("/dev/zero"), needle="regular file"),
    "facts over 16 MiB": Case(FACTS, sparse(MAX_FILE_BYTES + 1), needle="16 MiB"),
    "facts not UTF-8": Case(FACTS, raw(b'{"hostname": "\xff\xfe"}'), needle="UTF-8"),
    "facts UTF-16": Case(FACTS, raw('{"schema": 1}'.encode("utf-16")), needle="UTF-8"),
    "facts empty": Case(FACTS, text(""), needle="not JSON"),
    "facts nested lists": Case(FACTS, nested(100_000), needle="nested"),
    "facts nested objects": Case(FACTS, nested(50_000, '{"a":', "}"), needle="nested"),
    "facts top-level list": Case(FACTS, text("[1, 2]"), needle="expected an object"),
    "facts top-level string": Case(FACTS, text('"x"'), needle="expected an object"),
    "facts are Ansible's": Case(("plan", "--facts", str(GOOD_ANSIBLE)), needle="--ansible-facts"),
    "facts other schema": Case(FACTS, facts("schema", 99), needle="schema"),
    # ---- facts files: values
    "facts 400-digit int in an unknown key": Case(
        FACTS, text('{"junk": ' + BIG + "}"), needle="400-digit"
    ),
    "facts 5000-digit memory": Case(
        FACTS,
        text(GOOD_FACTS.read_text().replace('"total_bytes": 17179869184', f'"total_bytes": {HUGE}')),
        needle="5000-digit",
    ),
    "facts float overflow": Case(FACTS, text('{"cpu": {"cgroup_quota": 1e999}}'), needle="1e999"),
    "facts NaN": Case(FACTS, text('{"cpu": {"cgroup_quota": NaN}}'), needle="NaN"),
    "facts Infinity": Case(FACTS, text('{"cpu": {"cgroup_quota": -Infinity}}'), needle="Infinity"),
    "facts memory 0": Case(FACTS, facts("memory.total_bytes", 0), needle="memory.total_bytes"),
    "facts memory negative": Case(
        FACTS, facts("memory.total_bytes", -(2**34)), needle="memory.total_bytes"
    ),
    "facts memory as text": Case(FACTS, facts("memory.total_bytes", "16G"), needle="total_bytes"),
    "facts memory as float": Case(FACTS, facts("memory.total_bytes", 1.5e10), needle="total_bytes"),
    "facts memory beyond 2^63": Case(FACTS, facts("memory.total_bytes", 2**64), needle="total_bytes"),
    "facts cgroup limit -1": Case(
        FACTS, facts("memory.cgroup_limit_bytes", -1), needle="cgroup_limit_bytes"
    ),
    "facts swap negative": Case(FACTS, facts("memory.swap_total_bytes", -1), needle="swap_total"),
    "facts usable CPUs negative": Case(FACTS, facts("cpu.usable", -3), needle="cpu.usable"),
    "facts logical CPUs 0": Case(FACTS, facts("cpu.logical", 0), needle="cpu.logical"),
    "facts a million CPUs": Case(FACTS, facts("cpu.usable", 10**6), needle="cpu.usable"),
    "facts CPUs as true": Case(FACTS, facts("cpu.usable", True), needle="cpu.usable"),
    "facts quota 0": Case(FACTS, facts("cpu.cgroup_quota", 0), needle="cgroup_quota"),
    "facts disk free negative": Case(FACTS, facts("disks.0.free_bytes", -1), needle="free_bytes"),
    "facts compressors as a string": Case(
        FACTS, facts("zram.compressors", "lz4"), needle="zram.compressors"
    ),
    "facts compressor with newline": Case(
        FACTS, facts("zram.compressors", ["lz4\nALGO=x"]), needle="zram.compressors"
    ),
    "facts hostname as a list": Case(FACTS, facts("hostname", ["a"]), needle="hostname"),
    "facts default_ipv4 not an address": Case(
        (*FACTS, *SERVER), facts("default_ipv4", "10.0.0.x"), needle="default_ipv4"
    ),
    "facts default_ipv4 with newline": Case(
        (*FACTS, *SERVER), facts("default_ipv4", "10.0.0.5\n"), needle="default_ipv4"
    ),
    "facts default_ipv4 as a list": Case(
        (*FACTS, *SERVER), facts("default_ipv4", ["10.0.0.5"]), needle="default_ipv4"
    ),
    # ---- Ansible facts files
    "ansible missing": Case(ANSIBLE, needle="cannot read"),
    "ansible fifo": Case(ANSIBLE, fifo(), needle="regular file"),
    "ansible /dev/zero": Case(("plan", "--ansible-facts", "/dev/zero"), needle="regular file"),
    "ansible not UTF-8": Case(ANSIBLE, raw(b"\xc3\x28{}"), needle="UTF-8"),
    "ansible nested": Case(ANSIBLE, nested(100_000), needle="nested"),
    "ansible printed, then garbage": Case(
        ANSIBLE, text("localhost | SUCCESS => {garbage"), needle="not JSON"
    ),
    "ansible memtotal Infinity": Case(
        ANSIBLE, text('{"ansible_memtotal_mb": Infinity}'), needle="Infinity"
    ),
    "ansible memtotal NaN": Case(ANSIBLE, text('{"ansible_memtotal_mb": NaN}'), needle="NaN"),
    "ansible memtotal 1e999": Case(
        ANSIBLE, text('{"ansible_memtotal_mb": 1e999}'), needle="1e999"
    ),
    "ansible memtotal 400 digits": Case(
        ANSIBLE, text('{"ansible_memtotal_mb": ' + BIG + "}"), needle="400-digit"
    ),
    "ansible memtotal arabic-indic": Case(
        ANSIBLE, ansible("memtotal_mb", "\u0663\u0663\u0663\u0663"), needle="memtotal_mb"
    ),
    "ansible memtotal a list": Case(ANSIBLE, ansible("memtotal_mb", [1024]), needle="memtotal_mb"),
    "ansible memtotal text": Case(ANSIBLE, ansible("memtotal_mb", "lots"), needle="memtotal_mb"),
    "ansible memtotal 0": Case(ANSIBLE, ansible("memtotal_mb", 0), needle="total_bytes"),
    "ansible memtotal negative": Case(
        ANSIBLE, ansible("memtotal_mb", -1024), needle="memory.total_bytes"
    ),
    "ansible vcpus negative": Case(ANSIBLE, ansible("processor_vcpus", -4), needle="cpu"),
    "ansible vcpus true": Case(ANSIBLE, ansible("processor_vcpus", True), needle="processor"),
    "ansible vcpus fraction": Case(
        ANSIBLE, ansible("processor_vcpus", 2.5), needle="processor_vcpus"
    ),
    "ansible default_ipv4 a string": Case(
        (*ANSIBLE, *SERVER), ansible("default_ipv4", "10.0.0.5"), needle="default_ipv4"
    ),
    "ansible default_ipv4 address a list": Case(
        (*ANSIBLE, *SERVER), ansible("default_ipv4", {"address": ["10.0.0.5"]}),
        needle="default_ipv4",
    ),
    "ansible default_ipv4 bad address": Case(
        (*ANSIBLE, *SERVER), ansible("default_ipv4", {"address": "999.0.0.1"}),
        needle="default_ipv4",
    ),
    "ansible mounts a string": Case(ANSIBLE, ansible("mounts", "/"), needle="mounts"),
    "ansible mount a string": Case(ANSIBLE, ansible("mounts", ["/"]), needle="mounts"),
    "ansible mount size text": Case(
        ANSIBLE, ansible("mounts", [{"mount": "/", "size_total": "big"}]), needle="size_total",
    ),
    "ansible architecture an object": Case(
        ANSIBLE, ansible("architecture", {"x": 1}), needle="architecture"
    ),
    "ansible missing memtotal": Case(
        ANSIBLE, _json_file(GOOD_ANSIBLE, lambda d: d.pop("ansible_memtotal_mb")),
        needle="memtotal_mb",
    ),
    "probe compressors a string": Case(
        ANSIBLE, probed("zram.compressors", "lz4"), needle="compressors"
    ),
    "probe quota infinite": Case(ANSIBLE, probed("cpu.cgroup_quota", "inf"), needle="quota"),
    "probe cgroup limit -1": Case(
        ANSIBLE, probed("memory.cgroup_limit_bytes", -1), needle="cgroup_limit_bytes"
    ),
    "probe a list": Case(ANSIBLE, probed("", ["cpu"]), needle="probe"),
    "probe cpu a string": Case(ANSIBLE, probed("cpu", "8"), needle="probe.cpu"),
    "probe device_present a string": Case(
        ANSIBLE, probed("zram.device_present", "false"), needle="device_present"
    ),
    # ---- the shared compile cache: store URLs, secret files, store switches
    "cache URL with |attributes": Case(remote("redis://127.0.0.1:6380|read-only"), secret(), needle="'|'"),
    "cache URL with a newline": Case(remote("redis://127.0.0.1:6380\nremote_only=true"), secret(), needle="--ccache-remote"),
    "cache URL with a space": Case(remote("redis://127.0.0.1 :6380"), secret(), needle="--ccache-remote"),
    "cache URL with userinfo": Case(remote("redis://u:pw@127.0.0.1:6380"), secret(), needle="user or password"),
    "cache URL userinfo trick": Case(remote("http://127.0.0.1:8380@10.0.0.9/cache/"), secret(), needle="'@'"),
    "cache URL unknown scheme": Case(remote("rediss://127.0.0.1:6380"), secret(), needle="scheme"),
    "cache URL file scheme": Case(remote("file:///var/cache/x"), secret(), needle="scheme"),
    "cache URL with #": Case(remote("http://127.0.0.1:8380/cache/#x"), secret(), needle="--ccache-remote"),
    "cache URL with ?": Case(remote("http://127.0.0.1:8380/cache/?x=1"), secret(), needle="--ccache-remote"),
    "cache URL port 0": Case(remote("redis://127.0.0.1:0"), secret(), needle="port"),
    "cache URL port 65536": Case(remote("redis://127.0.0.1:65536"), secret(), needle="port"),
    "cache URL numeric host": Case(remote("redis://2130706433:6380"), secret(), needle="2130706433"),
    "cache URL http path without /": Case(remote("http://127.0.0.1:8380/cache"), secret(), needle="ending with '/'"),
    "cache URL redis path": Case(remote("redis://127.0.0.1:6380/1"), secret(), needle="no path"),
    "cache URL dotdot path": Case(remote("http://127.0.0.1:8380/../etc/"), secret(), needle="--ccache-remote"),
    "cache URL control char": Case(remote("redis://127.0.0.1\x1b[2J:6380"), secret(), needle="--ccache-remote"),
    "cache secret is a FIFO": Case(remote(), fifo(), needle="not a regular file"),
    "cache secret world-readable": Case(remote(), secret(mode=0o644), needle="chmod 600"),
    "cache secret group-readable": Case(remote(), secret(mode=0o640), needle="0640"),
    "cache secret missing": Case(remote(), None, needle="no such file"),
    "cache secret a symlink": Case(remote(), symlink("/etc/hostname"), needle="symbolic link"),
    "cache secret a directory": Case(remote(), directory(), needle="not a regular file"),
    "cache secret two lines": Case(remote(), secret(GOOD_TOKEN + "\n" + GOOD_TOKEN + "\n"), needle="one line"),
    "cache secret with a |": Case(remote(), secret("abcdefghijklmnop|read-only\n"), needle="one line"),
    "cache secret empty": Case(remote(), secret(""), needle="one line"),
    "cache remote user with :": Case(remote("redis://127.0.0.1:6380", "--ccache-remote-user", "a:b"), secret(),
                                     needle="store user"),
    "cache remote write without remote": Case(plan_facts("--ccache-remote-write"), needle="--ccache-remote URL"),
    "cache remote without secret": Case(plan_facts("--ccache-remote", "redis://127.0.0.1:6380"),
                                        needle="--ccache-remote-secret"),
    "cache server without listen": Case(plan_facts("--ccache-server"), needle="--listen"),
    "cache server public listen without allow": Case(plan_facts("--ccache-server", "--listen", "10.1.2.3"),
                                                     needle="--allow"),
    "cache server allow the world": Case(
        plan_facts("--ccache-server", "--listen", "10.1.2.3", "--allow", "0.0.0.0/0"), needle="--allow"
    ),
    "cache server bad backend": Case(plan_facts("--ccache-server", "--listen", "127.0.0.1", "--ccache-backend", "memcached"),
                                     needle="--ccache-backend"),
    "cache server port 0": Case(plan_facts("--ccache-server", "--listen", "127.0.0.1", "--ccache-port", "0"),
                                needle="--ccache-port"),
    "cache client bad attribute": Case(
        plan_facts("--ccache-server", "--listen", "127.0.0.1", "--ccache-client", "laptop:admin"), needle=":write"
    ),
    "cache client twice": Case(
        plan_facts("--ccache-server", "--listen", "127.0.0.1", "--ccache-client", "a", "--ccache-client", "a:write"),
        needle="twice",
    ),
    "cache client without server": Case(plan_facts("--ccache-client", "laptop"), needle="--ccache-server"),
    "cache server and remote": Case(
        plan_facts("--ccache-server", "--listen", "127.0.0.1", "--ccache-remote", "redis://127.0.0.1:6380"),
        needle="give one",
    ),
    "ccache group user $(...)": Case(plan_facts("--ccache-group-add", "$(reboot)"), needle="--ccache-group-add"),
    "ccache group user empty": Case(plan_facts("--ccache-group-add", ""), needle="--ccache-group-add"),
    "ccache group user newline": Case(plan_facts("--ccache-group-add", "alice\nroot"), needle="--ccache-group-add"),
    "ccache private with a group": Case(plan_facts("--ccache-private", "--ccache-group-add", "alice"),
                                        needle="contradict"),
    "ccache private with a dir": Case(plan_facts("--ccache-private", "--ccache-dir", "/var/cache/ccache"),
                                      needle="contradict"),
    "ccache server with -i": Case(("apply", "--check", "-i", "inventory.ini", "--ccache-server", "--listen", "127.0.0.1"),
                                  needle="ccache_store"),
    "ccache client with -i": Case(("plan", "-i", "inventory.ini", "--ccache-client", "laptop"), needle="ccache_store"),
    "unknown area tag": Case(("apply", "--check", "--tags", "packages,pakages"), needle="pakages"),
    "ccache remote with -i": Case(
        ("apply", "--check", "-i", "inventory.ini", "--ccache-remote", "redis://10.0.0.5:6380",
         "--ccache-remote-secret", "/etc/hostname", "--ccache-remote-user", "ci"),
        needle="its own credential",
    ),
}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME and working directory: whatever kprov writes for a user lands here."""
    home = tmp_path / "home"
    home.mkdir()
    for var, sub in (("HOME", ""), ("XDG_STATE_HOME", ".local/state"), ("XDG_CACHE_HOME", ".cache"),
                     ("XDG_CONFIG_HOME", ".config")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("CCACHE_DIR", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_the_table_has_at_least_60_distinct_inputs():
    assert len(CASES) >= 60
    assert len({(c.args, c.make) for c in CASES.values()}) == len(CASES)


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_hostile_input_is_one_line_and_exit_2(name: str, sandbox: Path, capsys):
    case = CASES[name]
    target = sandbox / "input"
    if case.make is not None:
        case.make(target)
    args = [a.replace("{F}", str(target)).replace("{good}", str(GOOD_FACTS)) for a in case.args]
    before = snapshot()
    _, rc = Kprov.run(["kprov", *args], exit=False)
    out, err = capsys.readouterr()
    assert rc == 2, (out[-500:], err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kprov: ")
    assert case.needle in lines[0]
    assert "Traceback" not in err
    assert lines[0].isprintable()  # control characters from the input are escaped
    assert out == ""
    assert snapshot() == before


# --------------------------------------------------------------------------- the real process


def kprov(*args: str, cwd: Path | str | None = None, env: dict | None = None, stdout=subprocess.PIPE,
          prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "provision.cli"]
    return subprocess.run(
        [*prefix, *command, *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kprov: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_bare_kprov_is_usage_on_stderr_and_exit_2():
    result = kprov()
    assert result.returncode == 2
    assert result.stdout == ""
    assert "kprov plan" in one_line(result)


def test_stdout_closed_is_one_line_and_exit_1():
    close_stdout = ("sh", "-c", 'exec "$@" >&-', "sh")
    result = kprov("plan", "--facts", str(GOOD_FACTS), stdout=subprocess.DEVNULL, prefix=close_stdout)
    assert result.returncode == 1
    assert "standard output is closed" in one_line(result)


OUTPUTS = {
    "text": ("plan", "--facts", str(GOOD_FACTS)),
    "json": ("plan", "--facts", str(GOOD_FACTS), "--json"),
    "yaml": ("plan", "--facts", str(GOOD_FACTS), "--yaml"),
    "env": ("env", "--facts", str(GOOD_FACTS)),
    "help": ("--help",),  # printed by plumbum, not by kprov's own code
    "version": ("--version",),
}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("output", list(OUTPUTS))
def test_stdout_full_is_one_line_and_exit_1(output: str):
    with open("/dev/full", "w") as full:
        result = kprov(*OUTPUTS[output], stdout=full)
    assert result.returncode == 1
    assert "No space left on device" in one_line(result)


@pytest.mark.parametrize("output", ["text", "help"])
def test_stdout_a_closed_pipe_is_one_line_and_exit_1(output: str):
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write gets EPIPE
    try:
        result = kprov(*OUTPUTS[output], stdout=write_end)
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert "Broken pipe" in one_line(result)


def test_deleted_working_directory_is_one_line_and_exit_2(tmp_path: Path):
    gone = tmp_path / "gone"
    gone.mkdir()
    code = "import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); os.execv(sys.argv[2], sys.argv[2:])"
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "provision.cli"]
    result = subprocess.run(
        [sys.executable, "-c", code, str(gone), *command, "plan", "--json"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert "current directory" in one_line(result)


@pytest.mark.parametrize(
    "env", [{"LC_ALL": "C", "PYTHONUTF8": "0"}, {"PYTHONIOENCODING": "ascii"}], ids=["LC_ALL=C", "ascii-io"]
)
def test_non_ascii_host_name_under_an_ascii_locale(tmp_path: Path, env: dict):
    data = json.loads(GOOD_FACTS.read_text())
    data["hostname"] = "h\u00f6st-\u0663"
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(data))
    for fmt in ((), ("--json",), ("--yaml",)):
        result = kprov("plan", "--facts", str(path), *fmt, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert result.stdout.isascii()
    report = kprov("plan", "--facts", str(path), env=env).stdout
    assert "h\\xf6st-\\u0663" in report.splitlines()[0]


def run_as_nobody(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    if os.geteuid() != 0:
        return kprov(*args, cwd=tmp_path)
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv to run kprov as another user")
    home = tmp_path / "nobody"
    home.mkdir()
    home.chmod(0o777)
    return kprov(*args, cwd=home, env={"HOME": str(home)},
                 prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))


@pytest.mark.parametrize("where", [(), ("-i", "inventory.ini")], ids=["local", "inventory"])
def test_apply_as_a_normal_user_is_refused_before_anything_runs(tmp_path: Path, where: tuple[str, ...]):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local\n")
    inventory.chmod(0o644)
    args = [a.replace("inventory.ini", str(inventory)) for a in where]
    before = snapshot()
    result = run_as_nobody("apply", *args, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "root" in one_line(result)
    assert result.stdout == ""
    assert snapshot() == before
    assert not (tmp_path / "nobody" / ".local").exists()  # no run directory: nothing ran


# --------------------------------------------------------------------------- inert output


def hostile_facts(tmp_path: Path, **changes: object) -> Path:
    data = json.loads(GOOD_FACTS.read_text())
    for dotted, value in changes.items():
        _put(data, dotted.replace("__", "."), value)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(data))
    return path


def test_eval_of_kprov_env_runs_nothing_from_a_hostile_host_name(tmp_path: Path):
    marker = tmp_path / "pwned"
    path = hostile_facts(
        tmp_path,
        hostname=f"x\ntouch {marker}\n# ",
        distro__name=f"$(touch {marker})",
        cpu__model=f"`touch {marker}`",
    )
    result = kprov("env", "--facts", str(path))
    assert result.returncode == 0, result.stderr
    assert "touch" not in result.stdout  # nothing from the facts file is printed at all
    shown = subprocess.run(
        ["bash", "-c", 'eval "$1"; printf %s "$MAKEFLAGS"', "bash", result.stdout],
        capture_output=True, text=True, check=True,
    )
    assert shown.stdout.startswith("-j")
    assert not marker.exists()


def test_report_escapes_control_characters_of_foreign_text(tmp_path: Path):
    path = hostile_facts(
        tmp_path,
        hostname="evil\x1b]0;owned\x07\x1b[2J",
        distro__id="deb\u202eian",
        cpu__model="cpu\rX",
        disks__0__path="/home/dev/src/\x1b[31mlinux",
    )
    result = kprov("plan", "--facts", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "\r" not in out
    assert "evil\\x1b]0;owned\\x07\\x1b[2J" in out
    assert all(line.isprintable() for line in out.splitlines())


def test_fleet_table_escapes_control_characters():
    row = {"host": "web\x1b[31m1\nEVIL", "cores": 2, "ram": "1.0 GiB", "jobs": 2, "zram": "off", "ccache": "off",
           "distcc": "server"}
    headers = {k: k.upper() for k in row}
    text = render.render_template(
        "fleet.txt.j2", rows=[row], headers=headers, widths={k: 12 for k in row},
        farm={"servers": [{"host": row["host"], "listen": "10.0.0.5", "jobs": 4, "allow": ["10.0.0.0/24"]}],
              "clients": []},
        warnings=[(row["host"], "odd\x1b[0m warning")],
    )
    assert "\x1b" not in text
    assert "web\\x1b[31m1\\nEVIL" in text
    assert all(line.isprintable() for line in text.splitlines())


def test_error_lines_escape_what_they_quote(tmp_path: Path, capsys):
    weird = tmp_path / "bad\x1b[2Jname\nnext.json"
    _, rc = Kprov.run(["kprov", "plan", "--facts", str(weird)], exit=False)
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert "\x1b" not in err and "bad\\x1b[2Jname" in err


# --------------------------------------------------------------------------- fuzzing the loaders

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
GOOD = json.loads(GOOD_FACTS.read_text())
ANSIBLE = json.loads(GOOD_ANSIBLE.read_text())
PROBE_DATA = json.loads(PROBE.read_text())


def _paths(data: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*prefix, i))
    return found


def _replace(data: object, path: tuple, value: object) -> object:
    copy = json.loads(json.dumps(data))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def _plan_or_user_error(load: Callable[[], HostFacts]) -> None:
    try:
        facts = load()
    except UserError:
        return
    try:
        plan(facts, Goals(), load_catalog())
    except UserError:
        pass


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.data())
def test_any_value_anywhere_in_a_facts_file_is_a_plan_or_a_user_error(data):
    path = data.draw(st.sampled_from(_paths(GOOD)))
    mutated = _replace(GOOD, path, data.draw(json_values))
    text = json.dumps(mutated, allow_nan=True)  # NaN/Infinity too: the loader must refuse them
    _plan_or_user_error(lambda: HostFacts.from_dict(parse_json(text, "--facts F"), where=""))


@FUZZ
@given(value=json_values)
def test_any_json_document_is_a_plan_or_a_user_error(value):
    text = json.dumps(value, allow_nan=True)
    _plan_or_user_error(lambda: HostFacts.from_dict(parse_json(text, "--facts F"), where=""))


@FUZZ
@given(data=st.data())
def test_any_value_anywhere_in_ansible_facts_is_a_plan_or_a_user_error(data):
    base = {**ANSIBLE, "probe": PROBE_DATA}
    path = data.draw(st.sampled_from(_paths(base)))
    mutated = _replace(base, path, data.draw(json_values))
    _plan_or_user_error(lambda: facts_from_ansible(mutated, mutated.get("probe")))
