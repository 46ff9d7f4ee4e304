"""An inventory is code to Ansible; kprov's own variables in it are data; a store URL names one host.

* An inventory (its file or directory, ``group_vars/`` and ``host_vars/``, every directory on the
  way) that anyone but root or the running user could change is refused before Ansible starts:
  a templated ``ansible_host`` or ``ansible_python_interpreter`` and an executable inventory
  would otherwise run as root. A trusted one still runs its lookups, as a playbook would.
* ``kprov plan -i`` and the role read the same variables: the cache's group names, a goal key
  kprov does not know and a group name that is not one are one-line errors naming host and key.
* A store URL's address is one host's unicast address, as ``--listen`` and ``--host-entry`` are.

Every inventory here names this machine only (local connection); nothing talks to the network.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import private_home
from test_fleet import gathered, load_filter_plugin

from provision.apply import inventory
from provision.apply.inventory import InventoryHost
from provision.apply.trust import check_inventory_trusted, trusted_uids
from provision.cli.app import Kprov
from provision.errors import UserError
from provision.facts.catalog import load_catalog
from provision.fleet.hostvars import (
    GROUP_VARS,
    cache_goals_from_hostvars,
    farm_goals_from_hostvars,
)
from provision.fleet.plan import plan_inventory
from provision.model.goals import Goals
from provision.rules.addresses import check_host_address, check_listen
from provision.rules.store import check_remote_var, check_store_url

ROOT = Path(__file__).resolve().parent.parent
ROLE = ROOT / "playbooks" / "roles" / "kbuild_host"
GOOD_FACTS = ROOT / "tests" / "fixtures" / "laptop-8c-16g.json"
NOBODY = 65534
GOOD_TOKEN = "Zk3v9Qx-_p0LmN4rT7yW2aB5cD8eF1gH6iJ0kL3mN9o"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="gives files to another user (chown): runs as root")


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME and state dir, no sudo caller: whatever kprov would write lands here."""
    return private_home(tmp_path, monkeypatch)


def runs(sandbox: Path) -> list[Path]:
    """The run directories Ansible left: none means no playbook started."""
    root = sandbox / "state" / "kprov" / "runs"
    return list(root.iterdir()) if root.exists() else []


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(mode)
    return path


def place(tmp_path: Path) -> Path:
    """A directory only root can write, for an inventory."""
    d = tmp_path / "ops"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    return d


def refused(path: Path | str, match: str) -> str:
    with pytest.raises(UserError) as info:
        check_inventory_trusted(str(path))
    message = str(info.value)
    assert info.value.exit_code == 2
    assert message.startswith(f"-i {path}: ") and "\n" not in message
    assert match in message, message
    assert message.endswith("so only root may be able to change it")
    return message


# --------------------------------------------------------------------------- 6: an inventory is code


def lookup_inventory(marker: Path, variable: str) -> str:
    return f"""
        all:
          hosts:
            here:
              ansible_connection: local
              ansible_python_interpreter: {sys.executable}
              {variable}: "{{{{ lookup('pipe', 'touch {marker} && echo 127.0.0.1') }}}}"
        """


def weak_file(d: Path, text: str) -> Path:
    return write(d / "inv.yml", text, 0o666)


def group_writable(d: Path, text: str) -> Path:
    return write(d / "inv.yml", text, 0o664)


def someone_elses(d: Path, text: str) -> Path:
    inv = write(d / "inv.yml", text)
    os.chown(inv, NOBODY, NOBODY)
    return inv


def someone_elses_group_vars(d: Path, text: str) -> Path:
    inv = write(d / "inv.yml", "all:\n  hosts:\n    here:\n      ansible_connection: local\n")
    body = "\n".join(line.strip() for line in textwrap.dedent(text).splitlines() if ":" in line and "{{" in line)
    os.chown(write(d / "group_vars" / "all.yml", body + "\n"), NOBODY, NOBODY)
    return inv


def world_writable_host_vars(d: Path, text: str) -> Path:
    inv = write(d / "inv.yml", "all:\n  hosts:\n    here:\n      ansible_connection: local\n")
    body = "\n".join(line.strip() for line in textwrap.dedent(text).splitlines() if ":" in line and "{{" in line)
    write(d / "host_vars" / "here" / "main.yml", body + "\n")
    (d / "host_vars" / "here").chmod(0o777)
    return inv


