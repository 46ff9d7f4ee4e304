"""provision.apply.inventory: groups and variables from ansible-inventory, facts through a real gather.yml run.

Every inventory here names this machine only (local connection, or ssh to a closed loopback port).
"""

from __future__ import annotations

import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from provision.apply import inventory
from provision.errors import EnvironmentProblem, UserError
from provision.fleet.plan import plan_inventory


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_inventory_groups_include_children_hosts_in_inventory_order(tmp_path):
    inv = write(tmp_path / "inv.ini", """
        loner
        [distcc_servers]
        build2
        build1
        [distcc_clients]
        laptop
        [farm:children]
        distcc_servers
        distcc_clients
        [empty]
        """)
    groups = inventory.inventory_groups(str(inv))
    assert groups["distcc_servers"] == ["build2", "build1"]
    assert groups["farm"] == ["build2", "build1", "laptop"]
    assert groups["ungrouped"] == ["loner"]
    assert sorted(groups["all"]) == ["build1", "build2", "laptop", "loner"]
    assert next(iter(groups)) == "all", "ansible-inventory lists all first"


def test_groups_from_list_survives_a_child_cycle():
    data = {"_meta": {"hostvars": {"a": {}, "b": {}}},
            "all": {"children": ["x"]},
            "x": {"hosts": ["a"], "children": ["y"]},
            "y": {"hosts": ["b"], "children": ["x"]}}
    groups = inventory.groups_from_list(data)
    assert groups["x"] == ["a", "b"] and groups["all"] == ["a", "b"]


