"""Fleet planning and the distcc farm rules (provision/fleet.py)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from pathlib import Path

import pytest

from provision import fleet
from provision.errors import KprovError, UserError
from provision.model import (
    GIB,
    CpuFacts,
    DiskFacts,
    DistroFacts,
    Goals,
    HostEntry,
    HostFacts,
    MemoryFacts,
    ZramFacts,
)

FIXTURES = Path(__file__).parent / "fixtures"

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
            "__kbuild_host_base_vars": {"kbuild_host_plan": {"jobs": {"value": jobs[name]}}},
        }
        hv[name].update((extra or {}).get(name, {}))
    return hv


def farm_goals(host, hv=None, groups=GROUPS, goals=None, **kw):
    return fleet.farm_goals_from_hostvars(host, hv or _hostvars(), groups, goals or {}, **kw)


# --------------------------------------------------------------------------- farm rules via hostvars


def test_server_allows_exactly_its_clients_and_listens_on_its_own_address():
    g = farm_goals("server1")
    assert g["distcc_server"] is True
    assert g["allow"] == ["10.89.7.21/32", "10.89.8.22/32"]
    assert g["listen"] == "10.89.7.11"
    assert "10.89.7.99/32" not in g["allow"]  # the outsider
    assert not any(a.endswith("/0") for a in g["allow"])


def test_server_allows_subnets_when_asked_and_keeps_explicit_extras():
    g = farm_goals("server2", goals={"farm_allow_subnets": True, "allow": ["192.168.50.0/24"]})
    assert g["allow"] == ["10.89.7.0/24", "10.89.8.0/24", "192.168.50.0/24"]
    assert g["listen"] == "10.89.7.12"


def test_explicit_listen_wins_over_the_farm_address():
    assert farm_goals("server1", goals={"listen": "127.0.0.1"})["listen"] == "127.0.0.1"


def test_server_with_no_clients_is_an_error_naming_it():
    groups = dict(GROUPS, distcc_clients=[])
    with pytest.raises(UserError, match=r"distcc server server1: no client addresses to allow \(group distcc_clients is empty\)"):
        farm_goals("server1", groups=groups)


def test_subnet_of_zero_length_is_refused():
    hv = _hostvars()
    hv["client1"]["ansible_facts"]["default_ipv4"].update(network="0.0.0.0", netmask="0.0.0.0")
    with pytest.raises(UserError, match="every address"):
        farm_goals("server1", hv=hv, goals={"farm_allow_subnets": True})


def test_client_hosts_carry_each_servers_planned_jobs():
    g = farm_goals("client1")
    assert g["distcc_hosts"] == ["server1/8", "server2/4"]
    assert "distcc_server" not in g


def test_client_keeps_explicit_distcc_hosts_after_the_farm():
    g = farm_goals("client1", goals={"distcc_hosts": ["bigbox/16", "server1/8"]})
    assert g["distcc_hosts"] == ["server1/8", "server2/4", "bigbox/16"]


def test_client_with_no_server_is_an_error():
    with pytest.raises(UserError, match="distcc client client1: no distcc server"):
        farm_goals("client1", groups=dict(GROUPS, distcc_servers=[]))


def test_host_in_both_groups_does_not_send_jobs_to_itself():
    groups = dict(GROUPS, distcc_clients=["client1", "server1"])
    g = farm_goals("server1", groups=groups)
    assert g["distcc_hosts"] == ["server2/4"]
    assert g["allow"] == ["10.89.7.21/32", "10.89.7.11/32"]


def test_every_member_names_every_member_in_etc_hosts():
    members = GROUPS["distcc_servers"] + GROUPS["distcc_clients"]
    for host in members:
        entries = farm_goals(host)["host_entries"]
        assert {e["address"] for e in entries} == {ADDRESSES[m] for m in members}
        by_address = {e["address"]: e["names"] for e in entries}
        for m in members:
            assert by_address[ADDRESSES[m]] == [m, f"{m}-box"]


def test_explicit_host_entries_are_kept():
    extra = {"address": "10.89.7.50", "names": ["mirror"]}
    entries = farm_goals("client2", goals={"host_entries": [extra]})["host_entries"]
    assert entries[-1] == extra
    assert len(entries) == 5


def test_non_member_goals_are_returned_unchanged():
    goals = {"zram": True, "jobs": 3}
    assert farm_goals("outsider", goals=goals) == goals


def test_farm_address_variable_wins_over_the_default_route():
    hv = _hostvars(extra={"client1": {"kbuild_host_farm_address": "10.90.0.21"}})
    g = farm_goals("server1", hv=hv)
    assert g["allow"][0] == "10.90.0.21/32"


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


def test_ipv6_client_is_allowed_as_a_single_address():
    hv = _hostvars(extra={"client2": {"kbuild_host_farm_address": "fd00::22"}})
    assert farm_goals("server1", hv=hv)["allow"][1] == "fd00::22/128"


def test_inventory_name_that_is_an_address_is_used_as_address_not_name():
    addresses = dict(ADDRESSES)
    addresses["10.89.7.13"] = "10.89.7.13"
    groups = dict(GROUPS, distcc_servers=["server1", "10.89.7.13"])
    hv = _hostvars(addresses=addresses, jobs=dict(JOBS, **{"10.89.7.13": 6}))
    g = farm_goals("client1", hv=hv, groups=groups)
    assert g["distcc_hosts"] == ["server1/8", "10.89.7.13/6"]
    entry = next(e for e in g["host_entries"] if e["address"] == "10.89.7.13")
    assert entry["names"] == ["10.89.7.13-box"]


def test_server_outside_the_play_without_cached_facts_is_an_error():
    hv = _hostvars()
    del hv["server2"]["__kbuild_host_base_vars"]
    hv["server2"]["ansible_facts"] = {"default_ipv4": {"address": "10.89.7.12"}}
    with pytest.raises(KprovError, match="distcc server server2: not planned in this play"):
        farm_goals("client1", hv=hv)


def test_a_server_does_not_need_other_servers_jobs():
    hv = _hostvars()
    del hv["server2"]["__kbuild_host_base_vars"]
    assert farm_goals("server1", hv=hv)["distcc_server"] is True


def test_group_names_are_overridable():
    groups = {"cc_s": ["server1"], "cc_c": ["client1"]}
    g = farm_goals("client1", groups=groups, server_group="cc_s", client_group="cc_c")
    assert g["distcc_hosts"] == ["server1/8"]
    g = farm_goals("server1", groups=groups, server_group="cc_s", client_group="cc_c")
    assert g["allow"] == ["10.89.7.21/32"]


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
    from provision.catalog import load_catalog

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

    plans = fleet.plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    s1, s2 = (plan(fleet_facts[h], Goals(), catalog).jobs.value for h in ("server1", "server2"))
    for client in ("client1", "client2"):
        d = plans[client].distcc
        assert d.client
        assert f"server1/{s1}" in d.hosts and f"server2/{s2}" in d.hosts
        assert d.total_jobs > plans[client].jobs.value or d.total_jobs >= s1 + s2
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
    plans = fleet.plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    for host in ("server1", "server2", "client1", "client2"):
        entries = {e.address: e.names for e in plans[host].distcc.host_entries}
        assert entries == {
            "10.89.7.11": ("server1",),
            "10.89.7.12": ("server2",),
            "10.89.7.21": ("client1",),
            "10.89.8.22": ("client2",),
        }


def test_plan_fleet_non_member_is_planned_like_a_single_host(fleet_facts, catalog):
    from provision.planner import plan

    goals = Goals(zram=True)
    plans = fleet.plan_fleet(fleet_facts, GROUPS, goals, catalog)
    assert plans["outsider"] == plan(fleet_facts["outsider"], goals, catalog)
    assert not plans["outsider"].distcc.enabled


def test_plan_fleet_subnet_mode_uses_given_networks(fleet_facts, catalog):
    goals = Goals(farm_allow_subnets=True)
    nets = {"client1": "10.89.7.0/24", "client2": "10.89.8.0/24"}
    plans = fleet.plan_fleet(fleet_facts, GROUPS, goals, catalog, networks=nets)
    assert list(plans["server1"].distcc.allow) == ["10.89.7.0/24", "10.89.8.0/24"]


def test_plan_fleet_without_farm_groups_is_one_plan_per_host(fleet_facts, catalog):
    from provision.planner import plan

    plans = fleet.plan_fleet(fleet_facts, {"all": list(fleet_facts)}, Goals(), catalog)
    assert plans == {h: plan(f, Goals(), catalog) for h, f in fleet_facts.items()}


def test_plan_fleet_member_without_facts_is_an_error(fleet_facts, catalog):
    del fleet_facts["server2"]
    with pytest.raises(UserError, match="distcc server server2: no facts"):
        fleet.plan_fleet(fleet_facts, GROUPS, Goals(), catalog)


def test_plan_fleet_server_without_clients_is_an_error(fleet_facts, catalog):
    groups = {"distcc_servers": ["server1"], "distcc_clients": []}
    with pytest.raises(UserError, match="no client addresses to allow"):
        fleet.plan_fleet(fleet_facts, groups, Goals(), catalog)


def test_plan_fleet_address_override(fleet_facts, catalog):
    plans = fleet.plan_fleet(fleet_facts, GROUPS, Goals(), catalog, addresses={"client1": "10.90.0.21"})
    assert plans["server1"].distcc.allow[0] == "10.90.0.21/32"


def test_plan_fleet_on_fixture_files(catalog):
    files = sorted(FIXTURES.glob("*.json"))
    if not files:
        pytest.skip("no facts fixtures in tests/fixtures")
    facts = {}
    for i, f in enumerate(files):
        try:
            data = json.loads(f.read_text())
            hf = HostFacts.from_dict(data)
        except (KprovError, ValueError, TypeError):
            continue  # Ansible-format fixtures belong to other tests
        facts[f.stem] = dataclasses.replace(hf, default_ipv4=f"10.89.7.{10 + i}")
    names = sorted(facts)
    assert len(names) >= 3, "expected HostFacts fixtures"
    groups = {"distcc_servers": names[:2], "distcc_clients": names[2:]}
    plans = fleet.plan_fleet(facts, groups, Goals(), catalog)
    assert set(plans) == set(facts)
    for c in names[2:]:
        assert len(plans[c].distcc.hosts) >= 2
    for s in names[:2]:
        assert len(plans[s].distcc.allow) == len(names) - 2


# --------------------------------------------------------------------------- output


def test_rows_and_table(fleet_facts, catalog):
    plans = fleet.plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    rows = fleet.fleet_rows(plans, GROUPS)
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

    text = fleet.render_fleet(plans, GROUPS)
    lines = text.splitlines()
    assert lines[0].split() == ["HOST", "CPUS", "RAM", "-j", "ZRAM", "CCACHE", "DISTCC"]
    assert lines[1].split()[0] == "server1"
    assert "5 hosts" in text
    assert "allows 10.89.7.21/32 10.89.8.22/32" in text
    assert f'client client1: DISTCC_HOSTS="{" ".join(p.distcc.hosts)}", make -j{p.distcc.total_jobs}' in text
    # the columns line up: the last column starts at the same place on every line
    assert len({len(ln) - len(ln.split()[-1]) for ln in lines[:6]}) == 1


def test_table_without_farm_has_no_farm_section(fleet_facts, catalog):
    plans = fleet.plan_fleet(fleet_facts, {}, Goals(), catalog)
    text = fleet.render_fleet(plans, {})
    assert "distcc farm" not in text
    assert [ln.split()[0] for ln in text.splitlines()[1:6]] == sorted(fleet_facts)


def test_json_shape(fleet_facts, catalog):
    plans = fleet.plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    data = fleet.fleet_json(plans)
    assert data["schema"] == 1
    assert set(data["hosts"]) == set(fleet_facts)
    assert data["hosts"]["client1"]["distcc"]["client"] is True
    json.dumps(data)  # plain data only


def test_same_warning_on_many_hosts_is_one_line(fleet_facts, catalog):
    plans = fleet.plan_fleet(fleet_facts, GROUPS, Goals(), catalog)
    one = dataclasses.replace(plans["server1"], warnings=("disk is small",))
    many = {f"h{i}": one for i in range(7)}
    text = fleet.render_fleet(many, {})
    assert text.count("disk is small") == 1
    assert "h0, h1, h2, h3 and 3 more: disk is small" in text
