"""Why an apply failed, in one line: the cause a failed task's result names, and what to do.

Ansible reports a failed task as a result dict (``msg``, ``stderr``, ``stdout``, ``rc``, ``cmd``,
``results`` for loops, ``module_stderr`` for a module that crashed). The cause is often buried:
the apt module's ``msg`` starts with the whole ``apt-get`` command line, and the line that says
why comes after it. :func:`cause_of` finds the cause among the ones kprov knows - an interrupted
dpkg, a package manager lock held by another run, an unreachable mirror, a full filesystem, a run
without root, a package this release does not have, a port already taken - and gives each a hint;
anything else is the first meaningful line of the message. :func:`cause_line` is what kprov
prints last when an apply fails::

    apply failed at 'Install the packages (apt)': the package mirror deb.debian.org is
    unreachable (through the proxy 127.0.0.1:9: connection refused); check the network, and the
    mirror and proxy settings of the package manager

Pure: no I/O, nothing imported from Ansible. The patterns are the messages of apt, dpkg, dnf,
rpm, zypper, pacman, apk, distccd and Ansible itself as those tools print them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provision import calibration as cal

#: Longest line :func:`cause_line` returns (the step's name included).
CAUSE_LINE_MAX = 200


#: Longest task name quoted in a cause line; the role's names are far shorter.
TASK_NAME_MAX = 60


#: The port distccd listens on unless told otherwise.
DISTCC_PORT = cal.DISTCC_PORT


DPKG_INTERRUPTED = "dpkg-interrupted"


LOCK_HELD = "lock-held"


MIRROR_UNREACHABLE = "mirror-unreachable"


MIRROR_STALE = "mirror-stale"


NO_SPACE = "no-space"


NOT_ROOT = "not-root"


NO_PACKAGE = "no-package"


PORT_IN_USE = "port-in-use"


ADDRESS_NOT_HERE = "address-not-here"


UNREACHABLE = "unreachable"


OTHER = "other"


@dataclass(frozen=True)
class Cause:
    """What went wrong (``text``), what to do about it (``hint``), and which known cause it is."""

    kind: str
    text: str
    hint: str = ""
    short_hint: str = ""  # the hint when ``text; hint`` is too long (a command line is never cut)

    def line(self, limit: int = CAUSE_LINE_MAX) -> str:
        """``text; hint`` in at most ``limit`` characters: a shorter hint, then a cut text, never a cut hint."""
        for hint in (self.hint, self.short_hint):
            full = f"{self.text}; {hint}" if hint else self.text
            if len(full) <= limit:
                return full
        hint = self.short_hint or self.hint
        if hint and len(hint) <= limit // 2:
            return f"{_cut(self.text, limit - len(hint) - 2)}; {hint}"
        return _cut(self.text, limit)


def cause_line(task: str, area: str, result: Any, limit: int = CAUSE_LINE_MAX) -> str:
    """``apply failed at 'TASK': CAUSE; HINT`` in at most ``limit`` characters.

    ``task`` is the failed task's name, ``area`` the part of the role it belongs to (its task file:
    packages, zram, ccache, distcc, hosts, buildenv; it names the step when the task has no name
    and tells which port a service uses), ``result`` the task's result dict as Ansible reports it.
    """
    step = _flat(task)
    where = f"at '{_cut(step, TASK_NAME_MAX)}'" if step else f"in {area}" if area else ""
    head = f"apply failed {where}: " if where else "apply failed: "
    return head + cause_of(result, area).line(max(40, limit - len(head)))


def failure_lines(failures: Mapping[str, tuple[str, str, Any]], limit: int = CAUSE_LINE_MAX) -> list[str]:
    """One ``HOST: apply failed at ...`` line per failed host (host -> (task, area, result)), by host.

    In a fleet every failed host gets its own line, so one host's failure never hides another's.
    """
    lines = []
    for host in sorted(failures):
        task, area, result = failures[host]
        head = f"{host}: "
        lines.append(head + cause_line(task, area, result, max(60, limit - len(head))))
    return lines


def cause_of(result: Any, area: str = "") -> Cause:
    """The known cause a failed task's result shows, with its hint; else its first meaningful line."""
    result = _failed_item(result)
    if not isinstance(result, Mapping):
        return Cause(OTHER, _cut(_flat(str(result)), CAUSE_LINE_MAX) or "failed (no message)")
    if result.get("unreachable"):  # Ansible could not reach the host at all: no package manager involved
        return Cause(UNREACHABLE, f"host unreachable: {first_meaningful_line(result)}",
                     "check that it is up and that Ansible can log in")
    texts = _texts(result)
    text = "\n".join(texts)
    for finder in (_dpkg_module, _dpkg_interrupted, _not_root, _lock_held, _no_space, _mirror,
                   _no_package, _package_script, _port_in_use, _address_not_here):
        found = finder(result, text, area)
        if found is not None:
            return found
    return Cause(OTHER, first_meaningful_line(result))