def sticky_world_writable_directory(d: Path, text: str) -> Path:
    inv = write(d / "inv.yml", text)
    d.chmod(0o1777)  # like /tmp: anyone may add group_vars/ beside the inventory
    return inv


def inventory_directory_with_a_stranger(d: Path, text: str) -> Path:
    inv_dir = d / "inventory"
    write(inv_dir / "10-hosts.yml", "all:\n  hosts:\n    here:\n      ansible_connection: local\n")
    os.chown(write(inv_dir / "sub" / "20-more.yml", text), NOBODY, NOBODY)
    return inv_dir


WEAKNESSES = {
    "world-writable file": (weak_file, "writable by everyone (mode 0666)"),
    "group-writable file": (group_writable, "writable by its group (mode 0664)"),
    "file of another user": (someone_elses, "belongs to nobody (uid 65534)"),
    "group_vars of another user": (someone_elses_group_vars, "group_vars/all.yml belongs to nobody"),
    "world-writable host_vars": (world_writable_host_vars, "host_vars/here is writable by everyone"),
    "sticky world-writable directory": (sticky_world_writable_directory, "the sticky bit does not stop"),
    "inventory directory holding a stranger's file": (inventory_directory_with_a_stranger, "sub/20-more.yml belongs"),
}


@pytest.mark.parametrize("variable", ["ansible_host", "ansible_python_interpreter"])
@pytest.mark.parametrize("weakness", list(WEAKNESSES))
@pytest.mark.parametrize("command", [("plan",), ("apply", "--check")], ids=["plan", "apply-check"])
def test_an_inventory_others_can_change_is_refused_before_its_lookup_runs(
    tmp_path, sandbox, capsys, weakness, variable, command
):
    make, needle = WEAKNESSES[weakness]
    marker = tmp_path / "ran-as-root"
    inv = make(place(tmp_path), lookup_inventory(marker, variable))
    _, rc = Kprov.run(["kprov", *command, "-i", str(inv)], exit=False)
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith(f"kprov: -i {inv}: ") and needle in err
    assert "an inventory is code to Ansible" in err
    assert not marker.exists()
    assert runs(sandbox) == []


@pytest.mark.parametrize("mode, owner", [(0o777, 0), (0o755, NOBODY)], ids=["world-writable", "another user's"])
def test_an_executable_inventory_others_can_change_never_runs(tmp_path, sandbox, capsys, mode, owner):
    marker = tmp_path / "script-ran"
    script = write(place(tmp_path) / "inventory.sh", f"""
        #!/bin/sh
        touch {marker}
        echo '{{"_meta": {{"hostvars": {{}}}}, "all": {{"hosts": ["here"]}}}}'
        """, mode)
    os.chown(script, owner, owner)
    _, rc = Kprov.run(["kprov", "plan", "-i", str(script)], exit=False)
    _, err = capsys.readouterr()
    assert rc == 2 and err.startswith(f"kprov: -i {script}: "), err
    assert not marker.exists()
    # the apply layer refuses it too, for any caller that reaches it without the command line
    with pytest.raises(UserError, match="an inventory is code"):
        inventory.list_inventory(str(script))
    with pytest.raises(UserError, match="an inventory is code"):
        inventory.gather_fleet(str(script))
    assert not marker.exists() and runs(sandbox) == []


def test_a_trusted_inventory_is_code_its_lookups_run(tmp_path, sandbox):
    """Why the refusal matters: an inventory root and the user alone can change runs as a playbook."""
    marker = tmp_path / "ran"
    inv = write(place(tmp_path) / "inv.yml", lookup_inventory(marker, "ansible_host"))
    check_inventory_trusted(str(inv))
    found = inventory.gather_fleet(str(inv))
    assert list(found.hosts) == ["here"]
    assert marker.exists()


def test_a_directory_on_the_way_that_others_can_write_is_refused(tmp_path):
    d = place(tmp_path)
    (d / "team").mkdir()
    inv = write(d / "team" / "fleet" / "inv.yml", "all: {}\n")
    check_inventory_trusted(str(inv))
    (d / "team").chmod(0o777)  # anyone may rename fleet/ and put their own in its place
    refused(inv, f"{d / 'team'} is writable by everyone (mode 0777)")
    (d / "team").chmod(0o775)
    refused(inv, f"{d / 'team'} is writable by its group (mode 0775)")
    (d / "team").chmod(0o755)
    os.chown(d / "team", NOBODY, NOBODY)
    refused(inv, f"{d / 'team'} belongs to nobody")


