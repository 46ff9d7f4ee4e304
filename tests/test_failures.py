"""The one line that says why an apply failed (provision.apply.failures), on real failure results.

The results below were captured from Ansible runs against the Debian bookworm test image (the
apt, copy and command modules, the role's kbuild_host_dpkg module, distccd) with the fault in
place: a dpkg journal entry left pending, the dpkg lock held by another process, a proxy that
refuses connections, a full 64 KiB tmpfs, a non-root user, a port already bound. The messages of
other distributions' tools are quoted as those tools print them.
"""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from provision.apply import failures
from provision.apply.failures import CAUSE_LINE_MAX, cause_line, cause_of, failure_lines

APT_CMD = (
    "'/usr/bin/apt-get -y -o \"Dpkg::Options::=--force-confdef\" -o \"Dpkg::Options::=--force-confold\" "
    "-o DPkg::Lock::Timeout=60       install 'ed=1.19-1'' failed: "
)
INSTALL = "Install the packages (apt)"
DPKG_TASK = "Finish an interrupted dpkg run"

# ansible.builtin.apt with a journal entry pending under /var/lib/dpkg/updates
APT_DPKG_INTERRUPTED = {
    "changed": False,
    "msg": APT_CMD + "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem. \n",
    "rc": 100,
    "stderr": "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem. \n",
    "stdout": "",
}

# kbuild_host_dpkg: the same host, with kbuild_host_packages_repair false, then in check mode
DPKG_PACKAGES = [
    {"package": "bc", "want": "install", "flag": "ok", "status": "unpacked"},
    {"package": "dc", "want": "install", "flag": "reinstreq", "status": "half-installed"},
]
DPKG_REPAIR_OFF = {
    "reason": "repair_off", "changed": False, "interrupted": True, "journal": ["0001"], "packages": DPKG_PACKAGES,
    "ran": [], "commands": ["dpkg --configure -a", "apt-get install --reinstall dc"], "failed": True,
    "msg": "dpkg was interrupted (1 journal entry in /var/lib/dpkg/updates; half-installed: dc; unpacked: bc); "
           "repair is off (kbuild_host_packages_repair: false): to repair it, run as root: dpkg --configure -a; "
           "apt-get install --reinstall dc",
}
DPKG_CHECK_MODE = {
    **DPKG_REPAIR_OFF,
    "reason": "check_mode",
    "msg": "dpkg was interrupted (1 journal entry in /var/lib/dpkg/updates; half-installed: dc; unpacked: bc); "
           "check mode changes nothing: to repair it, run as root: dpkg --configure -a; apt-get install --reinstall dc",
}
# kbuild_host_dpkg repairing an unpacked package whose postinst fails
DPKG_REPAIR_FAILED = {
    "rc": 1,
    "stdout": "$ DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a\nSetting up kprov-broken (1) ...\n"
              "kprov-broken: cannot start its service\ndpkg: error processing package kprov-broken (--configure):\n"
              " installed kprov-broken package post-installation script subprocess returned error exit status 1\n"
              "Errors were encountered while processing:\n kprov-broken\n",
    "stderr": "kprov-broken: cannot start its service\ndpkg: error processing package kprov-broken (--configure):\n"
              " installed kprov-broken package post-installation script subprocess returned error exit status 1\n"
              "Errors were encountered while processing:\n kprov-broken\n",
    "changed": True, "interrupted": True, "journal": [],
    "packages": [{"package": "kprov-broken", "want": "install", "flag": "ok", "status": "half-configured"}],
    "ran": ["DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a"],
    "commands": ["dpkg --configure -a"], "failed": True,
    "msg": "repairing the interrupted dpkg (half-configured: kprov-broken) failed: DEBIAN_FRONTEND=noninteractive "
           "dpkg --force-confold --configure -a exited 1: dpkg: error processing package kprov-broken (--configure): "
           "installed kprov-broken package post-installation script subprocess returned error exit status 1",
}
# kbuild_host_dpkg while another process holds /var/lib/dpkg/lock-frontend
DPKG_LOCK_HELD = {
    "lock_holder": {"pid": 1211, "name": "python3", "cmdline": "python3 -c import fcntl ..."},
    "interrupted": False, "journal": [], "packages": [], "ran": [], "failed": True, "changed": False,
    "msg": "the dpkg lock /var/lib/dpkg/lock-frontend is held by pid 1211 (python3), another package run, "
           "after waiting 1 s: wait for it to finish, or stop it",
}
# ansible.builtin.apt (lock_timeout=2) while another process holds the lock: apt names it on stdout
APT_LOCK_HELD = {
    "changed": False,
    "msg": APT_CMD.replace("Timeout=60", "Timeout=2") + "E: Unable to acquire the dpkg frontend lock "
           "(/var/lib/dpkg/lock-frontend), is another process using it?\n",
    "rc": 100,
    "stderr": "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n",
    "stdout": "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 419 "
              "(python3)...\nWaiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by "
              "process 419 (python3)...\n",
}
# ansible.builtin.apt as a user that is not root
APT_NOT_ROOT = {
    "changed": False,
    "msg": APT_CMD + "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n"
           "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n",
    "rc": 100,
    "stderr": "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n"
              "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n",
    "stdout": "",
}
# ansible.builtin.copy as that user
COPY_NOT_ROOT = {"changed": False, "checksum": "11f6ad8ec52a2984abaafd7c3b516503785c2072",
                 "msg": "Destination /etc not writable"}
