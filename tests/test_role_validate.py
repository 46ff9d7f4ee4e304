"""The kbuild_host role refuses bad variables for real: ansible-playbook on localhost.

Every refused case goes through kprov's validator as the role calls it (``check_role_vars``); one
case of each class also goes through the role itself: one play runs the role's own validation
(tasks/set_vars.yml -> validate.yml, through the filter plugin) once per case, each in a block whose
rescue records which task failed and its message, and writes what the templates would write for the
accepted cases into a temp dir. A second run applies the whole role with a bad variable in check
mode and shows it stops in the validation task with nothing changed. Every case value is marked
``!unsafe``, as ``kprov apply`` passes them, so Ansible never templates it. Only loopback is touched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.errors import UserError
from provision.facts.catalog import load_catalog
from provision.model.facts import HostFacts
from provision.model.goals import Goals, HostEntry
from provision.planner import plan
from provision.role.checks import check_role_vars

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "playbooks" / "roles"
ROLE = ROLES / "kbuild_host"
VENV_BIN = Path(sys.executable).parent
VALIDATOR_TASK = "Check the variables with kprov's validator"


class _Unsafe(str):
    """A string Ansible must never template (YAML ``!unsafe``)."""


def _unsafe(value: Any) -> Any:
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    if isinstance(value, dict):
        return {k: _unsafe(v) for k, v in value.items()}
    return value


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Unsafe, lambda d, s: d.represent_scalar("!unsafe", str(s), style='"'))


def _yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=False, width=1000)


def baseline(full: bool = False) -> dict[str, Any]:
    """Role variables of a real plan with every area on (zram, ccache, distcc server and client,
    /etc/hosts, build environment), distccd on loopback."""
    facts = HostFacts.from_dict(json.loads((ROOT / "tests" / "fixtures" / "vps-1cpu-2g.json").read_text()))
    goals = Goals(
        zram=True,
        ccache=True,
        ccache_shared=True,
        ccache_dir="/var/cache/kprov-test-ccache",
        distcc_server=True,
        allow=("127.0.0.0/8",),
        listen="127.0.0.1",
        distcc_hosts=("build1/8", "10.0.0.7:3633/4,lzo"),
        host_entries=(HostEntry("10.0.0.7", ("build1",)),),
    )
    role_vars = plan(facts, goals, load_catalog()).to_role_vars()
    if not full:
        role_vars["kbuild_host_plan"] = {}
    role_vars["kbuild_host_ccache_group"] = "kbuild"
    role_vars["kbuild_host_distcc_nice"] = 10
    return role_vars


BIG = "9" * 400
# id, variables that replace the baseline's, text the one-line error must contain
REFUSED = [
    # distccd allow list: mapped and compatible spellings, public ranges, split halves, /0
    ("allow-mapped-world", {"kbuild_host_distcc_allow": ["::ffff:0.0.0.0/96"]}, "whole Internet"),
    ("allow-mapped-public-host", {"kbuild_host_distcc_allow": ["::ffff:8.8.8.8"]}, "public range"),
    ("allow-compatible-public", {"kbuild_host_distcc_allow": ["::8.8.8.0/120"]}, "public range"),
    ("allow-2001-23", {"kbuild_host_distcc_allow": ["2001::/23"]}, "public range"),
    ("allow-6to4", {"kbuild_host_distcc_allow": ["2002::/16"]}, "public range"),
    ("allow-teredo", {"kbuild_host_distcc_allow": ["2001::/32"]}, "public range"),
    ("allow-public-24", {"kbuild_host_distcc_allow": ["203.0.113.0/24"]}, "public range"),
    ("allow-any-slash-0", {"kbuild_host_distcc_allow": ["10.0.0.0/0"]}, "whole Internet"),
    ("allow-v6-slash-0", {"kbuild_host_distcc_allow": ["fd00::/0"]}, "whole Internet"),
    (
        "allow-split-halves-public",
        {"kbuild_host_distcc_allow": ["0.0.0.0/1", "128.0.0.0/1"], "kbuild_host_distcc_allow_public": True},
        "kbuild_host_distcc_allow",
    ),
    (
        "allow-public-too-wide",
        {"kbuild_host_distcc_allow": ["64.0.0.0/3"], "kbuild_host_distcc_allow_public": True},
        "more addresses than a /16",
    ),
    (
        "allow-public-many-narrow",
        {"kbuild_host_distcc_allow": [f"{n}.0.0.0/16" for n in range(1, 4)], "kbuild_host_distcc_allow_public": True},
        "more addresses than a /16",
    ),
    ("allow-mixed-families", {"kbuild_host_distcc_allow": ["127.0.0.0/8", "::1"]}, "mixes IPv4"),
    ("allow-newline", {"kbuild_host_distcc_allow": ["127.0.0.0/8\n"]}, "not a valid CIDR"),
    ("allow-word-splitting", {"kbuild_host_distcc_allow": ["127.0.0.0/8 0.0.0.0/0"]}, "not a valid CIDR"),
    ("allow-shell", {"kbuild_host_distcc_allow": ["$(reboot)"]}, "not a valid CIDR"),
    ("allow-glob", {"kbuild_host_distcc_allow": ["10.0.0.*"]}, "not a valid CIDR"),
    ("allow-mask-suffix", {"kbuild_host_distcc_allow": ["127.0.0.0/8x"]}, "not a valid CIDR"),
    ("allow-netmask-form", {"kbuild_host_distcc_allow": ["127.0.0.0/255.0.0.0"]}, "not a valid CIDR"),
    ("allow-leading-zero", {"kbuild_host_distcc_allow": ["010.0.0.0/8"]}, "leading zero"),
    ("allow-empty", {"kbuild_host_distcc_allow": []}, "empty"),
    ("allow-multicast", {"kbuild_host_distcc_allow": ["224.0.0.0/4"], "kbuild_host_distcc_allow_public": True}, "no client"),
    # distccd listen address
    ("listen-any-v4", {"kbuild_host_distcc_listen": "0.0.0.0"}, "binds every address"),
    ("listen-any-v6", {"kbuild_host_distcc_listen": "::"}, "binds every address"),
    ("listen-any-v6-long", {"kbuild_host_distcc_listen": "0:0:0:0:0:0:0:0"}, "binds every address"),
    ("listen-mapped-any", {"kbuild_host_distcc_listen": "::ffff:0.0.0.0"}, "binds every address"),
    ("listen-newline", {"kbuild_host_distcc_listen": "127.0.0.1\n"}, "not an IP address"),
    ("listen-scoped", {"kbuild_host_distcc_listen": "fe80::1%eth0"}, "scope"),
    ("listen-multicast", {"kbuild_host_distcc_listen": "224.0.0.1"}, "not a unicast"),
    ("listen-broadcast", {"kbuild_host_distcc_listen": "255.255.255.255"}, "not a unicast"),
    ("listen-v6-for-v4-allow", {"kbuild_host_distcc_listen": "::1"}, "byte-swapped"),
    ("listen-not-this-host", {"kbuild_host_distcc_listen": "10.255.255.254"}, "not an address of this host"),
    ("listen-empty", {"kbuild_host_distcc_listen": ""}, "empty"),
    ("listen-name", {"kbuild_host_distcc_listen": "localhost"}, "not an IP address"),
    # distcc client hosts
    ("hosts-user-at", {"kbuild_host_distcc_hosts": ["user@build1/4"]}, "ssh"),
    ("hosts-ssh", {"kbuild_host_distcc_hosts": ["@build1"]}, "ssh"),
    ("hosts-zeroconf", {"kbuild_host_distcc_hosts": ["+zeroconf"]}, "zeroconf"),
    ("hosts-option", {"kbuild_host_distcc_hosts": ["--randomize"]}, "options"),
    ("hosts-superscript-limit", {"kbuild_host_distcc_hosts": ["build1/\u00b2"]}, "non-ASCII"),
    ("hosts-arabic-digit", {"kbuild_host_distcc_hosts": ["build1/\u0663"]}, "non-ASCII"),
    ("hosts-pump", {"kbuild_host_distcc_hosts": ["build1/8,cpp"]}, "pump mode"),
    ("hosts-shell", {"kbuild_host_distcc_hosts": ["build1;reboot"]}, "not a valid host name"),
    ("hosts-newline", {"kbuild_host_distcc_hosts": ["build1\nbuild2"]}, "control"),
    ("hosts-hex-address", {"kbuild_host_distcc_hosts": ["0x7f.1/4"]}, "not a valid host name"),
    ("hosts-bare-ipv6", {"kbuild_host_distcc_hosts": ["fd00::7/4"]}, "brackets"),
    ("hosts-twice", {"kbuild_host_distcc_hosts": ["build1/4", "build1/8"]}, "listed twice"),
    ("hosts-empty", {"kbuild_host_distcc_hosts": []}, "empty"),
    # ccache paths, sizes, names
    ("ccache-dir-newline", {"kbuild_host_ccache_dir": "/var/cache/x\nprefix_command = /tmp/evil"}, "kbuild_host_ccache_dir"),
    ("ccache-dir-relative", {"kbuild_host_ccache_dir": "var/cache/ccache"}, "absolute"),
    ("ccache-dir-etc", {"kbuild_host_ccache_dir": "/etc"}, "kbuild_host_ccache_dir"),
    ("ccache-dir-in-etc", {"kbuild_host_ccache_dir": "/etc/ssh"}, "system directory"),
    ("ccache-dir-root", {"kbuild_host_ccache_dir": "/"}, "two levels"),
    ("ccache-dir-dotdot", {"kbuild_host_ccache_dir": "/var/cache/../../etc"}, "'..'"),
    ("ccache-dir-dollar", {"kbuild_host_ccache_dir": "/var/cache/$(id)"}, "kbuild_host_ccache_dir"),
    ("ccache-dir-jinja", {"kbuild_host_ccache_dir": "/var/cache/{{ lookup('pipe', 'id') }}"}, "braces"),
    ("ccache-dir-space", {"kbuild_host_ccache_dir": "/var/cache/my cache"}, "no spaces"),
    ("ccache-base-dir-newline", {"kbuild_host_ccache_base_dir": "/root\nprefix_command = /tmp/evil"}, "kbuild_host_ccache_base_dir"),
    ("ccache-size-exponent", {"kbuild_host_ccache_max_size": "1e35T"}, "kbuild_host_ccache_max_size"),
    ("ccache-size-huge", {"kbuild_host_ccache_max_size": BIG + "G"}, "kbuild_host_ccache_max_size"),
    ("ccache-size-too-big", {"kbuild_host_ccache_max_size": "65Ti"}, "64 TiB"),
    ("ccache-size-zero", {"kbuild_host_ccache_max_size": "0G"}, "larger than zero"),
    ("ccache-size-no-unit", {"kbuild_host_ccache_max_size": "0"}, "give a unit"),
    ("ccache-size-arabic", {"kbuild_host_ccache_max_size": "\u0663G"}, "kbuild_host_ccache_max_size"),
    ("ccache-size-space", {"kbuild_host_ccache_max_size": "8 G"}, "kbuild_host_ccache_max_size"),
    ("ccache-group-shell", {"kbuild_host_ccache_group": "kbuild;id"}, "kbuild_host_ccache_group"),
    ("ccache-sloppiness", {"kbuild_host_ccache_sloppiness": ["time_macros\nprefix_command=x"]}, "sloppiness"),
    # zram and sysctls
    ("zram-percent-400", {"kbuild_host_zram_percent": 400}, "1..200"),
    ("zram-percent-0", {"kbuild_host_zram_percent": 0}, "1..200"),
    ("zram-algorithm-shell", {"kbuild_host_zram_algorithm": "lz4;reboot"}, "compressor name"),
    ("zram-algorithm-newline", {"kbuild_host_zram_algorithm": "lz4\nPERCENT=400"}, "compressor name"),
    ("zram-priority", {"kbuild_host_zram_priority": 40000}, "kbuild_host_zram_priority"),
    ("sysctl-other-key", {"kbuild_host_zram_sysctls": {"kernel.randomize_va_space": "0"}}, "not one kprov sets"),
    ("sysctl-slash-key", {"kbuild_host_zram_sysctls": {"vm/swappiness": "60"}}, "not one kprov sets"),
    ("sysctl-range", {"kbuild_host_zram_sysctls": {"vm.swappiness": "500"}}, "0..200"),
    ("sysctl-value-shell", {"kbuild_host_zram_sysctls": {"vm.swappiness": "60\nkernel.sysrq = 1"}}, "vm.swappiness"),
    # /etc/hosts entries
    ("hosts-entry-bad-address", {"kbuild_host_hosts_entries": [{"address": "10.0.0.999", "names": ["b1"]}]}, "not an IP address"),
    ("hosts-entry-unspecified", {"kbuild_host_hosts_entries": [{"address": "0.0.0.0", "names": ["b1"]}]}, "not a host address"),
    ("hosts-entry-newline-name", {"kbuild_host_hosts_entries": [{"address": "10.0.0.7", "names": ["b1\n10.0.0.8 evil"]}]}, "not a valid host name"),
    ("hosts-entry-numeric-name", {"kbuild_host_hosts_entries": [{"address": "10.0.0.7", "names": ["127.1"]}]}, "not a valid host name"),
    ("hosts-entry-no-names", {"kbuild_host_hosts_entries": [{"address": "10.0.0.7", "names": []}]}, "at least one name"),
    # the build environment (a shell-sourced file)
    ("env-ld-preload", {"kbuild_host_buildenv": {"LD_PRELOAD": "/tmp/x.so"}}, "not a variable kprov exports"),
    ("env-path", {"kbuild_host_buildenv": {"PATH": "/tmp"}}, "not a variable kprov exports"),
    ("env-makeflags-subst", {"kbuild_host_buildenv": {"MAKEFLAGS": "-j8 $(reboot)"}}, "MAKEFLAGS"),
    ("env-ccache-dir-backtick", {"kbuild_host_buildenv": {"CCACHE_DIR": "/x`id`"}}, "CCACHE_DIR"),
    ("env-host-newline", {"kbuild_host_buildenv": {"KBUILD_BUILD_HOST": "a\nreboot"}}, "KBUILD_BUILD_HOST"),
    ("env-make-args-var", {"kbuild_host_buildenv": {"KPROV_MAKE_ARGS": "CC=gcc LD_PRELOAD=/tmp/x.so"}}, "KPROV_MAKE_ARGS"),
    ("env-distcc-hosts", {"kbuild_host_buildenv": {"DISTCC_HOSTS": "build1/4 user@evil/4"}}, "DISTCC_HOSTS"),
    # knobs
    ("distcc-nice", {"kbuild_host_distcc_nice": 99}, "kbuild_host_distcc_nice"),
    ("distcc-jobs", {"kbuild_host_distcc_jobs": 0}, "kbuild_host_distcc_jobs"),
]
# One case of each class, run through the role itself (each costs an include of the role).
ROLE_CASES = (
    "allow-mapped-world", "allow-2001-23", "allow-split-halves-public", "allow-mixed-families", "allow-newline",
    "listen-any-v6-long", "listen-scoped", "listen-v6-for-v4-allow", "listen-not-this-host",
    "hosts-user-at", "hosts-superscript-limit",
    "ccache-dir-newline", "ccache-dir-jinja", "ccache-size-exponent",
    "zram-percent-400", "sysctl-other-key", "hosts-entry-newline-name", "env-ld-preload",
)
# Spellings the validator accepts, and the canonical form the templates then write.
ACCEPTED = [
    ("baseline", {}),
    (
        "canonical-forms",
        {
            "kbuild_host_distcc_allow": ["::ffff:127.0.0.0/104", "127.1.2.3/16"],
            "kbuild_host_distcc_listen": "::ffff:127.0.0.1",
            "kbuild_host_distcc_hosts": ["10.0.0.7:3633/4,lzo", "[FD00:0::7]/2", "build1"],
            "kbuild_host_ccache_dir": "//var/cache//kprov-test-ccache/",
            "kbuild_host_ccache_max_size": "1.5G",
            "kbuild_host_zram_sysctls": {"vm.swappiness": 100, "vm.page-cluster": "0"},
            "kbuild_host_hosts_entries": [{"address": "::ffff:10.0.0.7", "names": ["build1"]}],
        },
    ),
    ("ipv6-farm", {"kbuild_host_distcc_allow": ["::1/128"], "kbuild_host_distcc_listen": "::1"}),
]
TEMPLATES = (
    "etc/default/distcc",
    "etc/conf.d/distccd",
    "etc/sysconfig/distccd",
    "etc/distcc/hosts",
    "etc/ccache.conf",
    "etc/profile.d/kprov-kbuild.sh",
    "etc/sysctl.d/90-kprov-zram.conf",
)

CASES_PLAY = """\
- name: Run the kbuild_host role's checks once per case
  hosts: localhost
  connection: local
  gather_facts: true
  gather_subset: [min, network]
  vars_files: [cases.yml]
  vars:
{play_vars}
  tasks:
    - name: Start with no results
      ansible.builtin.set_fact:
        __results: []

    - name: Check each case
      ansible.builtin.include_tasks: one_case.yml
      loop: "{{{{ __cases }}}}"
      loop_control:
        loop_var: case
        label: "{{{{ case.id }}}}"

    - name: Hand the results to the test
      ansible.builtin.copy:
        content: "{{{{ __results | to_json }}}}"
        dest: "{{{{ __out }}}}/results.json"
        mode: "0600"
      check_mode: false