def test_a_sticky_directory_on_the_way_is_fine_for_an_inventory_directory(tmp_path):
    d = place(tmp_path)
    d.chmod(0o1777)  # like /tmp: nobody else can rename or replace what is in it
    inv_dir = d / "inventory"
    write(inv_dir / "hosts.yml", "all: {}\n")
    inv_dir.chmod(0o755)
    check_inventory_trusted(str(inv_dir))
    inv_dir.chmod(0o1777)  # but the inventory directory itself: anyone could add a file to it
    refused(inv_dir, f"{inv_dir} is writable by everyone (mode 1777; the sticky bit")


def test_symbolic_links_are_followed_and_judged_on_the_way(tmp_path):
    d = place(tmp_path)
    inv = write(d / "inv.yml", "all: {}\n")
    sticky = tmp_path / "shared"
    sticky.mkdir()
    sticky.chmod(0o1777)
    link = sticky / "inv.yml"
    link.symlink_to(inv)
    check_inventory_trusted(str(link))
    os.lchown(link, NOBODY, NOBODY)  # its owner may replace it, even in a sticky directory
    refused(link, f"{link} belongs to nobody")
    link.unlink()
    elsewhere = write(tmp_path / "theirs" / "inv.yml", "all: {}\n")
    os.chown(elsewhere, NOBODY, NOBODY)
    link.symlink_to(elsewhere)
    refused(link, f"{elsewhere} belongs to nobody")
    # a link inside group_vars that leads into a directory anyone may write
    open_dir = tmp_path / "open"
    write(open_dir / "all.yml", "x: 1\n")
    open_dir.chmod(0o777)
    (d / "group_vars").mkdir()
    (d / "group_vars" / "all.yml").symlink_to(open_dir / "all.yml")
    refused(inv, f"{open_dir} is writable by everyone")


def test_what_ansible_skips_in_an_inventory_directory_is_not_judged(tmp_path):
    inv_dir = place(tmp_path) / "inventory"
    write(inv_dir / "hosts.yml", "all: {}\n")
    os.chown(write(inv_dir / ".git" / "config", "[core]\n"), NOBODY, NOBODY)
    check_inventory_trusted(str(inv_dir))
    os.chown(write(inv_dir / "group_vars" / ".all.yml", "x: 1\n"), NOBODY, NOBODY)
    refused(inv_dir, "group_vars/.all.yml belongs to nobody")  # variables directories: every file


def test_a_missing_inventory_is_left_to_the_not_found_error(tmp_path):
    check_inventory_trusted(str(tmp_path / "missing.yml"))
    with pytest.raises(UserError, match="^inventory file not found"):
        inventory.list_inventory(str(tmp_path / "missing.yml"))


def test_the_path_in_the_refusal_is_escaped(tmp_path):
    d = place(tmp_path) / "a\nb\x1b[2J"
    d.mkdir()
    inv = write(d / "inv.yml", "all: {}\n")
    d.chmod(0o777)
    with pytest.raises(UserError) as info:
        check_inventory_trusted(str(inv))
    message = str(info.value)
    assert "a\\nb\\x1b[2J is writable by everyone" in message
    assert message.isprintable()


def test_the_user_who_ran_sudo_is_the_running_user(tmp_path, monkeypatch):
    inv = write(place(tmp_path) / "inv.yml", "all: {}\n")
    os.chown(inv, NOBODY, NOBODY)
    refused(inv, "belongs to nobody (uid 65534)")
    monkeypatch.setenv("SUDO_UID", str(NOBODY))
    assert trusted_uids() == {0, NOBODY}
    check_inventory_trusted(str(inv))
    os.chown(inv, 4321, 4321)  # nobody ran sudo: a third user's file is still refused
    with pytest.raises(UserError, match=r"belongs to uid 4321; .* so only root or nobody \(uid 65534\) may"):
        check_inventory_trusted(str(inv))
    for garbage in ("65534 ", "-1", "0x10", "\u0663", "9" * 20):
        monkeypatch.setenv("SUDO_UID", garbage)
        assert trusted_uids() == {0}