# ansible.builtin.apt through Acquire::http::Proxy "http://127.0.0.1:9" (the role's install task)
APT_PROXY_REFUSED = {
    "msg": APT_CMD + "E: Failed to fetch http://deb.debian.org/debian/pool/main/e/ed/ed_1.19-1_amd64.deb  Could not "
           "connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\nE: Unable to fetch some "
           "archives, maybe run apt-get update or try with --fix-missing?\n",
    "stderr": "E: Failed to fetch http://deb.debian.org/debian/pool/main/e/ed/ed_1.19-1_amd64.deb  Could not connect "
              "to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\nE: Unable to fetch some archives, "
              "maybe run apt-get update or try with --fix-missing?\n",
    "stdout": "Reading package lists...\nBuilding dependency tree...\nReading state information...\nThe following NEW "
              "packages will be installed:\n  ed\n0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.\n"
              "Need to get 58.1 kB of archives.\nAfter this operation, 111 kB of additional disk space will be used.\n"
              "Ign:1 http://deb.debian.org/debian bookworm/main amd64 ed amd64 1.19-1\nErr:1 http://deb.debian.org/"
              "debian bookworm/main amd64 ed amd64 1.19-1\n  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect "
              "(111: Connection refused)\n",
    "rc": 100,
    "cache_updated": False,
}
# ansible.builtin.apt update_cache=true through the same proxy: python-apt gives no reason
APT_UPDATE_FAILED = {
    "changed": False, "failed": True,
    "msg": "Failed to update apt cache after 1 retries: ",
    "warnings": ["Failed to update cache after 1 retries due to , retrying",
                 "Sleeping for 1 seconds, before attempting to refresh the cache again"],
}
# ansible.builtin.copy to a full 64 KiB tmpfs
COPY_NO_SPACE = {
    "changed": False, "checksum": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
    "msg": "Task failed: Module failed: Failed to replace '/mnt/full/conf' with b'/root/.ansible/tmp/ansible-tmp-"
           "1796102996.751687-10660-196304300097885/.source': [Errno 28] No space left on device: b'/root/.ansible/"
           "tmp/ansible-tmp-1796102996.751687-10660-196304300097885/.source' -> b'/mnt/full/.ansible_tmpi0aqd737conf'",
}
# apt-get install with its archives on that tmpfs
APT_NO_SPACE = {
    "changed": True, "cmd": ["apt-get", "install", "-y", "-o", "Dir::Cache::Archives=/mnt/full/archives/", "ed"],
    "msg": "non-zero return code", "rc": 100,
    "stderr": "E: You don't have enough free space in /mnt/full/archives/.",
    "stdout": "Reading package lists...\nBuilding dependency tree...\nReading state information...",
}
# dpkg unpacking onto it
DPKG_NO_SPACE = {
    "changed": True, "cmd": ["dpkg", "--instdir=/mnt/full", "-i", "/tmp/ed_1.19-1_amd64.deb"],
    "msg": "non-zero return code", "rc": 1,
    "stderr": "dpkg: error processing archive /tmp/ed_1.19-1_amd64.deb (--install):\n cannot copy extracted data for "
              "'./bin/ed' to '/mnt/full/bin/ed.dpkg-new': failed to write (No space left on device)\nErrors were "
              "encountered while processing:\n /tmp/ed_1.19-1_amd64.deb",
    "stdout": "Selecting previously unselected package ed.\nPreparing to unpack /tmp/ed_1.19-1_amd64.deb ...",
}
# ansible.builtin.apt with a name the release does not have
APT_NO_PACKAGE = {"changed": False, "msg": "No package matching 'nosuchpackage-kprov' is available"}
# distccd while 127.0.0.1:3632 is already bound; and on an address the host does not have
DISTCCD_PORT_TAKEN = {
    "changed": True, "cmd": ["distccd", "--no-detach", "--daemon", "--log-stderr", "--listen", "127.0.0.1",
                             "--allow", "127.0.0.1"],
    "msg": "non-zero return code", "rc": 102,
    "stderr": "distccd[723] (dcc_listen_by_addr) ERROR: bind of 127.0.0.1:3632 failed: Address already in use",
    "stdout": "",
}
DISTCCD_NOT_HERE = {
    **DISTCCD_PORT_TAKEN,
    "stderr": "distccd[763] (dcc_listen_by_addr) ERROR: bind of 10.9.9.9:3632 failed: Cannot assign requested address",
}


