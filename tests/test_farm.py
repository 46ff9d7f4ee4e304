"""The distcc farm rules (provision/fleet/farm.py): who allows whom, host limits, /etc/hosts, and trust."""

from __future__ import annotations

import pytest

from provision.errors import UserError
from provision.fleet.farm import Farm, FarmGoals
from provision.fleet.members import FarmMember
from provision.model.goals import Goals, HostEntry

ALL = ["server1", "server2", "client1", "client2", "outsider"]
JOBS = {"server1": 8, "server2": 4}


def member(name, address, network=None, hostname=None, inventory_addresses=()):
    return FarmMember(name=name, address=address, network=network, hostname=hostname,
                      inventory_addresses=tuple(inventory_addresses))


def farm(servers=None, clients=None, inventory_names=ALL):
    servers = servers if servers is not None else [
        member("server1", "10.89.7.11", "10.89.7.0/24", "server1-box"),
        member("server2", "10.89.7.12", "10.89.7.0/24", "server2-box"),
    ]
    clients = clients if clients is not None else [
        member("client1", "10.89.7.21", "10.89.7.0/24", "client1-box"),
        member("client2", "10.89.8.22", "10.89.8.0/24", "client2-box"),
    ]
    return Farm(servers, clients, inventory_names=inventory_names)


def with_member(members, name, **changes):
    return [member(m.name, changes.get("address", m.address), changes.get("network", m.network),
                   changes.get("hostname", m.hostname), changes.get("inventory_addresses", m.inventory_addresses))
            if m.name == name else m for m in members]


# --------------------------------------------------------------------------- who allows whom


def test_server_allows_exactly_its_clients_and_listens_on_its_own_address():
    g = farm().goals_for("server1", {})
    assert g.distcc_server is True
    assert g.allow == ("10.89.7.21/32", "10.89.8.22/32")
    assert g.listen == "10.89.7.11"
    assert g.distcc_hosts == ()


def test_subnets_when_the_servers_goals_ask_and_explicit_allow_after_them():
    g = farm().goals_for("server2", {"farm_allow_subnets": True, "allow": ["192.168.50.0/24"]})
    assert g.allow == ("10.89.7.0/24", "10.89.8.0/24", "192.168.50.0/24")


def test_a_client_without_a_known_subnet_is_allowed_as_its_address():
    clients = [member("client1", "10.89.7.21"), member("client2", "10.89.8.22", "10.89.8.0/24")]
    assert farm(clients=clients).goals_for("server1", {"farm_allow_subnets": True}).allow == (
        "10.89.7.21/32", "10.89.8.0/24")


def test_explicit_listen_wins_over_the_farm_address():
    assert farm().goals_for("server1", {"listen": "127.0.0.1"}).listen == "127.0.0.1"


def test_servers_with_the_same_goals_share_one_allow_tuple():
    f = farm()
    assert f.goals_for("server1", {}).allow is f.goals_for("server2", {}).allow


def test_server_without_clients_is_an_error_naming_it():
    with pytest.raises(UserError, match=r"^distcc server server1: no client addresses to allow \(group distcc_clients is empty\)$"):
        farm(clients=[]).goals_for("server1", {})


# --------------------------------------------------------------------------- clients' host lists


def test_client_lists_every_server_with_its_planned_jobs_then_its_own_hosts():
    f = farm()
    assert f.goals_for("client1", {}, JOBS).distcc_hosts == ("server1/8", "server2/4")
    g = f.goals_for("client1", {"distcc_hosts": ["bigbox/16", "server1/8"]}, JOBS)
    assert g.distcc_hosts == ("server1/8", "server2/4", "bigbox/16")
    assert f.goals_for("client2", {}, JOBS).distcc_hosts is f.goals_for("client1", {}, JOBS).distcc_hosts


def test_a_server_missing_its_jobs_is_an_error_naming_it():
    with pytest.raises(UserError, match=r"^distcc server server2: no planned jobs"):
        farm().goals_for("client1", {}, {"server1": 8})


