"""Fleet planning (provision/fleet/): the farm through hostvars, plan_fleet, plan_inventory, output.

The farm rules themselves are tested in test_farm.py; here: that the role's path (hostvars, the
role's own filter plugin) and ``kprov plan -i``'s path give the same plans host by host.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import ipaddress
import json
from pathlib import Path

import pytest

from provision.apply.inventory import InventoryHost
from provision.errors import KprovError, UserError
from provision.fleet.hostvars import farm_goals_from_hostvars
from provision.fleet.plan import plan_fleet, plan_inventory
from provision.fleet.table import fleet_json, fleet_rows, render_fleet
from provision.model.facts import CpuFacts, DiskFacts, DistroFacts, HostFacts, MemoryFacts, ZramFacts
from provision.model.goals import Goals, HostEntry
from provision.units import GIB

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
FILTER_PLUGIN = ROOT / "playbooks" / "roles" / "kbuild_host" / "filter_plugins" / "kprov.py"

GROUPS = {
    "all": ["server1", "server2", "client1", "client2", "outsider"],
    "distcc_servers": ["server1", "server2"],
    "distcc_clients": ["client1", "client2"],
    "outsiders": ["outsider"],
}
ADDRESSES = {
    "server1": "10.89.7.11",
    "server2": "10.89.7.12",
    "client1": "10.89.7.21",
    "client2": "10.89.8.22",
    "outsider": "10.89.7.99",
}
JOBS = {"server1": 8, "server2": 4, "client1": 2, "client2": 2, "outsider": 2}


def _hostvars(addresses=ADDRESSES, jobs=JOBS, extra=None):
    """hostvars as Ansible hands them to a filter: ansible_facts + the role's first plan."""
    hv = {}
    for name, address in addresses.items():
        network = ipaddress.ip_network(f"{address}/24", strict=False)
        hv[name] = {
            "inventory_hostname": name,
            "ansible_facts": {
                "hostname": f"{name}-box",
                "default_ipv4": {
                    "address": address,
                    "network": str(network.network_address),
                    "netmask": str(network.netmask),
                    "interface": "eth0",
                },
                "processor_vcpus": jobs[name],
            },
            "kbuild_host_farm_jobs": jobs[name],
        }
        hv[name].update((extra or {}).get(name, {}))
    return hv


def farm_goals(host, hv=None, groups=GROUPS, goals=None, **kw):
    return farm_goals_from_hostvars(host, hv or _hostvars(), groups, goals or {}, **kw)


# --------------------------------------------------------------------------- the farm through hostvars


def test_server_allows_exactly_its_clients_and_listens_on_its_own_address():
    g = farm_goals("server1")
    assert g["distcc_server"] is True
    assert g["allow"] == ["10.89.7.21/32", "10.89.8.22/32"]
    assert g["listen"] == "10.89.7.11"


def test_server_allows_the_subnets_the_facts_give_when_asked():
    g = farm_goals("server2", goals={"farm_allow_subnets": True, "allow": ["192.168.50.0/24"]})
    assert g["allow"] == ["10.89.7.0/24", "10.89.8.0/24", "192.168.50.0/24"]


def test_the_subnet_is_the_one_of_the_interface_that_carries_the_farm_address():
    hv = _hostvars(extra={"client2": {"kbuild_host_farm_address": "10.90.0.22"}})
    hv["client2"]["ansible_facts"].update(
        interfaces=["eth0", "eth1"],
        eth1={"ipv4": {"address": "10.90.0.22", "network": "10.90.0.0", "netmask": "255.255.0.0"}},
    )
    assert farm_goals("server1", hv=hv, goals={"farm_allow_subnets": True})["allow"] == [
        "10.89.7.0/24", "10.90.0.0/16"]


