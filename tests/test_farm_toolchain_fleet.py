"""``kprov plan -i``'s farm with toolchain facts: plan_fleet and the fleet table (needs the fleet wiring)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from provision.facts.catalog import load_catalog
from provision.facts.local import load_facts_file
from provision.fleet.hostvars import farm_goals_from_hostvars
from provision.fleet.plan import plan_fleet
from provision.fleet.table import render_fleet
from provision.fleet.members import member_toolchain
from provision.model.goals import Goals

FIXTURES = Path(__file__).parent / "fixtures"
TOOLCHAINS = json.loads((FIXTURES / "farm" / "toolchains.json").read_text())


def _host(name: str, kind: str, address: str):
    facts = load_facts_file(FIXTURES / "debian12-2c-24g.json")
    tc = member_toolchain(TOOLCHAINS[kind], name)
    return dataclasses.replace(facts, hostname=name, default_ipv4=address, arch=tc.arch,
                               toolchain_facts=tc.facts)


def test_plan_inventory_leaves_out_the_servers_that_differ_and_says_why():
    facts = {
        "client": _host("client", "deb12-current", "10.0.0.10"),
        "twin": _host("twin", "deb12-current", "10.0.0.11"),
        "old": _host("old", "deb12-older-gcc", "10.0.0.12"),
        "bare": _host("bare", "deb12-bare", "10.0.0.13"),
    }
    groups = {"distcc_servers": ["twin", "old", "bare"], "distcc_clients": ["client"]}
    plans = plan_fleet(facts, groups, Goals(target="defconfig"), load_catalog())
    c = plans["client"].distcc
    assert [h.split("/")[0] for h in c.hosts] == ["twin", "bare", "localhost"]
    assert c.excluded[0].startswith("old: its x86_64-linux-gnu-gcc-12 is ")
    assert plans["client"].config.make_vars["CC"] == "ccache x86_64-linux-gnu-gcc-12"
    assert plans["bare"].distcc.server_packages == ("gcc-12",) and "gcc-12" in plans["bare"].packages
    text = render_fleet(plans, groups)
    assert "    excluded: old because its x86_64-linux-gnu-gcc-12 is " in text
    assert "server bare: distccd on 10.0.0.13" in text and "installs gcc-12 for its clients" in text


def test_plan_inventory_says_when_no_server_matches():
    facts = {
        "client": _host("client", "deb12-current", "10.0.0.10"),
        "arm": _host("arm", "deb12-arm64", "10.0.0.11"),
    }
    groups = {"distcc_servers": ["arm"], "distcc_clients": ["client"]}
    plans = plan_fleet(facts, groups, Goals(target="defconfig"), load_catalog())
    assert not plans["client"].distcc.client
    text = render_fleet(plans, groups)
    assert "client client: no server compiles what it compiles: it builds locally" in text
    assert "    excluded: arm because its gcc compiles for aarch64-linux-gnu" in text


def test_the_role_side_reads_what_members_publish():
    from provision.fleet.members import farm_toolchain

    hv = {}
    for name, kind, address in (("client", "deb12-current", "10.0.0.10"), ("old", "deb12-older-gcc", "10.0.0.12")):
        f = _host(name, kind, address)
        hv[name] = {"ansible_facts": {"hostname": name, "default_ipv4": {"address": address}},
                    "kbuild_host_farm_jobs": 4, "kbuild_host_farm_toolchain": farm_toolchain(f)}
    groups = {"distcc_servers": ["old"], "distcc_clients": ["client"], "all": ["client", "old"]}
    goals = farm_goals_from_hostvars("client", hv, groups, {})
    assert goals["distcc_excluded"][0].startswith("old: its x86_64-linux-gnu-gcc-12 is ")
    assert "distcc_hosts" not in goals
