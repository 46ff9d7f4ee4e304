#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kprov developers
# Apache License 2.0 (see LICENSE, or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kbuild_host_dpkg
short_description: Find an interrupted dpkg run and finish it before packages are installed
description:
  - Waits for the dpkg frontend lock (C(/var/lib/dpkg/lock-frontend), the lock apt and dpkg take) and, holding
    it, looks for what a killed dpkg leaves behind, the states C(dpkg --audit) reports.
  - Those are journal entries under C(/var/lib/dpkg/updates) (apt then refuses to run with "dpkg was
    interrupted"), and packages left half-installed, unpacked, half-configured, awaiting or pending triggers, or
    marked for reinstall.
  - With O(repair=true), outside check mode, it runs C(dpkg --configure -a) with C(--force-confold) and
    C(DEBIAN_FRONTEND=noninteractive), as unattended-upgrades does, then C(apt-get install --reinstall) for the
    packages still half-installed. Maintainer scripts of every pending package run, not only kprov's.
  - In check mode or with O(repair=false) it changes nothing and fails, naming the commands that repair the host.
  - A package that was being removed when dpkg stopped is never reinstalled or removed by this module.
  - When another package run still holds the lock after O(lock_timeout) seconds, it fails naming that process.
  - From the same read of dpkg's database it says which of O(wanted) are not installed yet.
version_added: "0.1.0"
author:
  - kprov developers (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  repair:
    description:
      - Repair an interrupted dpkg. When false, an interrupted dpkg is a failure naming the commands to run.
    type: bool
    default: true
  lock_timeout:
    description:
      - Seconds to wait for another package run to release the dpkg frontend lock. A negative value counts as 0.
    type: int
    default: 60
  wanted:
    description:
      - Packages the role is about to install; the module says which of them are not installed
        yet (RV(missing)), from the same read of dpkg's database, so a host that has them all
        needs no apt run.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: In check mode it only reads dpkg's state, under a shared lock, and fails when dpkg was interrupted.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: debian
notes:
  - Needs only the Python standard library, dpkg and apt-get on the managed host (Debian family). Without
    C(/var/lib/dpkg) it changes nothing and reports nothing interrupted.
"""

EXAMPLES = r"""
- name: Repair an interrupted dpkg before installing
  kprov.kbuild.kbuild_host_dpkg:
    repair: true
  register: __kbuild_host_dpkg

- name: Fail on an interrupted dpkg instead, and say which packages are missing
  kprov.kbuild.kbuild_host_dpkg:
    repair: false
    lock_timeout: 300
    wanted: [build-essential, ccache, distcc]
  register: __kbuild_host_dpkg
"""

RETURN = r"""
interrupted:
  description: Whether dpkg was found interrupted.
  returned: always
  type: bool
  sample: false
journal:
  description: Names of the pending journal entries under C(/var/lib/dpkg/updates).
  returned: always
  type: list
  elements: str
  sample: ["0001"]
packages:
  description: Packages in an unfinished state, before any repair.
  returned: always
  type: list
  elements: dict
  sample: [{"package": "git", "want": "install", "flag": "reinstreq", "status": "half-installed"}]
  contains:
    package:
      description: The package name, with its architecture when dpkg gives one.
      type: str
    want:
      description: The first word of dpkg's Status field, such as V(install), V(hold), V(deinstall) or V(purge).
      type: str
    flag:
      description: The second word of dpkg's Status field, such as V(ok) or V(reinstreq).
      type: str
    status:
      description: The third word of dpkg's Status field, such as V(half-installed) or V(unpacked).
      type: str
commands:
  description: The commands that repair the host, as a person runs them (as root).
  returned: when interrupted
  type: list
  elements: str
  sample: ["dpkg --configure -a", "apt-get install --reinstall git"]
missing:
  description:
    - Those of O(wanted) whose status is not C(install ok installed) (a virtual package name always
      counts as missing); all of O(wanted) after a repair.
  returned: success
  type: list
  elements: str
  sample: [distcc]
ran:
  description: The commands this module ran, exactly.
  returned: always
  type: list
  elements: str
  sample: ["DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a"]
reason:
  description: Why nothing was repaired.
  returned: when interrupted and not repaired
  type: str
  choices: [check_mode, repair_off, removal]
  sample: check_mode
stdout:
  description: What the repair commands printed, each after a C($ command) line.
  returned: when a repair ran
  type: str
lock_holder:
  description: The process holding the dpkg frontend lock when waiting for it timed out, V(null) when unknown.
  returned: on a lock timeout
  type: dict
  sample: {"pid": 4242, "name": "apt-get", "cmdline": "apt-get install -y git"}
  contains:
    pid:
      description: Its process ID.
      type: int
    name:
      description: Its name (C(/proc/PID/comm)), empty when unreadable.
      type: str
    cmdline:
      description: Its command line, empty when unreadable.
      type: str
"""

import errno
import fcntl
import os
import struct
import time

from ansible.module_utils.basic import AnsibleModule

ADMIN_DIR = "/var/lib/dpkg"
FRONTEND_LOCK = ADMIN_DIR + "/lock-frontend"
UPDATES_DIR = ADMIN_DIR + "/updates"
#: dpkg states a finished run never leaves behind.
UNFINISHED = ("half-installed", "unpacked", "half-configured", "triggers-awaited", "triggers-pending")
#: dpkg cannot configure these: only unpacking the package again (a reinstall) finishes them.
NEEDS_REINSTALL = ("half-installed",)
#: What unattended-upgrades uses: no debconf questions, and a changed conffile keeps the local version.
ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}
CONFIGURE = ["dpkg", "--force-confold", "--configure", "-a"]
REINSTALL = ["apt-get", "install", "-y", "--reinstall", "-o", "Dpkg::Options::=--force-confold"]
LOCK_POLL_SECONDS = 0.5


def lock_holder(fd):
    """pid, name and command line of the process holding a POSIX lock on ``fd``, or None."""
    if struct.calcsize("P") != 8:  # the struct flock layout below is the 64-bit one
        return None
    request = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, request)
    except OSError:
        return None
    l_type, _, _, _, pid = struct.unpack("hhqqi", answer)
    if l_type == fcntl.F_UNLCK or pid <= 0:
        return None
    holder = {"pid": pid, "name": "", "cmdline": ""}
    try:
        with open("/proc/%d/comm" % pid) as f:
            holder["name"] = f.read().strip()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            holder["cmdline"] = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        pass
    return holder


def describe_holder(holder):
    if not holder:
        return "another process"
    text = "pid %d" % holder["pid"]
    if holder.get("name"):
        text += " (%s)" % holder["name"]
    return text


class FrontendLock(object):
    """The dpkg frontend lock, the fcntl lock apt and dpkg take; waited for, never broken."""

    def __init__(self, module, timeout):
        self.module = module
        self.timeout = timeout
        self.fd = None

    def acquire(self):
        """Take the lock; returns False when this user may not open it (a check run as non-root)."""
        # Check mode only reads dpkg's state: a shared lock on a read-only descriptor still waits
        # for a running apt, and opening the file for writing would modify the host (an overlay
        # file system copies it up, a fresh one gets created).
        check = self.module.check_mode
        flags = (os.O_RDONLY if check else os.O_RDWR | os.O_CREAT) | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self.fd = os.open(FRONTEND_LOCK, flags, 0o640)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT) and self.module.check_mode:
                return False
            self.module.fail_json(msg="cannot open the dpkg lock %s: %s (run as root)" % (FRONTEND_LOCK, exc.strerror),
                                  interrupted=False, journal=[], packages=[], ran=[])
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.lockf(self.fd, (fcntl.LOCK_SH if check else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
            if time.monotonic() >= deadline:
                holder = lock_holder(self.fd)
                self.release()
                self.module.fail_json(
                    msg="the dpkg lock %s is held by %s, another package run, after waiting %d s: "
                        "wait for it to finish, or stop it" % (FRONTEND_LOCK, describe_holder(holder), self.timeout),
                    lock_holder=holder, interrupted=False, journal=[], packages=[], ran=[])
            time.sleep(LOCK_POLL_SECONDS)

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the fcntl lock
            self.fd = None


def journal_entries():
    """dpkg's pending journal: the all-digit names under updates/ (what apt checks)."""
    try:
        return sorted(name for name in os.listdir(UPDATES_DIR) if name.isdigit())
    except OSError:
        return []


def unfinished_packages(module, wanted=()):
    """Packages whose Status a finished dpkg run never leaves (dpkg-query reads the journal too),
    and those of wanted that are not installed."""
    rc, out, err = module.run_command(
        ["dpkg-query", "-W", "-f=${binary:Package}\\t${Status}\\n"], check_rc=False, environ_update={"LC_ALL": "C"})
    if rc != 0:
        module.fail_json(msg="dpkg-query could not read the package database: %s" % (err.strip() or out.strip()),
                         rc=rc, stderr=err, interrupted=False, journal=[], packages=[], ran=[], missing=list(wanted))
    found = []
    installed = set()
    for line in out.splitlines():
        name, _, status = line.partition("\t")
        words = status.split()
        if len(words) != 3:
            continue
        want, flag, state = words
        if state in UNFINISHED or flag == "reinstreq":
            found.append({"package": name, "want": want, "flag": flag, "status": state})
        elif words == ["install", "ok", "installed"]:
            installed.update((name, name.split(":")[0]))  # libfoo:amd64 is libfoo too
    return found, [p for p in wanted if p not in installed]


def summary(journal, packages):
    """``journal: 1 entry; half-installed: git; unpacked: bc dc``: what dpkg left unfinished."""
    parts = []
    if journal:
        parts.append("%d journal entr%s in %s" % (len(journal), "y" if len(journal) == 1 else "ies", UPDATES_DIR))
    by_state = {}
    for pkg in packages:
        by_state.setdefault(pkg["status"], []).append(pkg["package"])
    for state in UNFINISHED + ("installed", "not-installed", "config-files"):
        if state in by_state:
            parts.append("%s: %s" % (state, " ".join(by_state[state])))
    return "; ".join(parts)


def to_reinstall(packages):
    return [p["package"] for p in packages
            if p["want"] in ("install", "hold") and (p["status"] in NEEDS_REINSTALL or p["flag"] == "reinstreq")]


def being_removed(packages):
    return [p["package"] for p in packages
            if p["want"] in ("deinstall", "purge") and (p["status"] in NEEDS_REINSTALL or p["flag"] == "reinstreq")]


def person_commands(packages):
    """The repair as a person at a root shell types it (dpkg asks about conffiles there)."""
    commands = ["dpkg --configure -a"]
    removed = being_removed(packages)
    # dpkg refuses to remove a half-installed package: it has to be reinstalled first
    reinstall = to_reinstall(packages) + removed
    if reinstall:
        commands.append("apt-get install --reinstall " + " ".join(reinstall))
    if removed:
        commands.append("apt-get remove " + " ".join(removed))
    return commands


def shown(argv):
    return "DEBIAN_FRONTEND=%s %s" % (ENV["DEBIAN_FRONTEND"], " ".join(argv))


def last_error(out, err):
    """dpkg's or apt's own reason: its last E: or error line (with the line dpkg indents under it)."""
    lines = [ln.rstrip() for ln in (err + "\n" + out).splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].strip()
        if line.startswith(("E:", "dpkg: error", "dpkg: dependency problems")):
            if line.endswith(":") and i + 1 < len(lines) and lines[i + 1][:1].isspace():
                line += " " + lines[i + 1].strip()
            return line
    return lines[-1].strip() if lines else "no output"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repair=dict(type="bool", default=True),
            lock_timeout=dict(type="int", default=60),
            wanted=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    wanted = module.params["wanted"]
    if not os.path.isdir(ADMIN_DIR):
        module.exit_json(changed=False, interrupted=False, journal=[], packages=[], ran=[], missing=wanted)

    lock = FrontendLock(module, max(0, module.params["lock_timeout"]))
    locked = lock.acquire()
    journal = journal_entries()
    packages, missing = unfinished_packages(module, wanted)
    result = dict(changed=False, interrupted=bool(journal or packages), journal=journal, packages=packages, ran=[],
                  missing=missing)
    if not result["interrupted"]:
        lock.release()
        module.exit_json(**result)

    found = summary(journal, packages)
    result["commands"] = commands = person_commands(packages)
    todo = "; ".join(commands)
    removed = being_removed(packages)
    reason = ("check_mode" if module.check_mode
              else "repair_off" if not module.params["repair"]
              else "removal" if removed else None)
    if reason is not None:
        lock.release()
        why = {
            "check_mode": "check mode changes nothing",
            "repair_off": "repair is off (kbuild_host_packages_repair: false)",
            "removal": "%s %s being removed when it stopped, which kprov does not finish"
                       % (" ".join(removed), "was" if len(removed) == 1 else "were"),
        }[reason]
        module.fail_json(msg="dpkg was interrupted (%s); %s: to repair it, run as root: %s" % (found, why, todo),
                         reason=reason, **result)

    outputs = []
    steps = [CONFIGURE]
    reinstall = to_reinstall(packages)
    if reinstall:
        steps.append(REINSTALL + ["-o", "DPkg::Lock::Timeout=%d" % lock.timeout] + reinstall)
    for argv in steps:
        environ = dict(ENV)
        if argv[0] == "dpkg" and locked:
            environ["DPKG_FRONTEND_LOCKED"] = "1"  # this process holds the frontend lock for it
        else:
            # apt-get takes the frontend lock itself (it ignores DPKG_FRONTEND_LOCKED) and waits for it
            lock.release()
        result["ran"].append(shown(argv))
        rc, out, err = module.run_command(argv, check_rc=False, environ_update=environ)
        outputs.append("$ %s\n%s%s" % (shown(argv), out, err))
        if rc != 0:
            lock.release()
            result["changed"] = True  # what ran before the failure may have configured packages
            module.fail_json(
                msg="repairing the interrupted dpkg (%s) failed: %s exited %d: %s"
                    % (found, shown(argv), rc, last_error(out, err)),
                rc=rc, stdout="\n".join(outputs), stderr=err, **result)
    lock.release()
    result["changed"] = True
    result["missing"] = wanted
    left = journal_entries(), unfinished_packages(module)[0]
    if left[0] or left[1]:
        module.fail_json(msg="dpkg is still unfinished after %s (%s): run as root: %s"
                             % ("; ".join(result["ran"]), summary(*left), "; ".join(person_commands(left[1]))),
                         stdout="\n".join(outputs), **result)
    result["stdout"] = "\n".join(outputs)
    result["msg"] = ("dpkg was interrupted (%s); kprov ran: %s; maintainer scripts of other pending packages "
                     "may have run too" % (found, "; ".join(result["ran"])))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