def test_host_in_both_groups_allows_itself_but_sends_no_jobs_to_itself():
    servers = [member("server1", "10.89.7.11"), member("server2", "10.89.7.12")]
    clients = [member("client1", "10.89.7.21"), member("server1", "10.89.7.11")]
    g = farm(servers, clients).goals_for("server1", {}, JOBS)
    assert g.distcc_hosts == ("server2/4",)
    assert g.allow == ("10.89.7.21/32", "10.89.7.11/32")


def test_a_server_named_by_an_ipv6_address_is_written_in_brackets():
    servers = [member("fd00::11", "fd00::11")]
    clients = [member("client1", "fd00::21")]
    assert farm(servers, clients).goals_for("client1", {}, {"fd00::11": 6}).distcc_hosts == ("[fd00::11]/6",)


def test_client_without_server_is_an_error():
    with pytest.raises(UserError, match=r"^distcc client client1: no distcc server to send jobs to \(group distcc_servers is empty\)$"):
        farm(servers=[]).goals_for("client1", {}, {})


# --------------------------------------------------------------------------- /etc/hosts


def test_every_member_names_every_member_once_in_one_shared_tuple():
    f = farm()
    entries = f.goals_for("client2", {}, JOBS).host_entries
    assert entries == (
        HostEntry("10.89.7.11", ("server1", "server1-box")),
        HostEntry("10.89.7.12", ("server2", "server2-box")),
        HostEntry("10.89.7.21", ("client1", "client1-box")),
        HostEntry("10.89.8.22", ("client2", "client2-box")),
    )
    assert all(f.goals_for(h, {}, JOBS).host_entries is entries for h in ("server1", "server2", "client1"))


def test_own_entries_come_after_the_farms_and_equal_ones_share_a_tuple():
    f = farm()
    own = [{"address": "10.89.7.50", "names": ["mirror"]}]
    a = f.goals_for("client1", {"host_entries": own}, JOBS).host_entries
    assert a[:4] == f.host_entries and a[4:] == (HostEntry("10.89.7.50", ("mirror",)),)
    assert f.goals_for("client2", {"host_entries": [HostEntry("10.89.7.50", ("mirror",))]}, JOBS).host_entries is a


def test_a_member_named_by_an_address_gets_only_its_hostname():
    servers = [member("10.89.7.13", "10.89.7.13", hostname="builder")]
    entries = farm(servers=servers, inventory_names=["10.89.7.13", "client1", "client2"]).host_entries
    assert entries[0] == HostEntry("10.89.7.13", ("builder",))


def test_the_short_form_of_a_members_own_name_is_kept_as_an_alias():
    clients = [member("client1.lab.example", "10.89.7.21", hostname="client1")]
    f = farm(clients=clients, inventory_names=["server1", "server2", "client1.lab.example"])
    assert HostEntry("10.89.7.21", ("client1.lab.example", "client1")) in f.host_entries


def test_an_outsider_is_not_in_the_farm():
    f = farm()
    assert not f.is_member("outsider")
    assert f.goals_for("outsider", {"zram": True}) == FarmGoals()


# --------------------------------------------------------------------------- members cannot speak for each other


def refused_everywhere(f: Farm, name: str, address: str) -> None:
    """``name`` is out of every other member's allow list, host list and /etc/hosts."""
    assert all(e.address != address for e in f.host_entries)
    assert all(name not in e.names for e in f.host_entries)
    for other in f.members:
        if other.name == name or other.name in f.refused:
            continue
        g = f.goals_for(other.name, {}, JOBS)
        assert not any(a.startswith(address + "/") for a in g.allow)
        assert not any(h.startswith(name + "/") for h in g.distcc_hosts)


def test_a_facts_hostname_that_is_another_members_inventory_name_refuses_that_member():
    base = farm()
    clients = with_member(list(base.clients), "client2", hostname="server1")
    f = farm(clients=clients)
    with pytest.raises(UserError) as info:
        f.goals_for("client2", {}, JOBS)
    assert str(info.value) == (
        "distcc farm member client2: its facts hostname 'server1' is the inventory name of server1; "
        "members are named by the inventory, not by their own facts"
    )
    refused_everywhere(f, "client2", "10.89.8.22")
    assert HostEntry("10.89.7.11", ("server1", "server1-box")) in f.host_entries  # server1 keeps its name
    assert f.goals_for("server1", {}).allow == ("10.89.7.21/32",)