def test_a_trusted_inventory_with_group_vars_is_listed_with_the_cache_groups(tmp_path):
    d = place(tmp_path)
    inv = write(d / "inv.yml", f"""
        all:
          hosts:
            here:
              ansible_connection: local
              ansible_python_interpreter: {sys.executable}
        """)
    write(d / "group_vars" / "all" / "cache.yml", """
        kbuild_host_ccache_writer_group: trusted
        kbuild_host_ccache_store_group: !unsafe cache_box
        """)
    listed = inventory.list_inventory(str(inv))["_meta"]["hostvars"]["here"]
    assert inventory.host_vars("here", listed) == {
        "kbuild_host_ccache_writer_group": "trusted",
        "kbuild_host_ccache_store_group": "cache_box",
    }


@pytest.mark.parametrize("variables, name", [
    ({"kbuild_host_ccache_writer_group": "{{ lookup('pipe', 'id') }}"}, "kbuild_host_ccache_writer_group"),
    ({"kbuild_host_ccache_store_group": "{% if true %}store{% endif %}"}, "kbuild_host_ccache_store_group"),
    ({"kbuild_host_distcc_nice": "{{ 5 }}"}, "kbuild_host_distcc_nice"),  # not read by the plan: the role renders it
    ({"kbuild_host_zram_sysctls": {"{{ k }}": 1}}, "kbuild_host_zram_sysctls"),
    ({"kbuild_host_goals": {"ccache_dir": "{# note #}/srv"}}, "kbuild_host_goals"),
])
def test_kprovs_own_variables_are_never_templates(variables, name):
    with pytest.raises(UserError) as info:
        inventory.host_vars("web1", {"ansible_host": "{{ inventory_hostname }}.lab", **variables})
    assert str(info.value).startswith(f"host web1: {name} is a Jinja template in the inventory")


# --------------------------------------------------------------------------- 11: one reading of the variables


def fleet_hosts(extra_vars: dict | None = None, per_host: dict | None = None) -> dict[str, InventoryHost]:
    """A store, two more hosts (what gather_fleet returns), with the same group variables on all."""
    addresses = {"store1": "10.89.7.5", "ci1": "10.89.7.21", "laptop1": "10.89.7.22"}
    hosts = {}
    for i, (name, address) in enumerate(addresses.items()):
        setup, probe = gathered(name, 4 + 4 * i, 16, address)
        v = {**(extra_vars or {}), **(per_host or {}).get(name, {})}
        hosts[name] = InventoryHost(name=name, setup=setup, probe=probe, vars=v)
    return hosts


def test_the_writer_group_the_inventory_names_makes_the_same_writers_as_the_role(tmp_path):
    hosts = fleet_hosts({"kbuild_host_ccache_writer_group": "trusted"})
    groups = {"all": list(hosts), "ccache_store": ["store1"], "trusted": ["ci1"], "ccache_writers": ["laptop1"]}
    plans = plan_inventory(hosts, groups, Goals(), load_catalog(), cache_secrets_dir=str(tmp_path / "s"))
    assert plans["ci1"].ccache.fleet_role == "writer" and plans["ci1"].ccache.remote.write
    assert plans["laptop1"].ccache.fleet_role == "reader" and not plans["laptop1"].ccache.remote.write
    assert {u.name: u.write for u in plans["store1"].ccache.store.users} == {"store1": True, "ci1": True, "laptop1": False}
    # the role's filter, handed the same variable, says the same of each host
    hostvars = {n: h.hostvars() for n, h in hosts.items()}
    store = plans["store1"].ccache.store
    for name in ("ci1", "laptop1"):
        goals = cache_goals_from_hostvars(name, hostvars, groups, {}, str(tmp_path / "s"), "ccache_store", "trusted",
                                          (store.backend, store.port))
        assert goals["ccache_remote"]["write"] == plans[name].ccache.remote.write
        assert goals["ccache_fleet_role"] == plans[name].ccache.fleet_role


def test_the_store_group_the_inventory_names_is_the_store():
    hosts = fleet_hosts({"kbuild_host_ccache_store_group": "cache_box"})
    groups = {"all": list(hosts), "cache_box": ["laptop1"], "ccache_store": ["store1"]}
    plans = plan_inventory(hosts, groups, Goals(), load_catalog(), cache_secrets_dir="/nonexistent/s")
    assert plans["laptop1"].ccache.store is not None and plans["store1"].ccache.store is None
    assert plans["store1"].ccache.fleet_role == "reader"