"""

ONE_CASE = """\
- name: One case
  block:
    - name: Plan nothing and validate (tasks/set_vars.yml)
      ansible.builtin.include_role:
        name: kbuild_host
        tasks_from: set_vars.yml

    - name: Write what the templates would write
      ansible.builtin.template:
        src: "{{ __role }}/templates/{{ item }}.j2"
        dest: "{{ __out }}/{{ case.id }}/{{ item | replace('/', '_') }}"
        mode: "0600"
      check_mode: false
      loop: "{{ __templates if case.render else [] }}"

    - name: Record that the case passed
      ansible.builtin.set_fact:
        __results: "{{ __results + [{'id': case.id, 'failed': false}] }}"
  rescue:
    - name: Record where and why the case failed
      ansible.builtin.set_fact:
        __results: >-
          {{ __results + [{'id': case.id, 'failed': true, 'task': ansible_failed_task.name,
                           'msg': ansible_failed_result.msg | default('')}] }}
"""


def build_env(tmp: Path, filters: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        ANSIBLE_CONFIG=str(tmp / "ansible.cfg"),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
        ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote-tmp"),
        ANSIBLE_ROLES_PATH=str(ROLES),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    if filters:  # the case play's own template tasks, outside the role, use the role's filters
        env["ANSIBLE_FILTER_PLUGINS"] = str(ROLE / "filter_plugins")
    return env


def _playbook(tmp: Path, playbook: Path, *extra: str, filters: bool = False) -> subprocess.CompletedProcess[str]:
    (tmp / "ansible.cfg").write_text("[defaults]\n")  # none of the caller's configuration
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "--check", *extra, str(playbook)]
    env = build_env(tmp, filters)
    return subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def work_dir():
    # Not pytest's tmp_path: other pytest sessions on the machine prune its numbered directories.
    with tempfile.TemporaryDirectory(prefix="kprov-role-validate-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def case_results(work_dir) -> dict[str, dict[str, Any]]:
    """Run the role's cases through its validation in one ansible-playbook run (check mode)."""
    tmp = work_dir / "cases"
    tmp.mkdir()
    base = baseline()
    cases = [{"id": i, "vars": v, "render": False} for i, v, _ in REFUSED if i in ROLE_CASES]
    cases += [{"id": i, "vars": v, "render": True} for i, v in ACCEPTED]
    names = sorted(set(base) | {k for c in cases for k in c["vars"]})
    play_vars = "\n".join(
        f"    {n}: \"{{{{ case['vars']['{n}'] if '{n}' in case['vars'] else __base['{n}'] }}}}\"" for n in names
    )
    (tmp / "cases.yml").write_text(
        _yaml(
            {
                "__base": _unsafe(base),
                "__cases": _unsafe(cases),
                "__out": str(tmp),
                "__role": str(ROLE),
                "__templates": list(TEMPLATES),
            }
        )
    )
    for case_id, _ in ACCEPTED:
        (tmp / case_id).mkdir()
    (tmp / "one_case.yml").write_text(ONE_CASE)
    (tmp / "play.yml").write_text(CASES_PLAY.format(play_vars=play_vars))
    proc = _playbook(tmp, tmp / "play.yml", filters=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    results = json.loads((tmp / "results.json").read_text())
    by_id = {r["id"]: r for r in results}
    assert len(by_id) == len(cases)
    for r in by_id.values():
        r["dir"] = tmp / r["id"]
    return by_id


@pytest.mark.parametrize("case_id, role_vars, expected", REFUSED, ids=[c[0] for c in REFUSED])
def test_the_validator_refuses(case_id, role_vars, expected):
    with pytest.raises(UserError) as err:
        check_role_vars({**baseline(), **role_vars}, ["127.0.0.1", "192.0.2.2", "::1"])
    msg = str(err.value)
    assert expected in msg and "\n" not in msg, msg
    assert any(name in msg for name in role_vars), f"the message does not name the variable: {msg}"


def test_every_role_case_is_a_refused_case():
    assert set(ROLE_CASES) <= {c[0] for c in REFUSED}


@pytest.mark.parametrize("case_id", ROLE_CASES)
def test_the_role_refuses(case_results, case_id):
    role_vars, expected = next((v, e) for i, v, e in REFUSED if i == case_id)
    r = case_results[case_id]
    assert r["failed"], f"{case_id} was accepted: {role_vars}"
    assert r["task"].endswith(VALIDATOR_TASK), r
    msg = r["msg"]
    assert msg.startswith("kbuild_host: ") and "\n" not in msg and "\x1b" not in msg, msg
    assert expected in msg, msg
    assert any(name in msg for name in role_vars), f"the message does not name the variable: {msg}"


@pytest.mark.parametrize("case_id", [c[0] for c in ACCEPTED])
def test_the_role_accepts(case_results, case_id):
    assert not case_results[case_id]["failed"], case_results[case_id]


def _written(case_results, case_id: str, template: str) -> str:
    return (case_results[case_id]["dir"] / template.replace("/", "_")).read_text()


def test_templates_write_the_canonical_forms(case_results):
    distcc = _written(case_results, "canonical-forms", "etc/default/distcc")
    assert 'ALLOWEDNETS="127.0.0.0/8 127.1.0.0/16"' in distcc
    assert 'LISTENER="127.0.0.1"' in distcc
    for template in ("etc/conf.d/distccd", "etc/sysconfig/distccd"):
        assert "--allow 127.0.0.0/8 --allow 127.1.0.0/16 --listen 127.0.0.1 " in _written(case_results, "canonical-forms", template)
    hosts = _written(case_results, "canonical-forms", "etc/distcc/hosts").splitlines()
    assert hosts[-3:] == ["10.0.0.7:3633/4,lzo", "[fd00::7]/2", "build1/4"]
    ccache = _written(case_results, "canonical-forms", "etc/ccache.conf")
    assert "cache_dir = /var/cache/kprov-test-ccache\n" in ccache
    assert "max_size = 1536Mi\n" in ccache
    sysctl = _written(case_results, "canonical-forms", "etc/sysctl.d/90-kprov-zram.conf")
    assert "vm.swappiness = 100\n" in sysctl and "vm.page-cluster = 0\n" in sysctl
    v6 = _written(case_results, "ipv6-farm", "etc/default/distcc")
    assert 'ALLOWEDNETS="::1/128"' in v6 and 'LISTENER="::1"' in v6


def test_the_profile_script_is_inert_shell(case_results):
    """The build environment file, sourced by a shell, sets exactly the planned values."""
    script = case_results["baseline"]["dir"] / "etc_profile.d_kprov-kbuild.sh"
    expected = baseline()["kbuild_host_buildenv"]
    dump = "import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))"
    out = subprocess.run(
        ["sh", "-c", f'. "$1" && exec "{sys.executable}" -c "$2" ' + " ".join(expected), "sh", str(script), dump],
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == expected


def test_a_whole_role_run_stops_in_validation_and_changes_nothing(work_dir):
    """The role as `kprov apply` runs it (plan and variables as extra vars), in check mode."""
    tmp_path = work_dir / "site"
    tmp_path.mkdir()
    role_vars = baseline(full=True)
    role_vars["kbuild_host_distcc_allow"] = ["::ffff:0.0.0.0/96"]
    role_vars["kbuild_host_distcc_listen"] = "::ffff:0.0.0.0"
    (tmp_path / "vars.yml").write_text(_yaml(_unsafe(role_vars)))
    (tmp_path / "site.yml").write_text(
        "- name: Converge\n  hosts: localhost\n  gather_facts: true\n  roles:\n    - role: kbuild_host\n"
    )
    proc = _playbook(tmp_path, tmp_path / "site.yml", "-e", "@vars.yml")
    out = proc.stdout
    assert proc.returncode == 2, out[-4000:]
    # The last task that ran is the validator, and it failed: no task of an area (the only ones
    # that write) was reached, and Ansible counts no change.
    tasks = [line for line in out.splitlines() if line.startswith("TASK [")]
    assert tasks[-1].startswith(f"TASK [kbuild_host : {VALIDATOR_TASK}]"), tasks[-3:]
    assert "whole Internet" in out.split(tasks[-1], 1)[1], out[-4000:]
    recap = next(line for line in out.splitlines() if line.startswith("localhost") and "changed=" in line)
    assert "changed=0" in recap and "failed=1" in recap, recap


def test_the_filter_plugin_says_install_kprov_when_it_is_missing():
    """A controller without kprov: every filter fails with one line that says what to install."""
    code = (
        "import importlib.util, inspect, sys\n"
        "from ansible.errors import AnsibleFilterError\n"
        "class NoKprov:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'provision' or name.startswith('provision.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoKprov())\n"
        f"spec = importlib.util.spec_from_file_location('kprov_filters', {str(ROLE / 'filter_plugins' / 'kprov.py')!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "for name, fn in mod.FilterModule().filters().items():\n"
        "    try:\n"
        "        required = [p for p in inspect.signature(fn).parameters.values() if p.default is p.empty]\n"
        "        fn(*[{}] * len(required))\n"
        "    except AnsibleFilterError as exc:\n"
        "        print(name, repr(str(exc)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert len(lines) == len(FILTERS), proc.stdout + proc.stderr
    for line in lines:
        assert "kprov is not installed on the Ansible controller: run `pip install kprov` there" in line, line
        assert "\\n" not in line


def _filters():
    spec = importlib.util.spec_from_file_location("kprov_filters", ROLE / "filter_plugins" / "kprov.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FILTERS = tuple(_filters().FilterModule().filters())


def test_the_filter_plugin_turns_kprov_errors_into_one_line():
    mod = _filters()
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match=r"kbuild_host_distcc_allow '10\.0\.0\.0/8\\n' is not a valid CIDR"):
        mod.kprov_allow(["10.0.0.0/8\n"], False)
    assert mod.kprov_role_vars_problem(baseline()) == ""
    assert "kbuild_host_distcc_listen '0.0.0.0'" in mod.kprov_role_vars_problem({**baseline(), "kbuild_host_distcc_listen": "0.0.0.0"})