def test_a_zero_length_subnet_from_facts_is_refused_naming_the_client():
    hv = _hostvars()
    hv["client1"]["ansible_facts"]["default_ipv4"].update(network="0.0.0.0", netmask="0.0.0.0")
    with pytest.raises(UserError, match=r"^distcc server server1: client client1's subnet 0\.0\.0\.0/0: "):
        farm_goals("server1", hv=hv, goals={"farm_allow_subnets": True})


def test_client_hosts_carry_each_servers_first_plan_jobs():
    g = farm_goals("client1", goals={"distcc_hosts": ["bigbox/16"]})
    assert g["distcc_hosts"] == ["server1/8", "server2/4", "bigbox/16"]
    assert "distcc_server" not in g


def test_every_member_names_every_member_in_etc_hosts():
    members = GROUPS["distcc_servers"] + GROUPS["distcc_clients"]
    for host in members:
        by_address = {e["address"]: e["names"] for e in farm_goals(host)["host_entries"]}
        assert by_address == {ADDRESSES[m]: [m, f"{m}-box"] for m in members}


def test_non_member_goals_are_returned_unchanged():
    goals = {"zram": True, "jobs": 3}
    assert farm_goals("outsider", goals=goals) == goals


def test_farm_address_variable_wins_over_the_default_route():
    hv = _hostvars(extra={"client1": {"kbuild_host_farm_address": "10.90.0.21"}})
    assert farm_goals("server1", hv=hv)["allow"][0] == "10.90.0.21/32"


def test_flat_ansible_default_ipv4_is_used_when_ansible_facts_lack_it():
    hv = _hostvars()
    del hv["client2"]["ansible_facts"]["default_ipv4"]
    hv["client2"]["ansible_default_ipv4"] = {"address": "10.89.9.9"}
    assert farm_goals("server1", hv=hv)["allow"] == ["10.89.7.21/32", "10.89.9.9/32"]


def test_member_without_address_is_an_error_naming_it():
    hv = _hostvars()
    del hv["client2"]["ansible_facts"]["default_ipv4"]
    with pytest.raises(UserError, match="distcc client client2: no farm address"):
        farm_goals("server1", hv=hv)


def test_an_ipv6_farm_allows_single_addresses_and_a_mixed_one_is_refused():
    v6 = {name: f"fd00::{i + 1:x}" for i, name in enumerate(ADDRESSES)}
    hv = _hostvars(extra={h: {"kbuild_host_farm_address": a} for h, a in v6.items()})
    assert farm_goals("server1", hv=hv)["allow"] == ["fd00::3/128", "fd00::4/128"]
    hv = _hostvars(extra={"client2": {"kbuild_host_farm_address": "fd00::22"}})
    with pytest.raises(UserError, match="^distcc server server1: .*IPv4.*IPv6"):
        farm_goals("server1", hv=hv)


def test_inventory_name_that_is_an_address_is_used_as_address_not_name():
    addresses = dict(ADDRESSES, **{"10.89.7.13": "10.89.7.13"})
    groups = dict(GROUPS, distcc_servers=["server1", "10.89.7.13"])
    hv = _hostvars(addresses=addresses, jobs=dict(JOBS, **{"10.89.7.13": 6}))
    g = farm_goals("client1", hv=hv, groups=groups)
    assert g["distcc_hosts"] == ["server1/8", "10.89.7.13/6"]
    entry = next(e for e in g["host_entries"] if e["address"] == "10.89.7.13")
    assert entry["names"] == ["10.89.7.13-box"]


def test_server_outside_the_play_without_cached_facts_is_an_error():
    hv = _hostvars()
    del hv["server2"]["kbuild_host_farm_jobs"]
    hv["server2"]["ansible_facts"] = {"default_ipv4": {"address": "10.89.7.12"}}
    with pytest.raises(KprovError, match="distcc server server2: not planned in this play"):
        farm_goals("client1", hv=hv)


def test_a_server_does_not_need_other_servers_jobs():
    hv = _hostvars()
    del hv["server2"]["kbuild_host_farm_jobs"]
    assert farm_goals("server1", hv=hv)["distcc_server"] is True