@pytest.mark.parametrize("forged", ["SERVER2", "outsider", "server2.lab"])
def test_names_are_claimed_whatever_the_case_and_for_every_inventory_host(forged):
    names = ALL if forged != "server2.lab" else ["server1", "server2.lab", "client1", "client2"]
    servers = [member("server1", "10.89.7.11"), member(names[1], "10.89.7.12")]
    clients = [member("client1", "10.89.7.21", hostname=forged.split(".")[0] if forged == "server2.lab" else forged),
               member("client2", "10.89.8.22")]
    f = farm(servers, clients, inventory_names=names)
    assert "client1" in f.refused
    with pytest.raises(UserError, match="^distcc farm member client1: its facts hostname '.*' is the inventory name of "):
        f.goals_for("client1", {}, JOBS)


def test_two_members_with_one_facts_hostname_are_both_refused_naming_each_other():
    clients = [member("client1", "10.89.7.21", hostname="builder"), member("client2", "10.89.8.22", hostname="builder")]
    f = farm(clients=clients)
    assert f.refused == {
        "client1": "distcc farm member client1: its facts hostname 'builder' is also member client2's facts "
                   "hostname; members are named by the inventory, not by their own facts",
        "client2": "distcc farm member client2: its facts hostname 'builder' is also member client1's facts "
                   "hostname; members are named by the inventory, not by their own facts",
    }
    with pytest.raises(UserError, match=r"distcc server server1: no client addresses to allow \(every member of "
                                        r"group distcc_clients was refused: distcc farm member client1"):
        f.goals_for("server1", {})


def test_two_members_on_one_address_from_their_facts_are_both_refused():
    clients = [member("client1", "10.89.7.21"), member("client2", "::ffff:10.89.7.21")]  # one address, two spellings
    f = farm(clients=clients)
    assert f.refused["client1"] == (
        "distcc farm member client1: farm address 10.89.7.21 is also member client2's (from its facts); "
        "members are told apart by address (set kbuild_host_farm_address)"
    )
    assert "member client1's (from its facts)" in f.refused["client2"]


def test_an_address_the_inventory_gives_a_member_is_that_members():
    # client2 claims server2's address; server2's comes from its kbuild_host_farm_address
    servers = [member("server1", "10.89.7.11"), member("server2", "10.89.7.12", inventory_addresses=["10.89.7.12"])]
    clients = [member("client1", "10.89.7.21"), member("client2", "10.89.7.12")]
    f = farm(servers, clients)
    assert set(f.refused) == {"client2"}
    assert f.refused["client2"].startswith(
        "distcc farm member client2: farm address 10.89.7.12 is also member server2's (in the inventory)")
    assert f.goals_for("server1", {}).allow == ("10.89.7.21/32",)
    assert HostEntry("10.89.7.12", ("server2",)) in f.host_entries


def test_an_ansible_host_address_is_its_members_even_when_its_farm_address_differs():
    servers = [member("server1", "10.89.7.11", inventory_addresses=["192.168.1.11"])]
    clients = [member("client1", "192.168.1.11")]  # client1's facts claim server1's management address
    f = farm(servers, clients + [member("client2", "10.89.8.22")])
    assert set(f.refused) == {"client1"}


def test_an_ansible_host_that_is_a_name_claims_no_address():
    servers = [member("server1", "10.89.7.11", inventory_addresses=["build1.lab.example"])]
    assert farm(servers=servers).refused == {}


@pytest.mark.parametrize("network", ["0.0.0.0/1", "8.8.8.0/24", "::ffff:0.0.0.0/97"])
def test_a_reported_network_cannot_widen_a_servers_allow_list(network):
    clients = [member("client1", "10.89.7.21", "10.89.7.0/24"), member("client2", "10.89.8.22", network)]
    f = farm(clients=clients)
    with pytest.raises(UserError) as info:
        f.goals_for("server1", {"farm_allow_subnets": True})
    assert str(info.value).startswith(f"distcc server server1: client client2's subnet {network}: ")
    # without subnets the server allows the client's address only, and that is fine
    assert f.goals_for("server1", {}).allow == ("10.89.7.21/32", "10.89.8.22/32")