def test_missing_inventory_is_user_error_exit_2(tmp_path):
    for gather in (inventory.gather_fleet, inventory.gather_facts):
        with pytest.raises(UserError) as info:
            gather(str(tmp_path / "missing.ini"))
        assert str(info.value) == f"inventory file not found: {tmp_path / 'missing.ini'}"
        assert info.value.exit_code == 2
    with pytest.raises(UserError, match="inventory file not found"):
        inventory.inventory_groups(str(tmp_path / "missing.ini"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_host_is_a_host_failure_exit_1_naming_it(tmp_path, state_home):
    inv = write(tmp_path / "inv.ini", f"""
        web1 ansible_host=127.0.0.1 ansible_port={closed_port()} ansible_connection=ssh ansible_user=nobody
        """)
    with pytest.raises(EnvironmentProblem) as info:
        inventory.gather_fleet(str(inv))
    msg = str(info.value)
    assert info.value.exit_code == 1
    assert msg.startswith("host web1 unreachable: ")
    assert "Connection refused" in msg and "\n" not in msg
    assert f"; run artifacts: {state_home}" in msg


def test_limit_matching_nothing_is_user_error(tmp_path):
    inv = write(tmp_path / "inv.ini", "a ansible_connection=local\n")
    with pytest.raises(UserError, match="--limit zz matches no host"):
        inventory.gather_fleet(str(inv), limit="zz")


@pytest.mark.parametrize("value", ["\"{{ lookup('pipe', 'id') }}\"", "'10.0.0.{% if true %}1{% endif %}'"])
def test_a_templated_farm_variable_is_refused_before_anything_runs(tmp_path, state_home, value):
    inv = write(tmp_path / "inv.yml", f"""
        all:
          hosts:
            here:
              ansible_connection: local
              kbuild_host_farm_address: {value}
        """)
    with pytest.raises(UserError) as info:
        inventory.gather_fleet(str(inv))
    assert str(info.value) == (
        "host here: kbuild_host_farm_address is a Jinja template in the inventory; kprov plan -i reads "
        "inventory values as written: give the value itself"
    )
    assert not (state_home / "kprov" / "runs").exists() or not any((state_home / "kprov" / "runs").iterdir())


def test_host_vars_as_written():
    listed = {
        "kbuild_host_farm_address": {"__ansible_unsafe": "10.0.0.{{ 5 }}"},  # !unsafe: literal text
        "ansible_host": "{{ inventory_hostname }}.lab",  # only tells members apart: left out
        "kbuild_host_goals": {"zram": True, "allow": [{"__ansible_unsafe": "10.0.0.0/8"}]},
        "some_other_var": "{{ ignored }}",
    }
    assert inventory.host_vars("h", listed) == {
        "kbuild_host_farm_address": "10.0.0.{{ 5 }}",
        "kbuild_host_goals": {"zram": True, "allow": ["10.0.0.0/8"]},
    }
    with pytest.raises(UserError, match="^host h: kbuild_host_goals is a Jinja template"):
        inventory.host_vars("h", {"kbuild_host_goals": {"allow": ["{{ nets }}"]}})


FLEET_INVENTORY = f"""
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: {sys.executable}
  hosts:
    loner:
      kbuild_host_goals: {{jobs: 1, zram: false}}
  children:
    distcc_servers:
      hosts:
        box1:
          ansible_host: 127.0.0.1
          kbuild_host_farm_address: 127.0.0.2
    distcc_clients:
      hosts:
        box2:
          kbuild_host_farm_address: !unsafe 127.0.0.3
"""


@pytest.fixture(scope="module")
def gathered(tmp_path_factory):
    """One real gather run over three inventory hosts that are all this machine."""
    tmp = tmp_path_factory.mktemp("fleet")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(tmp / "state"))
        inv = write(tmp / "inv.yml", FLEET_INVENTORY)
        return inv, inventory.gather_fleet(str(inv))


def test_gather_fleet_returns_facts_and_the_inventorys_variables(gathered):
    from provision.facts.local import gather

    _, found = gathered
    assert list(found.hosts) == ["loner", "box1", "box2"]
    assert found.hosts["box1"].vars == {"ansible_host": "127.0.0.1", "kbuild_host_farm_address": "127.0.0.2"}
    assert found.hosts["box2"].vars == {"kbuild_host_farm_address": "127.0.0.3"}
    assert found.hosts["loner"].vars == {"kbuild_host_goals": {"jobs": 1, "zram": False}}
    hv = found.hosts["box1"].hostvars()
    assert hv["inventory_hostname"] == "box1" and hv["kbuild_host_farm_address"] == "127.0.0.2"
    assert "hostname" in hv["ansible_facts"] and "ansible_hostname" not in hv["ansible_facts"]
    f = found.hosts["box1"].facts()
    local = gather()
    assert f.source == "ansible"
    assert f.cpu.logical == os.cpu_count() == local.cpu.logical
    assert f.cpu.usable == local.cpu.usable
    assert f.memory.total_bytes == local.memory.total_bytes
    assert f.zram.compressors == local.zram.compressors
    assert f.distro.family == local.distro.family


def test_a_host_planned_from_the_inventory_gets_its_own_goals(gathered):
    from provision.facts.catalog import load_catalog
    from provision.model.goals import Goals

    _, found = gathered
    alone = {"loner": found.hosts["loner"]}
    plans = plan_inventory(alone, {"all": ["loner"]}, Goals(), load_catalog())
    assert plans["loner"].jobs.value == 1 and plans["loner"].jobs.overridden
    # goals given on the command line replace the inventory's, as extra vars do in a play
    plans = plan_inventory(alone, {"all": ["loner"]}, Goals(jobs=2), load_catalog())
    assert plans["loner"].jobs.value == 2


def test_two_inventory_hosts_that_are_one_machine_cannot_form_a_farm(gathered):
    from provision.facts.catalog import load_catalog
    from provision.model.goals import Goals

    _, found = gathered
    hostname = found.hosts["box1"].hostvars()["ansible_facts"]["hostname"]
    with pytest.raises(UserError) as info:
        plan_inventory(found.hosts, found.groups, Goals(), load_catalog())
    # both report this machine's hostname: neither may put it in the other's /etc/hosts
    assert str(info.value) == (
        f"distcc farm member box1: its facts hostname '{hostname}' is also member box2's facts hostname; "
        "members are named by the inventory, not by their own facts (and 1 more farm members refused)"
    )


def test_a_limit_gathers_its_hosts_and_keeps_the_whole_inventorys_groups(gathered):
    inv, _ = gathered
    found = inventory.gather_fleet(str(inv), limit="box1")
    assert list(found.hosts) == ["box1"] and found.hosts["box1"].facts().source == "ansible"
    assert found.groups["distcc_clients"] == ["box2"] and found.groups["all"] == ["loner", "box1", "box2"]