def test_group_names_are_overridable():
    groups = {"cc_s": ["server1"], "cc_c": ["client1"]}
    assert farm_goals("client1", groups=groups, server_group="cc_s", client_group="cc_c")["distcc_hosts"] == ["server1/8"]
    assert farm_goals("server1", groups=groups, server_group="cc_s", client_group="cc_c")["allow"] == ["10.89.7.21/32"]


def test_a_forged_hostname_refuses_that_member_and_the_others_leave_it_out():
    hv = _hostvars()
    hv["client2"]["ansible_facts"]["hostname"] = "server1"
    with pytest.raises(UserError, match="^distcc farm member client2: its facts hostname 'server1' is the inventory name of server1;"):
        farm_goals("client2", hv=hv)
    g = farm_goals("server1", hv=hv)
    assert g["allow"] == ["10.89.7.21/32"]
    assert all(e["address"] != "10.89.8.22" for e in g["host_entries"])


def test_a_facts_address_that_is_another_members_ansible_host_refuses_the_claimer():
    hv = _hostvars(extra={"server2": {"ansible_host": "10.89.8.22"}})  # client2's facts say server2's address
    with pytest.raises(UserError, match=r"^distcc farm member client2: farm address 10\.89\.8\.22 is also member server2's \(in the inventory\)"):
        farm_goals("client2", hv=hv)
    assert farm_goals("server1", hv=hv)["allow"] == ["10.89.7.21/32"]


class Undefined:
    """Stands in for an Ansible undefined value (lazy hostvars)."""