def test_hosts_that_name_different_cache_groups_are_one_line():
    hosts = fleet_hosts(per_host={"laptop1": {"kbuild_host_ccache_writer_group": "trusted"}})
    with pytest.raises(UserError) as info:
        plan_inventory(hosts, {"all": list(hosts)}, Goals(), load_catalog())
    assert str(info.value) == (
        "kbuild_host_ccache_writer_group is 'ccache_writers' on store1 but 'trusted' on laptop1: "
        "one inventory, one shared compile cache"
    )


@pytest.mark.parametrize("goals, message", [
    ({"ccache_privat": True}, "kbuild_host_goals: unknown key 'ccache_privat' (did you mean 'ccache_private'?)"),
    ({"zram": True, "jbos": 4}, "kbuild_host_goals: unknown key 'jbos' (did you mean 'jobs'?)"),
    ({"ccache_remote": {"url": "redis://10.0.0.5:6380", "user": "ci1", "secret_file": "/etc/k", "writes": True}},
     "kbuild_host_goals.ccache_remote: unknown key 'writes' (did you mean 'write'?)"),
    ({"host_entries": [{"address": "10.0.0.7", "names": ["b"], "alias": "c"}]},
     "kbuild_host_goals.host_entries[0]: unknown key 'alias'"),
    ({"jobs": "4"}, "kbuild_host_goals.jobs: expected an integer, got '4'"),
    ({"ccache_private": "yes"}, "kbuild_host_goals.ccache_private: expected true/false, got 'yes'"),
])
def test_a_goal_kprov_does_not_know_or_of_the_wrong_type_is_refused_by_plan_and_role(goals, message):
    from ansible.errors import AnsibleFilterError

    hosts = fleet_hosts(per_host={"ci1": {"kbuild_host_goals": goals}})
    with pytest.raises(UserError) as info:
        plan_inventory(hosts, {"all": list(hosts)}, Goals(), load_catalog())
    assert str(info.value) == f"host ci1: {message}"
    with pytest.raises(AnsibleFilterError) as role:
        load_filter_plugin().kprov_plan_vars(hosts["ci1"].hostvars()["ansible_facts"], hosts["ci1"].probe, goals)
    assert str(role.value) == message


@pytest.mark.parametrize("goals, got", [([], "list"), ("", "str"), (0, "int"), (False, "bool")])
def test_kbuild_host_goals_that_is_not_a_mapping_is_refused_not_emptied(goals, got):
    hosts = fleet_hosts(per_host={"laptop1": {"kbuild_host_goals": goals}})
    with pytest.raises(UserError) as info:
        plan_inventory(hosts, {"all": list(hosts)}, Goals(), load_catalog())
    assert str(info.value) == f"host laptop1: kbuild_host_goals: expected a mapping, got {got}"


@pytest.mark.parametrize("var", list(GROUP_VARS))
@pytest.mark.parametrize("value, shown", [
    (["farm"], "is a list: expected the name of an inventory group"),
    ({"name": "farm"}, "is an object: expected the name of an inventory group"),
    (5, "is 5: expected the name of an inventory group"),
    ("distcc servers", "'distcc servers' is not an inventory group name"),
    ("1farm", "'1farm' is not an inventory group name"),
    ("farm\n", "'farm\\n' is not an inventory group name"),
    ("", "'' is not an inventory group name"),
])
def test_a_group_name_variable_that_is_not_a_group_name_is_one_line_naming_host_and_key(var, value, shown):
    hosts = fleet_hosts(per_host={"ci1": {var: value}})
    with pytest.raises(UserError) as info:
        plan_inventory(hosts, {"all": list(hosts)}, Goals(), load_catalog(), cache_secrets_dir="/nonexistent/s")
    assert str(info.value).startswith(f"host ci1: {var} {shown}")


def test_the_roles_filters_refuse_a_group_name_that_is_not_one():
    from ansible.errors import AnsibleFilterError

    plugin = load_filter_plugin()
    hosts = fleet_hosts()
    hostvars = {n: h.hostvars() for n, h in hosts.items()}
    groups = {"all": list(hosts), "farm": ["store1"], "distcc_clients": ["ci1"], "ccache_store": ["store1"]}
    with pytest.raises(AnsibleFilterError, match="^kbuild_host_distcc_server_group 'distcc servers' is not an inventory"):
        plugin.kprov_farm_goals("ci1", hostvars, groups, {}, "distcc servers", "distcc_clients")
    with pytest.raises(AnsibleFilterError, match="^kbuild_host_ccache_writer_group 'ci writers' is not an inventory group"):
        plugin.kprov_cache_goals("ci1", hostvars, groups, {}, "/nonexistent/s", "ccache_store", "ci writers")
    with pytest.raises(UserError, match="^kbuild_host_ccache_store_group 'store-1' is not an inventory group"):
        cache_goals_from_hostvars("ci1", hostvars, groups, {}, "/nonexistent/s", "store-1", "ccache_writers")
    with pytest.raises(UserError, match="^kbuild_host_distcc_client_group 'x-y' is not an inventory group"):
        farm_goals_from_hostvars("laptop1", hostvars, groups, {}, "farm", "x-y")