def test_the_issue_s_example_line():
    assert cause_line(INSTALL, "packages", APT_DPKG_INTERRUPTED) == (
        "apply failed at 'Install the packages (apt)': dpkg was interrupted; rerun kprov apply to repair it, "
        "or run dpkg --configure -a"
    )


def test_an_interrupted_dpkg_left_alone_names_the_commands_and_the_switch():
    assert cause_line(DPKG_TASK, "packages", DPKG_REPAIR_OFF) == (
        "apply failed at 'Finish an interrupted dpkg run': dpkg was interrupted; run as root: dpkg --configure -a "
        "&& apt-get install --reinstall dc, or rerun without --no-repair"
    )
    assert cause_line(DPKG_TASK, "packages", DPKG_CHECK_MODE).endswith(
        "run as root: dpkg --configure -a && apt-get install --reinstall dc, or rerun without --check"
    )


def test_many_half_installed_packages_keep_the_line_short_and_the_commands_whole():
    many = {**DPKG_REPAIR_OFF, "commands": ["dpkg --configure -a", "apt-get install --reinstall "
                                                                   + " ".join(f"libpkg{i}" for i in range(30))]}
    line = cause_line(DPKG_TASK, "packages", many)
    assert len(line) <= CAUSE_LINE_MAX
    assert line == ("apply failed at 'Finish an interrupted dpkg run': dpkg was interrupted; rerun without "
                    "--no-repair to repair it; the failed task names the commands that repair it")


def test_a_failed_repair_says_which_script_failed():
    assert cause_line(DPKG_TASK, "packages", DPKG_REPAIR_FAILED) == (
        "apply failed at 'Finish an interrupted dpkg run': repairing dpkg failed: the post-installation script of "
        "kprov-broken exited with status 1; run as root: dpkg --configure -a, and read its errors"
    )


def test_a_held_lock_names_its_holder():
    assert cause_line(DPKG_TASK, "packages", DPKG_LOCK_HELD) == (
        "apply failed at 'Finish an interrupted dpkg run': another package run holds the dpkg lock: pid 1211 "
        "(python3); wait for it to finish, or stop it"
    )
    assert cause_line(INSTALL, "packages", APT_LOCK_HELD) == (
        "apply failed at 'Install the packages (apt)': /var/lib/dpkg/lock-frontend is held by pid 419 (python3), "
        "another package run; wait for it to finish, or stop it"
    )
    without_holder = {**APT_LOCK_HELD, "stdout": ""}
    assert cause_of(without_holder).text == "another package run holds apt's lock (/var/lib/dpkg/lock-frontend)"


def test_an_unreachable_mirror_is_named_with_the_proxy_that_refused():
    assert cause_line(INSTALL, "packages", APT_PROXY_REFUSED) == (
        "apply failed at 'Install the packages (apt)': the package mirror deb.debian.org is unreachable (through "
        "the proxy 127.0.0.1:9: connection refused); check the network, proxy and mirror settings"
    )
    assert cause_of(APT_UPDATE_FAILED).text == "apt could not download its package lists"


