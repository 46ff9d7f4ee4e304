"""provision.inventory: groups from ansible-inventory, facts through a real gather.yml run."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from provision import inventory
from provision.errors import UserError


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
    with pytest.raises(UserError) as info:
        inventory.gather_facts(str(tmp_path / "missing.ini"))
    assert str(info.value) == f"inventory file not found: {tmp_path / 'missing.ini'}"
    assert info.value.exit_code == 2
    with pytest.raises(UserError, match="inventory file not found"):
        inventory.inventory_groups(str(tmp_path / "missing.ini"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_host_is_user_error_naming_it(tmp_path):
    inv = write(tmp_path / "inv.ini", f"""
        web1 ansible_host=127.0.0.1 ansible_port={closed_port()} ansible_connection=ssh ansible_user=nobody
        """)
    with pytest.raises(UserError) as info:
        inventory.gather_facts(str(inv))
    msg = str(info.value)
    assert msg.startswith("host web1 unreachable: ")
    assert "Connection refused" in msg and "\n" not in msg


def test_limit_matching_nothing_is_user_error(tmp_path):
    inv = write(tmp_path / "inv.ini", "a ansible_connection=local\n")
    with pytest.raises(UserError, match="--limit zz matches no host"):
        inventory.gather_facts(str(inv), limit="zz")


def test_gather_facts_of_this_host_through_ansible_match_the_local_facts(tmp_path):
    pytest.importorskip("provision.ansible_facts")
    from provision.facts import gather

    inv = write(tmp_path / "inv.ini", f"""
        [builders]
        here ansible_connection=local ansible_python_interpreter={sys.executable}
        elsewhere ansible_connection=local ansible_python_interpreter={sys.executable}
        """)
    facts = inventory.gather_facts(str(inv), limit="here")
    assert list(facts) == ["here"]
    f = facts["here"]
    local = gather()
    assert f.source == "ansible"
    assert f.cpu.logical == os.cpu_count() == local.cpu.logical
    assert f.cpu.usable == local.cpu.usable
    assert f.memory.total_bytes == local.memory.total_bytes
    assert f.zram.compressors == local.zram.compressors
    assert f.distro.family == local.distro.family