def _failed_item(result: Any) -> Any:
    """A loop's result names its failed item's result; a plain result is itself."""
    if isinstance(result, Mapping) and isinstance(result.get("results"), list):
        for item in result["results"]:
            if isinstance(item, Mapping) and (item.get("failed") or item.get("unreachable")):
                return _failed_item(item)
    return result


def _texts(result: Mapping[str, Any]) -> list[str]:
    """The result's messages, most telling first: msg, stderr, then what else carries output."""
    texts = []
    for key in ("msg", "reason", "stderr", "module_stderr", "failures", "results", "warnings", "stdout",
                "module_stdout", "exception"):
        value = result.get(key)
        if isinstance(value, (list, tuple)):
            value = "\n".join(str(v) for v in value if isinstance(v, (str, int, float)))
        if value:
            texts.append(_strip_prefixes(str(value)))
    return texts


def _strip_prefixes(text: str) -> str:
    """Without ansible-core's ``Task failed:`` prefixes and a leading quoted command line."""
    text = text.strip()
    for prefix in ("Task failed: ", "Module failed: ", "Action failed: "):
        text = text.removeprefix(prefix)
    # the apt module: "'/usr/bin/apt-get -y -o ... install 'bc=1.07'' failed: E: ..."
    text = re.sub(r"\A'[^\n]*?' failed:\s*", "", text)
    # the apt module's .deb path: "dpkg --force-confdef --force-confold -i /tmp/x.deb failed"
    text = re.sub(r"\A(?:/\S*/)?(?:dpkg|apt-get|apt|dnf|yum|zypper|pacman|apk|rpm)\s[^\n]*? failed(?::\s*|\s*$)",
                  "", text)
    return text


def _flat(text: str) -> str:
    return " ".join(str(text).split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 3)].rstrip() + "..."


#: Lines that say nothing about a failure: apt's progress, Ansible's boilerplate, tracebacks' heads.
_NOISE = re.compile(
    r"^(?:Reading package lists|Building dependency tree|Reading state information|Reading database"
    r"|WARNING: apt does not have a stable CLI|debconf: |Traceback \(most recent call last\)"
    r"|See stdout/stderr for the exact error|non-zero return code$|MODULE FAILURE$"
    r"|The following|\d+ upgraded, |Need to get |After this operation|Get:\d|Hit:\d|Ign:\d"
    r"|Selecting previously unselected|Preparing to unpack|Unpacking |Setting up |Processing triggers"
    r"|Last metadata expiration check|Dependencies resolved|Nothing to do|loading packages|resolving dependencies)"
)


#: Lines that announce the error itself.
_ERROR_LINE = re.compile(r"^(?:E:|ERROR\b|Error:|error:|fatal:|FATAL|dpkg: error|[\w.-]+: error:)", re.IGNORECASE)