def test_split_halves_of_the_address_space_are_refused_even_with_allow_public():
    clients = [member("client1", "10.89.7.21", "0.0.0.0/1"), member("client2", "200.1.1.1", "128.0.0.0/1")]
    with pytest.raises(UserError, match="^distcc server server1: "):
        farm(clients=clients).goals_for("server1", {"farm_allow_subnets": True, "allow_public": True})


def test_a_public_subnet_is_allowed_only_when_the_servers_goals_allow_public():
    clients = [member("client1", "203.0.113.21", "203.0.113.0/24")]
    f = farm(clients=clients)
    with pytest.raises(UserError, match="public range"):
        f.goals_for("server1", {"farm_allow_subnets": True})
    assert f.goals_for("server1", {"farm_allow_subnets": True, "allow_public": True}).allow == ("203.0.113.0/24",)


def test_a_client_reporting_a_public_address_makes_its_servers_refuse():
    clients = [member("client1", "10.89.7.21"), member("client2", "8.8.8.8")]
    with pytest.raises(UserError, match=r"^distcc server server1: client client2's address 8\.8\.8\.8: "):
        farm(clients=clients).goals_for("server1", {})


def test_a_subnet_that_does_not_hold_the_clients_address_is_refused():
    clients = [member("client1", "10.89.7.21", "10.99.0.0/16")]
    with pytest.raises(UserError, match=r"^distcc server server1: client client1's subnet 10\.99\.0\.0/16 does not hold its address 10\.89\.7\.21$"):
        farm(clients=clients).goals_for("server1", {"farm_allow_subnets": True})


def test_a_member_whose_facts_address_is_not_one_is_refused_alone():
    clients = [member("client1", "10.89.7.21"), member("client2", "10.89.8.22\nnameserver 1.2.3.4")]
    f = farm(clients=clients)
    assert set(f.refused) == {"client2"}
    assert "\n" not in f.refused["client2"]
    assert f.goals_for("server1", {}).allow == ("10.89.7.21/32",)


def test_a_member_without_any_address_stops_the_whole_farm():
    clients = [member("client1", "10.89.7.21"), member("client2", None)]
    for host in ("server1", "client1"):
        with pytest.raises(UserError, match="^distcc client client2: no farm address"):
            farm(clients=clients).goals_for(host, {}, JOBS)


# --------------------------------------------------------------------------- merging into goals


def test_merged_dict_and_merged_goals_agree():
    f = farm()
    own = {"zram": True, "host_entries": [{"address": "10.89.7.50", "names": ["mirror"]}]}
    g = f.goals_for("client1", own, JOBS)
    from_dict = Goals.from_dict(g.merged_dict(own))
    from_goals = g.merged_goals(Goals(zram=True, host_entries=(HostEntry("10.89.7.50", ("mirror",)),)))
    assert from_dict == from_goals
    assert from_goals.distcc_hosts == ("server1/8", "server2/4")
    assert from_goals.host_entries[-1] == HostEntry("10.89.7.50", ("mirror",))
    assert from_goals.host_entries is g.host_entries  # the shared tuple, not a copy


def test_a_bad_own_host_entry_is_one_line():
    with pytest.raises(UserError, match="^goals.host_entries: expected an object"):
        farm().goals_for("client1", {"host_entries": ["10.0.0.1 evil"]}, JOBS)


def test_loopback_names_never_name_a_member():
    servers = [member("localhost", "10.89.7.11", hostname="build1"), member("server2", "10.89.7.12")]
    clients = [member("client1", "10.89.7.21", hostname="localhost"), member("client2", "10.89.8.22", hostname="ip6-loopback")]
    f = farm(servers, clients, inventory_names=["localhost", "server2", "client1", "client2"])
    assert f.refused == {}
    assert f.host_entries == (
        HostEntry("10.89.7.11", ("build1",)),
        HostEntry("10.89.7.12", ("server2",)),
        HostEntry("10.89.7.21", ("client1",)),
        HostEntry("10.89.8.22", ("client2",)),
    )
    # "localhost" in DISTCC_HOSTS means "compile here": the server is named by its address
    assert f.goals_for("client1", {}, {"localhost": 8, "server2": 4}).distcc_hosts == ("10.89.7.11/8", "server2/4")