class LazyVars(dict):
    """A mapping that raises an 'Undefined' error for a variable whose template fails, like hostvars."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if value == "{{ undefined_thing }}":
            raise type("AnsibleUndefinedVariable", (Exception,), {})("undefined_thing is undefined")
        return value


def test_undefined_values_read_as_unknown():
    hv = _hostvars()
    hv["client1"] = LazyVars(hv["client1"], kbuild_host_farm_address="{{ undefined_thing }}")
    hv["client2"]["kbuild_host_farm_address"] = Undefined()
    assert farm_goals("server1", hv=hv)["allow"] == ["10.89.7.21/32", "10.89.8.22/32"]


def test_merged_goals_load_as_goals():
    goals = Goals.from_dict(farm_goals("client1", goals={"zram": True}))
    assert goals.zram is True
    assert goals.distcc_hosts == ("server1/8", "server2/4")
    assert HostEntry(address="10.89.7.11", names=("server1", "server1-box")) in goals.host_entries


# --------------------------------------------------------------------------- plan_fleet


def _facts(name: str, cpus: int, ram_gib: float, address: str | None) -> HostFacts:
    ram = int(ram_gib * GIB)
    return HostFacts(
        hostname=name,
        arch="x86_64",
        cpu=CpuFacts(logical=cpus, usable=cpus, affinity=cpus, physical_cores=cpus),
        memory=MemoryFacts(total_bytes=ram, available_bytes=ram * 3 // 4),
        distro=DistroFacts(id="debian", family="debian", version="12", codename="bookworm"),
        disks=(
            DiskFacts(role="build", path="/home", mount="/", free_bytes=200 * GIB, total_bytes=500 * GIB),
            DiskFacts(role="ccache", path="/var/cache/ccache", mount="/", free_bytes=200 * GIB, total_bytes=500 * GIB),
        ),
        zram=ZramFacts(compressors=("lzo-rle", "lzo", "lz4"), active="lzo-rle", source="sysfs", device_present=True),
        toolchain={"gcc": "12.2.0", "make": "4.3", "ccache": "4.7.5", "distcc": "3.4"},
        default_ipv4=address,
    )


@pytest.fixture(scope="module")
def catalog():
    from provision.facts.catalog import load_catalog

    return load_catalog()


@pytest.fixture()
def fleet_facts():
    return {
        "server1": _facts("server1", 16, 64, "10.89.7.11"),
        "server2": _facts("server2.lab.example", 4, 8, "10.89.7.12"),
        "client1": _facts("client1", 2, 4, "10.89.7.21"),
        "client2": _facts("client2", 8, 16, "10.89.8.22"),
        "outsider": _facts("outsider", 2, 2, "10.89.7.99"),
    }


def test_plan_fleet_farm_numbers_come_from_the_servers_plans(fleet_facts, catalog):
    from provision.planner import plan

    plans = plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    s1, s2 = (plan(fleet_facts[h], Goals(), catalog).jobs.value for h in ("server1", "server2"))
    for client in ("client1", "client2"):
        d = plans[client].distcc
        assert d.client and d.hosts[:2] == (f"server1/{s1}", f"server2/{s2}")
    for server in ("server1", "server2"):
        d = plans[server].distcc
        assert d.server and not d.client
        assert list(d.allow) == ["10.89.7.21/32", "10.89.8.22/32"]
        assert d.listen == fleet_facts[server].default_ipv4
    # a client's limit is the server's own -j, which the farm does not change, and never more
    # than the distccd slots the server runs
    for server, limit in (("server1", s1), ("server2", s2)):
        assert plans[server].jobs.value == limit
        assert limit <= plans[server].distcc.server_jobs


def test_plan_fleet_etc_hosts_names_every_member_with_short_hostnames(fleet_facts, catalog):
    plans = plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    for host in ("server1", "server2", "client1", "client2"):
        assert {e.address: e.names for e in plans[host].distcc.host_entries} == {
            "10.89.7.11": ("server1",),
            "10.89.7.12": ("server2",),
            "10.89.7.21": ("client1",),
            "10.89.8.22": ("client2",),
        }


def test_plan_fleet_non_member_is_planned_like_a_single_host(fleet_facts, catalog):
    from provision.planner import plan

    goals = Goals(zram=True)
    plans = plan_fleet(fleet_facts, GROUPS, goals, catalog)
    assert plans["outsider"] == plan(fleet_facts["outsider"], goals, catalog)
    assert not plans["outsider"].distcc.enabled


def test_plan_fleet_reads_farm_addresses_and_subnets_from_host_vars(fleet_facts, catalog):
    host_vars = {
        "client1": {"kbuild_host_farm_address": "10.90.0.21",
                    "ansible_facts": {"hostname": "client1",
                                      "default_ipv4": {"address": "10.89.7.21", "network": "10.89.7.0",
                                                       "netmask": "255.255.255.0"},
                                      "interfaces": ["eth1"],
                                      "eth1": {"ipv4": {"address": "10.90.0.21", "prefix": "20"}}}},
    }
    plans = plan_fleet(fleet_facts, GROUPS, Goals(), catalog, host_vars=host_vars)
    assert plans["server1"].distcc.allow == ("10.90.0.21/32", "10.89.8.22/32")
    plans = plan_fleet(fleet_facts, GROUPS, Goals(farm_allow_subnets=True), catalog, host_vars=host_vars)
    assert plans["server1"].distcc.allow == ("10.90.0.0/20", "10.89.8.22/32")  # client2's subnet is unknown


def test_plan_fleet_without_farm_groups_is_one_plan_per_host(fleet_facts, catalog):
    from provision.planner import plan

    plans = plan_fleet(fleet_facts, {"all": list(fleet_facts)}, Goals(), catalog)
    assert plans == {h: plan(f, Goals(), catalog) for h, f in fleet_facts.items()}


def test_plan_fleet_member_without_facts_is_an_error(fleet_facts, catalog):
    del fleet_facts["server2"]
    with pytest.raises(UserError, match="distcc server server2: no facts"):
        plan_fleet(fleet_facts, GROUPS, Goals(), catalog)


def test_plan_fleet_server_without_clients_is_an_error(fleet_facts, catalog):
    groups = {"distcc_servers": ["server1"], "distcc_clients": []}
    with pytest.raises(UserError, match="no client addresses to allow"):
        plan_fleet(fleet_facts, groups, Goals(), catalog)


def test_plan_fleet_refuses_a_forged_member_in_one_line(fleet_facts, catalog):
    fleet_facts["client2"] = dataclasses.replace(fleet_facts["client2"], hostname="server1.evil.example")
    fleet_facts["client1"] = dataclasses.replace(fleet_facts["client1"], default_ipv4="10.89.7.11")
    with pytest.raises(UserError) as info:
        plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    # server1 and client1 collide (both from facts): the first in inventory order is named first
    assert str(info.value) == (
        "distcc farm member server1: farm address 10.89.7.11 is also member client1's (from its facts); "
        "members are told apart by address (set kbuild_host_farm_address) (and 2 more farm members refused)"
    )


def test_plan_fleet_names_the_host_a_planning_error_is_about(fleet_facts, catalog):
    with pytest.raises(UserError, match="^host server1: "):
        plan_fleet(fleet_facts, GROUPS, Goals(jobs=0), catalog)
    with pytest.raises(UserError, match="^distcc server server1: --allow '8.8.8.0/24' "):
        plan_fleet(fleet_facts, GROUPS, Goals(allow=("8.8.8.0/24",)), catalog)


def test_plan_fleet_on_fixture_files(catalog):
    facts = {}
    for i, f in enumerate(sorted(FIXTURES.glob("*.json"))):
        try:
            hf = HostFacts.from_dict(json.loads(f.read_text()))
        except (KprovError, ValueError, TypeError):
            continue  # Ansible-format fixtures belong to other tests
        facts[f.stem] = dataclasses.replace(hf, default_ipv4=f"10.89.7.{10 + i}")
    names = sorted(facts)
    assert len(names) >= 3, "expected HostFacts fixtures"
    groups = {"distcc_servers": names[:2], "distcc_clients": names[2:]}
    plans = plan_fleet(facts, groups, Goals(), catalog)
    assert set(plans) == set(facts)
    for c in names[2:]:
        assert len(plans[c].distcc.hosts) >= 2
    for s in names[:2]:
        assert len(plans[s].distcc.allow) == len(names) - 2


def test_a_large_farm_shares_its_entries_and_allow_list(catalog):
    names = [f"h{i:03d}" for i in range(120)]
    facts = {n: _facts(n, 1 + i % 8, 2 + i % 30, f"10.1.{i // 200}.{i % 200 + 1}") for i, n in enumerate(names)}
    groups = {"all": names, "distcc_servers": names[:12], "distcc_clients": names[12:]}
    plans = plan_fleet(facts, groups, Goals(), catalog)
    # one /etc/hosts tuple for the whole farm, not one copy per member
    assert len({id(p.distcc.host_entries) for p in plans.values()}) == 1 and len(plans.host_entries) == 120
    assert len({plans[s].distcc.allow for s in names[:12]}) == 1 and len(plans["h000"].distcc.allow) == 108
    data = fleet_json(plans)
    assert len(data["farm"]["host_entries"]) == 120
    assert all(h["distcc"]["host_entries"] == [] for h in data["hosts"].values())


# --------------------------------------------------------------------------- the role's path and kprov plan -i agree


def load_filter_plugin():
    spec = importlib.util.spec_from_file_location("kbuild_host_filter_plugin", FILTER_PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETUP = json.loads((FIXTURES / "ansible" / "debian12-localhost-setup.json").read_text())["ansible_facts"]
PROBE = json.loads((FIXTURES / "ansible" / "debian12-localhost-probe.json").read_text())


def gathered(name: str, cpus: int, ram_gib: int, address: str, prefix: int = 24, interfaces=None):
    """Setup facts (as the setup module returns them) and a probe result for one host."""
    setup = copy.deepcopy(SETUP)
    net = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    setup.update(
        ansible_hostname=name.split(".")[0],
        ansible_nodename=name,
        ansible_processor_vcpus=cpus,
        ansible_processor_nproc=cpus,
        ansible_memtotal_mb=ram_gib * 1024,
        ansible_default_ipv4={"address": address, "network": str(net.network_address),
                              "netmask": str(net.netmask), "interface": "eth0"},
        ansible_interfaces=["lo", "eth0"],
    )
    for iface, (a, p) in (interfaces or {}).items():
        n = ipaddress.ip_network(f"{a}/{p}", strict=False)
        setup["ansible_interfaces"].append(iface)
        setup[f"ansible_{iface}"] = {"ipv4": {"address": a, "network": str(n.network_address), "netmask": str(n.netmask)}}
    probe = copy.deepcopy(PROBE)
    probe["cpu"].update(logical=cpus, affinity=cpus, usable=cpus, physical_cores=cpus)
    probe["memory"].update(total_bytes=ram_gib * GIB, available_bytes=ram_gib * GIB * 3 // 4)
    return setup, probe


PARITY_GROUPS = {
    "all": ["server1", "server2", "both1", "client1", "client2", "outsider"],
    "distcc_servers": ["server1", "server2", "both1"],
    "distcc_clients": ["client1", "both1", "client2"],
    "outsiders": ["outsider"],
    "ungrouped": [],
}


def parity_hosts(forge: bool = False) -> dict[str, InventoryHost]:
    data = {
        "server1": (gathered("server1", 16, 64, "10.89.7.11"), {"ansible_host": "127.0.0.1"}),
        "server2": (gathered("server2.lab.example", 4, 8, "10.89.7.12"), {
            "kbuild_host_goals": {"farm_allow_subnets": True, "allow": ["192.168.50.0/24"], "zram": True}}),
        "both1": (gathered("both1", 8, 16, "10.89.7.13"), {"kbuild_host_goals": {"target": "tinyconfig"}}),
        "client1": (gathered("server2" if forge else "client1", 2, 4, "10.89.7.21"), {
            "kbuild_host_goals": {"host_entries": [{"address": "10.89.7.50", "names": ["mirror"]}]}}),
        "client2": (gathered("client2", 8, 32, "10.89.8.22", interfaces={"eth1": ("10.90.0.22", 16)}), {
            "kbuild_host_farm_address": "10.90.0.22",
            "kbuild_host_goals": {"ccache_dir": "/srv/ccache", "ccache_shared": True}}),
        "outsider": (gathered("outsider", 2, 2, "10.89.7.99"), {"kbuild_host_goals": {"zram": False}}),
    }
    return {name: InventoryHost(name=name, setup=s, probe=p, vars=v) for name, ((s, p), v) in data.items()}


def role_path(hosts: dict[str, InventoryHost], groups: dict, extra_goals: dict) -> dict[str, object]:
    """What tasks/plan.yml computes for every host with the role's own filters (a play, by hand).

    Extra vars win over inventory variables, as in ``kprov apply -i``: ``extra_goals`` (when the
    command line set any) is every host's ``kbuild_host_goals``. A host whose filter fails gets
    the filter's error message instead of role variables.
    """
    from ansible.errors import AnsibleFilterError

    plugin = load_filter_plugin()
    hostvars = {}
    for name, h in hosts.items():
        hv = dict(h.vars)
        hv["kbuild_host_goals"] = extra_goals or h.vars.get("kbuild_host_goals") or {}
        hv["inventory_hostname"] = name
        hv["ansible_facts"] = {k.removeprefix("ansible_"): v for k, v in h.setup.items()}
        hostvars[name] = hv
    for name, hv in hostvars.items():  # "Plan this host from its own facts", on every host first
        hv["__kbuild_host_base_vars"] = plugin.kprov_plan_vars(hv["ansible_facts"], hosts[name].probe, hv["kbuild_host_goals"])
        hv["kbuild_host_farm_jobs"] = hv["__kbuild_host_base_vars"]["kbuild_host_plan"]["jobs"]["value"]
    members = set(groups["distcc_servers"]) | set(groups["distcc_clients"])
    result = {}
    for name, hv in hostvars.items():
        if name not in members:
            result[name] = hv["__kbuild_host_base_vars"]
            continue
        try:
            goals = plugin.kprov_farm_goals(name, hostvars, groups, hv["kbuild_host_goals"],
                                            "distcc_servers", "distcc_clients")
        except AnsibleFilterError as exc:
            result[name] = str(exc)
            continue
        result[name] = plugin.kprov_plan_vars(hv["ansible_facts"], hosts[name].probe, goals)
    return result


@pytest.mark.parametrize("goals", [Goals(), Goals(zram=True, farm_allow_subnets=True)], ids=["inventory-goals", "cli-goals"])
def test_the_role_and_kprov_plan_i_plan_the_same_farm(goals, catalog):
    from provision.model.goals import goals_extravars

    hosts = parity_hosts()
    cli = plan_inventory(hosts, PARITY_GROUPS, goals, catalog)
    role = role_path(hosts, PARITY_GROUPS, goals_extravars(goals))
    assert list(cli) == list(hosts)
    for name in hosts:
        assert cli[name].to_role_vars() == role[name], name
    if goals_extravars(goals):  # the command line's goals replace every host's own
        assert cli["server2"].distcc.allow == ("10.89.7.0/24", "10.90.0.0/16")
        assert cli["client2"].ccache.dir != "/srv/ccache"
    assert cli["client1"].distcc.hosts[:3] == (
        f"server1/{cli['server1'].jobs.value}", f"server2/{cli['server2'].jobs.value}", f"both1/{cli['both1'].jobs.value}")
    assert cli["both1"].distcc.server and cli["both1"].distcc.client
    assert not cli["outsider"].distcc.enabled


def test_inventory_goals_reach_each_host_as_in_the_role(catalog):
    cli = plan_inventory(parity_hosts(), PARITY_GROUPS, Goals(), catalog)
    assert cli["server2"].distcc.allow == ("10.89.7.0/24", "10.90.0.0/16", "192.168.50.0/24")
    assert cli["server1"].distcc.allow == ("10.89.7.21/32", "10.89.7.13/32", "10.90.0.22/32")
    assert cli["client2"].ccache.dir == "/srv/ccache"
    assert cli["client1"].distcc.host_entries[-1] == HostEntry("10.89.7.50", ("mirror",))
    assert cli["both1"].config.target == "tinyconfig"
    assert cli["server1"].distcc.host_entries[:6] == cli.host_entries


def test_the_role_and_kprov_plan_i_refuse_the_same_forged_member(catalog):
    hosts = parity_hosts(forge=True)  # client1's facts call it server2
    role = role_path(hosts, PARITY_GROUPS, {})
    with pytest.raises(UserError) as info:
        plan_inventory(hosts, PARITY_GROUPS, Goals(), catalog)
    assert role["client1"] == str(info.value) == (
        "distcc farm member client1: its facts hostname 'server2' is the inventory name of server2; "
        "members are named by the inventory, not by their own facts"
    )
    assert "10.89.7.21/32" not in role["server1"]["kbuild_host_distcc_allow"]


def test_plan_inventory_needs_one_farm_group_name(catalog):
    hosts = parity_hosts()
    hosts["client2"] = dataclasses.replace(hosts["client2"], vars={"kbuild_host_distcc_server_group": "builders"})
    with pytest.raises(UserError, match="^kbuild_host_distcc_server_group is 'distcc_servers' on server1 but 'builders' on client2"):
        plan_inventory(hosts, PARITY_GROUPS, Goals(), catalog)


def test_plan_inventory_names_the_host_of_bad_goals(catalog):
    hosts = parity_hosts()
    hosts["both1"] = dataclasses.replace(hosts["both1"], vars={"kbuild_host_goals": {"jobs": "many"}})
    with pytest.raises(UserError, match="^host both1: kbuild_host_goals.jobs"):
        plan_inventory(hosts, PARITY_GROUPS, Goals(), catalog)


# --------------------------------------------------------------------------- output


def test_rows_and_table(fleet_facts, catalog):
    plans = plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    rows = fleet_rows(plans, GROUPS)
    assert [r["host"] for r in rows] == GROUPS["all"]
    by_host = {r["host"]: r for r in rows}
    assert by_host["server1"]["distcc"] == "server"
    assert by_host["client1"]["distcc"] == "client"
    assert by_host["outsider"]["distcc"] == "-"
    assert by_host["server1"]["cores"] == 16
    assert by_host["server1"]["ram"] == "64.0 GiB"
    assert by_host["client1"]["jobs"] == plans["client1"].jobs.value
    p = plans["client1"]
    assert by_host["client1"]["zram"] == (f"{p.zram.algorithm}/{p.zram.percent}%" if p.zram.enabled else "off")

    text = render_fleet(plans, GROUPS)
    lines = text.splitlines()
    assert lines[0].split() == ["HOST", "CPUS", "RAM", "-j", "ZRAM", "CCACHE", "DISTCC"]
    assert lines[1].split()[0] == "server1"
    assert "5 hosts" in text
    assert "allows 10.89.7.21/32 10.89.8.22/32" in text
    assert f'client client1: DISTCC_HOSTS="{" ".join(p.distcc.hosts)}", make -j{p.distcc.total_jobs}' in text
    # the columns line up: the last column starts at the same place on every line
    assert len({len(ln) - len(ln.split()[-1]) for ln in lines[:6]}) == 1


def test_table_without_farm_has_no_farm_section(fleet_facts, catalog):
    plans = plan_fleet(fleet_facts, {}, Goals(), catalog)
    text = render_fleet(plans, {})
    assert "distcc farm" not in text
    assert [ln.split()[0] for ln in text.splitlines()[1:6]] == sorted(fleet_facts)


def test_json_names_the_farms_entries_once_and_each_plan_can_be_rebuilt(fleet_facts, catalog):
    goals = Goals(host_entries=(HostEntry("10.89.7.50", ("mirror",)),))
    plans = plan_fleet(fleet_facts, GROUPS, goals, catalog)
    data = json.loads(json.dumps(fleet_json(plans)))
    assert data["schema"] == 2
    farm = data["farm"]["host_entries"]
    assert [e["address"] for e in farm] == ["10.89.7.11", "10.89.7.12", "10.89.7.21", "10.89.8.22"]
    for name, p in plans.items():
        d = data["hosts"][name]
        assert d["distcc"]["host_entries"] == [{"address": "10.89.7.50", "names": ["mirror"]}]
        if d["distcc"].pop("farm_host_entries", False):
            d["distcc"]["host_entries"] = farm + d["distcc"]["host_entries"]
        assert d == p.to_dict(), name
    assert "farm_host_entries" not in data["hosts"]["outsider"]["distcc"]


def test_json_without_a_farm(fleet_facts, catalog):
    plans = plan_fleet(fleet_facts, {}, Goals(), catalog)
    data = fleet_json(plans)
    assert "farm" not in data
    assert data["hosts"] == {name: p.to_dict() for name, p in plans.items()}


def test_same_warning_on_many_hosts_is_one_line(fleet_facts, catalog):
    plans = plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    one = dataclasses.replace(plans["server1"], warnings=("disk is small",))
    many = {f"h{i}": one for i in range(7)}
    text = render_fleet(many, {})
    assert text.count("disk is small") == 1
    assert "h0, h1, h2, h3 and 3 more: disk is small" in text