def first_meaningful_line(result: Mapping[str, Any]) -> str:
    """The line of msg or stderr that says what failed - never the whole command line that ran.

    An error-looking line (``E:``, ``error:``) of msg or stderr first; else the first line of msg
    that is not progress chatter; else the last line of a crashed module's output (a
    traceback's last line is its exception).
    """
    cmd = result.get("cmd")
    commands = set()
    if cmd:
        commands.add(" ".join(str(c) for c in cmd) if isinstance(cmd, (list, tuple)) else str(cmd))

    def lines(key: str) -> list[str]:
        value = result.get(key)
        if isinstance(value, (list, tuple)):
            value = "\n".join(str(v) for v in value)
        out = []
        for ln in _strip_prefixes(str(value or "")).splitlines():
            ln = _flat(ln)
            if ln and not _NOISE.match(ln) and ln not in commands:
                out.append(ln)
        return out

    msg, stderr = lines("msg"), lines("stderr")
    for ln in msg + stderr:
        if _ERROR_LINE.match(ln):
            return _cut(ln, CAUSE_LINE_MAX)
    for ln in msg + stderr:
        return _cut(ln, CAUSE_LINE_MAX)
    crashed = lines("module_stderr") or lines("exception") or lines("module_stdout") or lines("stdout")
    if crashed:
        return _cut(crashed[-1], CAUSE_LINE_MAX)
    rc = result.get("rc")
    return f"failed with exit status {rc}" if rc not in (None, 0, "") else "failed (no message)"