def test_the_group_variables_and_their_defaults_are_the_roles():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    for var, default in GROUP_VARS.items():
        assert defaults[var] == default, var
        assert specs[var]["default"] == default and specs[var]["type"] == "str", var
    assert set(GROUP_VARS) <= set(inventory.HOST_VARS)  # plan -i lists what it reads


# --------------------------------------------------------------------------- 12: a store URL names one host


@pytest.mark.parametrize("url, why", [
    ("redis://0.0.0.0:6380", "'0.0.0.0' is the unspecified address"),
    ("redis://[::]:6380", "'::' is the unspecified address"),
    ("redis://[0:0:0:0:0:0:0:0]:6380", "is the unspecified address"),
    ("redis://[::ffff:0.0.0.0]:6380", "is the unspecified address"),
    ("http://224.0.0.1:8380/cache/", "it lies in 224.0.0.0/4"),
    ("redis://239.255.255.250:6380", "it lies in 224.0.0.0/4"),
    ("redis://255.255.255.255:6380", "it lies in 240.0.0.0/4"),
    ("redis://[ff02::1]:6380", "it lies in ff00::/8"),
    ("redis://[::ffff:224.0.0.1]:6380", "it lies in 224.0.0.0/4"),
    ("redis://0.1.2.3:6380", "it lies in 0.0.0.0/8"),
    ("redis://[fe80::1]:6380", "is link-local"),
])
def test_a_store_url_whose_address_is_no_single_host_is_refused(url, why):
    with pytest.raises(UserError) as info:
        check_store_url(url, "--ccache-remote")
    assert str(info.value).startswith("--ccache-remote host ") and why in str(info.value)
    with pytest.raises(UserError, match="^kbuild_host_ccache_remote.url host "):  # the role's variable, too
        check_remote_var({"url": url, "user": "ci1", "secret_file": "/etc/kprov/s"})


@pytest.mark.parametrize("url, canonical", [
    ("redis://10.0.0.5:6380", "redis://10.0.0.5:6380"),
    ("redis://[fd00::5]:6380", "redis://[fd00::5]:6380"),
    ("http://127.0.0.1:8380/cache/", "http://127.0.0.1:8380/cache/"),
    ("redis://store1.lab.example", "redis://store1.lab.example:6380"),
    ("redis://localhost:6380", "redis://localhost:6380"),
])
def test_a_store_url_with_one_hosts_address_or_a_name_is_kept(url, canonical):
    assert str(check_store_url(url, "--ccache-remote")) == canonical


def test_the_command_line_refuses_a_store_url_of_every_address(tmp_path, capsys):
    secret = tmp_path / "secret"
    secret.write_text(GOOD_TOKEN + "\n")
    secret.chmod(0o600)
    for url in ("redis://0.0.0.0:6380", "redis://[::]:6380", "redis://224.0.0.1:6380"):
        _, rc = Kprov.run(["kprov", "plan", "--facts", str(GOOD_FACTS), "--ccache-remote", url,
                           "--ccache-remote-secret", str(secret)], exit=False)
        out, err = capsys.readouterr()
        assert rc == 2 and out == "" and len(err.splitlines()) == 1, err
        assert err.startswith("kprov: --ccache-remote host "), err


def test_the_listen_rule_and_the_url_rule_are_one_rule():
    for text in ("224.0.0.1", "ff02::1", "255.255.255.255", "::ffff:240.0.0.1"):
        with pytest.raises(UserError) as listen:
            check_listen(text, ("10.0.0.0/8",) if "." in text else ("fd00::/8",))
        with pytest.raises(UserError) as host:
            check_host_address(text, "--listen")
        assert str(listen.value) == str(host.value)
    assert str(check_host_address("::ffff:10.0.0.5", "x")) == "10.0.0.5"