def test_mirror_messages_without_a_proxy():
    resolving = {"msg": "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary "
                        "failure resolving 'deb.debian.org'\nE: Some index files failed to download."}
    assert cause_of(resolving).text == "the package mirror deb.debian.org is unreachable (name not resolved)"
    timed_out = {"stderr": "E: Failed to fetch http://mirror.example.net/debian/pool/main/b/bc/bc_1.07.1-3+b1_amd64"
                           ".deb  Could not connect to mirror.example.net:80 (192.0.2.7), connection timed out"}
    assert cause_of(timed_out).text == "the package mirror mirror.example.net is unreachable (connection timed out)"
    dnf = {"msg": "Failed to download metadata for repo 'fedora': Cannot download repomd.xml: Curl error (6): "
                  "Couldn't resolve host name for https://mirrors.fedoraproject.org/metalink?repo=fedora-40 "
                  "[Could not resolve host: mirrors.fedoraproject.org]"}
    assert cause_of(dnf).text == "the package mirror mirrors.fedoraproject.org is unreachable (name not resolved)"


def test_no_space_names_where():
    assert cause_of(COPY_NO_SPACE).text == "no space left writing /mnt/full/conf"
    assert cause_of(COPY_NO_SPACE).hint == "free some space there (df -h /mnt/full)"
    assert cause_of(APT_NO_SPACE).text == "no space left on the filesystem of /mnt/full/archives"
    assert cause_of(DPKG_NO_SPACE).text == "no space left writing /mnt/full/bin/ed.dpkg-new"
    assert cause_of(DPKG_NO_SPACE).hint == "free some space there (df -h /mnt/full/bin)"
    dnf = {"msg": "Error: Transaction test error:\n  installing package gcc-14.1.1-1.fc40.x86_64 needs 42MB more "
                  "space on the / filesystem\nAt least 42MB more space needed on the / filesystem."}
    assert cause_of(dnf).text == "no space left on the filesystem of /"


def test_not_root():
    assert cause_line(INSTALL, "packages", APT_NOT_ROOT) == (
        "apply failed at 'Install the packages (apt)': permission denied: /var/lib/dpkg/lock-frontend; run kprov "
        "apply as root (sudo kprov apply), or let Ansible become root on the host"
    )
    assert cause_of(COPY_NOT_ROOT).text == "/etc not writable for this user"
    assert cause_of({"msg": "error: you cannot perform this operation unless you are root."}).kind == failures.NOT_ROOT


def test_a_package_this_release_lacks():
    assert cause_line(INSTALL, "packages", APT_NO_PACKAGE) == (
        "apply failed at 'Install the packages (apt)': package nosuchpackage-kprov does not exist for this release; "
        "check its name in this distribution's package index, or leave it out of kbuild_host_packages"
    )
    assert cause_of({"stderr": "E: Unable to locate package libelf-devel"}).text == (
        "package libelf-devel does not exist for this release")
    assert cause_of({"msg": "Failed to install some of the specified packages",
                     "failures": ["No package libelf-dev available."]}).text == (
        "package libelf-dev does not exist for this release")
    assert cause_of({"stderr": "error: target not found: libelf-dev"}).text == (
        "package libelf-dev does not exist for this release")


def test_a_port_already_taken_and_an_address_not_on_the_host():
    assert cause_line("Start distccd", "distcc", DISTCCD_PORT_TAKEN) == (
        "apply failed at 'Start distccd': port 3632 on 127.0.0.1 is already in use, so distccd cannot listen; "
        "'ss -ltnp sport = :3632' names the process that has it"
    )
    assert cause_of(DISTCCD_NOT_HERE).text == "the listen address 10.9.9.9 is not an address of this host"