def _dpkg_module(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    """The role's kbuild_host_dpkg found an interrupted dpkg and did not (or could not) repair it."""
    commands = result.get("commands")
    if not result.get("interrupted") or not isinstance(commands, list) or not commands:
        return None
    todo = "run as root: " + " && ".join(str(c) for c in commands)
    short = "the failed task names the commands that repair it"
    reason = result.get("reason")
    if reason in ("check_mode", "repair_off"):
        flag = "--check" if reason == "check_mode" else "--no-repair"
        return Cause(DPKG_INTERRUPTED, "dpkg was interrupted", f"{todo}, or rerun without {flag}",
                     f"rerun without {flag} to repair it; {short}")
    if reason == "removal":
        return Cause(DPKG_INTERRUPTED, "dpkg was interrupted while removing packages", todo, short)
    if result.get("ran"):
        script = _package_script(result, text, area)
        why = re.search(r"exited \d+: (.*)", text)
        detail = script.text if script else _flat(why.group(1)) if why else ""
        failed = "repairing dpkg failed" + (f": {detail}" if detail else "")
        return Cause(DPKG_INTERRUPTED, failed, f"{todo}, and read its errors", short)
    return None


def _dpkg_interrupted(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    if re.search(r"dpkg was interrupted", text):
        return Cause(DPKG_INTERRUPTED, "dpkg was interrupted",
                     "rerun kprov apply to repair it, or run dpkg --configure -a")
    bad = re.search(r"package ([\w.+:-]+)[^\n]*?\bis in a very bad inconsistent state", text)
    if bad or "very bad inconsistent state" in text:
        name = bad.group(1) if bad else None
        what = f"package {name} is half-installed" if name else "a package is half-installed"
        return Cause(DPKG_INTERRUPTED, what, f"run apt-get install --reinstall {name or 'PACKAGE'}")
    return None


_NOT_ROOT = re.compile(
    r"Destination \S+ not writable|are you root\?|unless you are root|has to be run with superuser privileges"
    r"|Root privileges are required|must be run as root|need to be root|Missing sudo password"
    r"|Incorrect sudo password|sudo: a (?:terminal|password) is required|Permission denied"
)


def _not_root(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    m = _NOT_ROOT.search(text)
    if m is None:
        return None
    hint = "run kprov apply as root (sudo kprov apply), or let Ansible become root on the host"
    if "sudo" in m.group(0):
        return Cause(NOT_ROOT, "becoming root needs a sudo password",
                     "give Ansible the become password, or let this user sudo without one")
    if m.group(0).startswith("Destination "):  # Ansible's file modules
        return Cause(NOT_ROOT, f"{m.group(0).removeprefix('Destination ')} for this user", hint)
    if m.group(0) == "Permission denied":
        path = _path_on_line(text, m)
        return Cause(NOT_ROOT, f"permission denied: {path}" if path else "permission denied", hint)
    return Cause(NOT_ROOT, "the package manager needs root", hint)


def _lock_held(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    holder = result.get("lock_holder")
    if isinstance(holder, Mapping) and holder.get("pid"):
        name = f" ({holder['name']})" if holder.get("name") else ""
        return Cause(LOCK_HELD, f"another package run holds the dpkg lock: pid {holder['pid']}{name}",
                     "wait for it to finish, or stop it")
    m = re.search(r"Could not get lock (\S+?)\.? It is held by process (\d+)(?: \(([^)]+)\))?", text)
    if m:
        name = f" ({m.group(3)})" if m.group(3) else ""
        return Cause(LOCK_HELD, f"{m.group(1)} is held by pid {m.group(2)}{name}, another package run",
                     "wait for it to finish, or stop it")
    m = re.search(r"System management is locked by the application with pid (\d+) \(([^)]+)\)", text)
    if m:
        return Cause(LOCK_HELD, f"zypper's lock is held by pid {m.group(1)} ({m.group(2)})",
                     "wait for it to finish, or stop it")
    m = re.search(r"(?:frontend lock was locked|status database is locked) by another process(?: with pid (\d+))?",
                  text)
    if m:
        pid = f" (pid {m.group(1)})" if m.group(1) else ""
        return Cause(LOCK_HELD, f"another package run holds the dpkg lock{pid}", "wait for it to finish, or stop it")
    if re.search(r"Could not get lock|Unable to acquire the dpkg frontend lock"
                 r"|Failed to lock apt for exclusive operation|Unable to lock (?:the administration )?directory", text):
        lock = re.search(r"(?:Could not get lock|lock) \(?(/[^\s),]+?)\)?[.,]?(?:\s|$)", text)
        where = f" ({lock.group(1)})" if lock else ""
        return Cause(LOCK_HELD, f"another package run holds apt's lock{where}",
                     "wait for it to finish; 'fuser -v /var/lib/dpkg/lock-frontend' names it")
    if re.search(r"unable to lock database|db\.lck", text):
        return Cause(LOCK_HELD, "pacman's database is locked (/var/lib/pacman/db.lck)",
                     "wait for the running pacman; if none runs, a killed one left it: remove /var/lib/pacman/db.lck")
    m = re.search(r"Waiting for process with pid (\d+)", text)
    if m or re.search(r"rpm transaction lock|\.rpm\.lock|Another transaction is in progress", text):
        pid = f" (pid {m.group(1)})" if m else ""
        return Cause(LOCK_HELD, f"another dnf or rpm run holds the rpm lock{pid}",
                     "wait for it; after a killed run, 'dnf history info last' shows what it left unfinished")
    if re.search(r"Unable to lock database", text):
        return Cause(LOCK_HELD, "apk's database is locked (/lib/apk/db/lock)", "wait for the running apk to finish")
    return None


_NO_SPACE = re.compile(
    r"No space left on device|not enough free space|don't have enough free space|Insufficient disk space"
    r"|more space needed on the|too full:|Disk quota exceeded",
    re.IGNORECASE,
)


def _no_space(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    m = _NO_SPACE.search(text)
    if m is None:
        return None
    line = _line_of(text, m)
    where: str | None = None
    directory = True
    for pattern, is_dir in (
        (r"free space in (/\S*?)\.?(?:\s|$)", True),  # apt
        (r"needed on the (\S+) filesystem", True),  # dnf
        (r"Partition (/\S*) too full", True),  # pacman
        (r"cannot create directory [‘'\"]?(/[^’'\"\s]+)", True),
        (r"to '(/[^']+)': failed to write", False),  # dpkg unpacking a file
        (r"No space left on device: '(/[^']+)'", False),  # Python's OSError
        (r"'(/[^']+)'", False),
        (r"(?<![\w/])(/[\w.+@%-][\w./+@%-]*)", False),
    ):
        found = re.search(pattern, line)
        if found:
            where, directory = found.group(1).rstrip("."), is_dir
            break
    if where is None:
        return Cause(NO_SPACE, "no space left on device", "free some space ('df -h' shows the full filesystem)")
    fs = where.rstrip("/") or "/" if directory else posixpath.dirname(where.rstrip("/")) or "/"
    text_ = f"no space left on the filesystem of {fs}" if directory else f"no space left writing {where}"
    return Cause(NO_SPACE, text_, f"free some space there (df -h {fs})")


_NET = re.compile(
    r"Could not connect to|Unable to connect to|Temporary failure resolving|Could not resolve|Couldn't connect"
    r"|Couldn't resolve|Failed to connect to|Connection refused|Connection timed out|connection timed out"
    r"|Network is unreachable|No route to host|network error|DNS lookup error|Connection failed"
    r"|Cannot find a valid baseurl|Cannot download repomd|Failed to download metadata|from proxy"
    r"|Proxy Authentication Required",
    re.IGNORECASE,
)


def _mirror(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    hint, short_hint = "check the network, proxy and mirror settings", "check the network"
    m = _NET.search(text)
    if m is None and "Failed to update apt cache" in text:
        # python-apt gives the apt module no reason for a failed update: apt-get update shows it
        return Cause(MIRROR_UNREACHABLE, "apt could not download its package lists",
                     "run apt-get update to see which mirror or proxy fails")
    if m is None:
        stale = re.search(r"Failed to fetch (\S+)\s+404\b", text)
        if stale:
            host = urlsplit(stale.group(1)).hostname or stale.group(1)
            return Cause(MIRROR_STALE, f"the package mirror {host} no longer has a file the package lists name",
                         "the lists are out of date: apt-get update, then rerun")
        return None
    line = _line_of(text, m)
    url = re.search(r"\b(?:https?|ftp)://[^\s'\"]+", line) or re.search(r"\b(?:https?|ftp)://[^\s'\"]+", text)
    if url is None and area not in ("", "packages"):
        return None  # a refused connection outside the package step is not about a mirror
    mirror = urlsplit(url.group(0)).hostname if url else None
    target = None
    for pattern in (
        r"Could not connect to (\S+?)(?::(\d+))? \(",  # apt: "Could not connect to HOST:PORT (ADDRESS)"
        r"Could not connect to (\S+?)(?::(\d+))?[.,]?(?:\s|$)",
        r"Unable to connect to ([\w.-]+)(?::(\w+))?",
        r"Failed to connect to ([\w.:-]+?) port (\d+)",
        r"Temporary failure resolving '([^']+)'()",
        r"Could not resolve (?:host: )?'?([\w.-]+)'?()",
        r"Couldn't resolve (?:proxy|host) (?:name )?'?([\w.-]+)'?()",
    ):
        found = re.search(pattern, text)
        if found:
            target = found.group(1) + (f":{found.group(2)}" if found.group(2) else "")
            break
    lowered = text.lower()
    reason = (
        "connection refused" if "connection refused" in lowered
        else "connection timed out" if "timed out" in lowered
        else "name not resolved" if re.search(r"resolv|dns lookup", lowered)
        else "network unreachable" if "network is unreachable" in lowered or "no route to host" in lowered
        else "proxy error" if "proxy" in lowered
        else "unreachable"
    )
    target_host = target.rsplit(":", 1)[0] if target and target.count(":") == 1 else target
    if mirror and target and target_host != mirror:
        return Cause(MIRROR_UNREACHABLE,
                     f"the package mirror {mirror} is unreachable (through the proxy {target}: {reason})",
                     hint, short_hint)
    host = mirror or target_host
    if host:
        return Cause(MIRROR_UNREACHABLE, f"the package mirror {host} is unreachable ({reason})", hint, short_hint)
    return Cause(MIRROR_UNREACHABLE, f"the package mirror is unreachable ({reason})", hint, short_hint)


_NO_PACKAGE = (
    r"Unable to locate package (\S+)",
    r"No package matching '([^']+)'",
    r"Package '?([^'\s]+)'? has no installation candidate",
    r"Couldn't find any package by (?:glob|regex) '([^']+)'",
    r"No match for argument:? (\S+)",
    r"Unable to find a match:? (\S+)",
    r"No package (\S+) available",
    r"target not found: (\S+)",
    r"No provider of '([^']+)' found",
    r"'([^']+)' not found in package names",
    r"(\S+) \(no such package\)",
)


def _no_package(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    for pattern in _NO_PACKAGE:
        m = re.search(pattern, text)
        if m:
            name = m.group(1).rstrip(".,:;")
            return Cause(NO_PACKAGE, f"package {name} does not exist for this release",
                         "check its name in this distribution's package index, or leave it out of kbuild_host_packages")
    return None


def _package_script(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    """A package's maintainer script failed (dpkg says which package and which script)."""
    m = re.search(r"installed ([\w.+:-]+) package ([\w-]+) script subprocess returned error exit status (\d+)", text)
    if m is None:
        return None
    package, script, status = m.groups()
    return Cause(OTHER, f"the {script} script of {package} exited with status {status}",
                 "its output is in the run's artifacts; dpkg --configure -a runs it again")


def _port_in_use(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    m = re.search(r"Address already in use|address already in use|EADDRINUSE", text)
    if m is None:
        return None
    line = _line_of(text, m)
    bound = (re.search(r"bind (?:of |to )?\[?([\w.:]*?)\]?:(\d+)\b", line)
             or re.search(r"\[?([\d.:a-fA-F]+?)\]?:(\d+)\b", line))
    port = bound.group(2) if bound else (re.search(r"\bport (\d+)", line) or [None, None])[1]
    if port is None and area == "distcc":
        port = str(DISTCC_PORT)
    service = "distccd" if "distcc" in text or area == "distcc" else "the service"
    if port:
        on = f" on {bound.group(1)}" if bound and bound.group(1) not in ("", "0.0.0.0", "::") else ""
        return Cause(PORT_IN_USE, f"port {port}{on} is already in use, so {service} cannot listen",
                     f"'ss -ltnp sport = :{port}' names the process that has it")
    return Cause(PORT_IN_USE, f"the port {service} listens on is already in use",
                 "'ss -ltnp' names the process that has it")


def _address_not_here(result: Mapping[str, Any], text: str, area: str) -> Cause | None:
    m = re.search(r"Cannot assign requested address", text)
    if m is None:
        return None
    bound = re.search(r"bind (?:of |to )?\[?([\w.:]*?)\]?:(\d+)\b", _line_of(text, m))
    what = f"the listen address {bound.group(1)}" if bound else "the listen address"
    return Cause(ADDRESS_NOT_HERE, f"{what} is not an address of this host",
                 "listen on one of the host's own addresses")


def _line_of(text: str, m: re.Match[str]) -> str:
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    return text[start : end if end >= 0 else len(text)]


def _path_on_line(text: str, m: re.Match[str]) -> str | None:
    line = _line_of(text, m)
    found = re.search(r"'(/[^']+)'", line) or re.search(r"(?<![\w/])(/[\w.+@%-][\w./+@%-]*)", line)
    return found.group(1).rstrip(".:,") if found else None