def test_other_package_managers_locks():
    zypper = {"msg": "System management is locked by the application with pid 1234 (zypper).\nClose this "
                     "application before trying again."}
    assert cause_of(zypper).text == "zypper's lock is held by pid 1234 (zypper)"
    pacman = {"stderr": "error: failed to init transaction (unable to lock database)\nerror: could not lock "
                        "database: File exists\n  if you're sure a package manager is not already\n  running, you "
                        "can remove /var/lib/pacman/db.lck"}
    cause = cause_of(pacman)
    assert cause.kind == failures.LOCK_HELD and "remove /var/lib/pacman/db.lck" in cause.hint
    dnf = {"msg": "Waiting for process with pid 4242 to finish."}
    assert cause_of(dnf).text == "another dnf or rpm run holds the rpm lock (pid 4242)"
    assert "dnf history info last" in cause_of(dnf).hint


def test_the_fallback_is_the_first_meaningful_line_never_the_command_line():
    apt_other = {"msg": APT_CMD + "E: Sub-process /usr/bin/dpkg returned an error code (1)\n", "rc": 100,
                 "stderr": "E: Sub-process /usr/bin/dpkg returned an error code (1)\n",
                 "stdout": "Reading package lists...\nBuilding dependency tree...\n"}
    assert cause_line(INSTALL, "packages", apt_other) == (
        "apply failed at 'Install the packages (apt)': E: Sub-process /usr/bin/dpkg returned an error code (1)")
    command = {"cmd": ["sysctl", "-e", "-p", "/etc/sysctl.d/90-kprov-zram.conf"], "msg": "non-zero return code",
               "rc": 255, "stderr": "sysctl: setting key \"vm.swappiness\": Read-only file system", "stdout": ""}
    assert cause_line("Apply the swap-on-zram sysctls", "zram", command) == (
        "apply failed at 'Apply the swap-on-zram sysctls': sysctl: setting key \"vm.swappiness\": "
        "Read-only file system")
    crashed = {"msg": "MODULE FAILURE\nSee stdout/stderr for the exact error", "rc": 1,
               "module_stderr": "Traceback (most recent call last):\n  File \"x\", line 1\nKeyError: 'probe'\n"}
    assert cause_of(crashed).text == "KeyError: 'probe'"
    assert cause_of({"rc": 3}).text == "failed with exit status 3"
    assert cause_line("", "zram", {"msg": "Task failed: zram0 is in use"}) == "apply failed in zram: zram0 is in use"


def test_an_unreachable_host_is_not_a_mirror():
    ssh = {"unreachable": True, "changed": False,
           "msg": "Failed to connect to the host via ssh: ssh: connect to host 192.0.2.10 port 22: Connection refused"}
    cause = cause_of(ssh)
    assert cause.kind == failures.UNREACHABLE
    assert cause.text == ("host unreachable: Failed to connect to the host via ssh: ssh: connect to host 192.0.2.10 "
                          "port 22: Connection refused")


def test_a_loop_names_its_failed_item():
    loop = {"msg": "One or more items failed", "results": [
        {"item": "/etc/ccache.conf", "changed": False},
        {"item": "/var/cache/ccache", "failed": True, **COPY_NO_SPACE},
    ]}
    assert cause_of(loop).text == "no space left writing /mnt/full/conf"


def test_a_fleet_gets_one_line_per_failed_host():
    lines = failure_lines({
        "web2": (INSTALL, "packages", APT_PROXY_REFUSED),
        "build1": (DPKG_TASK, "packages", DPKG_REPAIR_OFF),
    })
    assert [ln.split(":", 1)[0] for ln in lines] == ["build1", "web2"]
    assert lines[0].startswith("build1: apply failed at 'Finish an interrupted dpkg run': dpkg was interrupted")
    assert "deb.debian.org is unreachable" in lines[1]
    assert all(len(ln) <= CAUSE_LINE_MAX for ln in lines)


_text = st.text(alphabet=string.printable + "é’\u2028", max_size=400)


@given(task=st.text(max_size=120), area=st.sampled_from(["", "packages", "zram", "distcc"]),
       result=st.dictionaries(st.sampled_from(["msg", "stderr", "stdout", "module_stderr", "cmd", "rc", "reason",
                                               "interrupted", "commands", "results", "lock_holder"]),
                              st.one_of(_text, st.integers(), st.none(), st.lists(_text, max_size=3)), max_size=6))
def test_any_result_gives_one_short_line(task, area, result):
    line = cause_line(task, area, result)
    assert len(line) <= CAUSE_LINE_MAX
    assert "\n" not in line and "\r" not in line
    assert line.startswith("apply failed")
