"""Every host of an inventory planned: from its own facts, with the farm's goals for distcc
members and the cache's goals for the store and its clients (the store planned first), as the
role does host by host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from provision.errors import UserError
from provision.facts.ansible import goals_from
from provision.fleet.farm import CLIENT_GROUP, SERVER_GROUP
from provision.fleet.hostvars import (
    CLIENT_GROUP_VAR,
    GROUP_VARS,
    SERVER_GROUP_VAR,
    STORE_GROUP,
    STORE_GROUP_VAR,
    WRITER_GROUP,
    WRITER_GROUP_VAR,
    cache_goals_from_hostvars,
    cache_store_of,
    farm_from_hostvars,
    fleet_group_names,
)
from provision.fleet.members import (
    TOOLCHAIN_VAR,
    farm_toolchain,
)
from provision.model.facts import HostFacts
from provision.model.goals import Goals, HostEntry, goals_extravars
from provision.model.plan import PackageCatalog, Plan
from provision.planner import plan
from provision.planner.shared_cache import toolchain_key


class FleetPlans(dict):
    """Plans keyed by inventory name, and the farm's /etc/hosts entries: every member's
    ``distcc.host_entries`` starts with them (then come its own), and members with the same own
    entries share one tuple, so a 1,000-member farm holds 1,000 entries, not a million."""

    def __init__(self, plans: Mapping[str, Plan] | None = None, host_entries: tuple[HostEntry, ...] = ()):
        super().__init__(plans or {})
        self.host_entries = host_entries


def _goals_view(goals: Goals) -> dict[str, Any]:
    """The goals the farm rules read, as the role's goals dict would carry them."""
    return {
        "allow": goals.allow,
        "allow_public": goals.allow_public,
        "listen": goals.listen,
        "distcc_hosts": goals.distcc_hosts,
        "host_entries": goals.host_entries,
        "farm_allow_subnets": goals.farm_allow_subnets,
        "compiler": goals.compiler,
    }


def _hostvars_from_facts(name: str, facts: HostFacts, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """hostvars-shaped data for ``name``: ``given`` (inventory variables, maybe ``ansible_facts``),
    with the farm's part of ``ansible_facts`` made from HostFacts when it has none."""
    hv = dict(given or {})
    if not hv.get("ansible_facts"):
        short = facts.hostname.split(".")[0]
        af: dict[str, Any] = {"hostname": short}
        if facts.default_ipv4:
            af["default_ipv4"] = {"address": facts.default_ipv4}
        hv["ansible_facts"] = af
    hv.setdefault("inventory_hostname", name)
    if hv.get(TOOLCHAIN_VAR) is None:
        hv[TOOLCHAIN_VAR] = farm_toolchain(facts)
    return hv


def plan_fleet(
    facts_by_host: Mapping[str, HostFacts],
    groups: Mapping[str, Iterable[str]],
    goals: Goals,
    catalog: PackageCatalog,
    server_group: str = SERVER_GROUP,
    client_group: str = CLIENT_GROUP,
    *,
    host_vars: Mapping[str, Mapping[str, Any]] | None = None,
    goals_by_host: Mapping[str, Goals] | None = None,
    cache_secrets_dir: str | None = None,
    store_group: str = STORE_GROUP,
    writer_group: str = WRITER_GROUP,
) -> FleetPlans:
    """Plan every host from its own facts; farm members with the farm's goals.

    ``host_vars`` (inventory name -> hostvars-shaped data: ``kbuild_host_farm_address``,
    ``ansible_host``, ``ansible_facts``) is what the farm reads, as the role does; a host without
    ``ansible_facts`` there is known to the farm by its HostFacts (default IPv4, hostname).
    ``goals_by_host`` replaces ``goals`` for the hosts it names.

    Each host is planned once, except a host in both groups: its own plan gives the -j that the
    other clients' DISTCC_HOSTS limit is, as in the role (-j is decided before distcc, so a server's
    farm plan has the same -j). Members get the farm's shared tuples (see FarmGoals), so what the
    planner checks once per tuple is checked once per farm.
    """

    goals_by_host = dict(goals_by_host or {})
    host_vars = host_vars or {}
    if cache_secrets_dir is not None and cache_store_of(groups, store_group) is not None:
        goals_by_host.update(
            _cache_goals(facts_by_host, groups, goals, goals_by_host, host_vars, catalog, cache_secrets_dir,
                         store_group, writer_group)
        )

    def goals_of(name: str) -> Goals:
        return goals_by_host.get(name, goals)

    def planned(name: str, host_goals: Goals) -> Plan:
        try:
            return plan(facts_by_host[name], host_goals, catalog)
        except UserError as exc:
            raise UserError(f"host {name}: {exc}") from None

    servers = list(dict.fromkeys(str(h) for h in groups.get(server_group) or ()))
    clients = list(dict.fromkeys(str(h) for h in groups.get(client_group) or ()))
    members = list(dict.fromkeys(servers + clients))
    if not any(h in facts_by_host for h in members):
        return FleetPlans({name: planned(name, goals_of(name)) for name in facts_by_host})
    missing = [h for h in members if h not in facts_by_host]
    if missing:
        # Every member needs every other member's address (allow lists, /etc/hosts, DISTCC_HOSTS).
        role = "server" if missing[0] in servers else "client"
        raise UserError(
            f"distcc {role} {missing[0]}: no facts (unreachable or excluded by --limit); "
            "the farm needs every member"
        )
    all_vars = {h: _hostvars_from_facts(h, facts_by_host[h], host_vars.get(h)) for h in members}
    farm = farm_from_hostvars(all_vars, groups, server_group, client_group)
    refused = farm.refused
    if refused:
        first = next(h for h in members if h in refused)
        more = f" (and {len(refused) - 1} more farm members refused)" if len(refused) > 1 else ""
        raise UserError(refused[first] + more)
    entries = farm.host_entries

    def farm_plan(name: str, jobs: Mapping[str, int] | None = None) -> Plan:
        own = goals_of(name)
        return planned(name, farm.goals_for(name, _goals_view(own), jobs).merged_goals(own))

    plans: dict[str, Plan] = {}
    jobs: dict[str, int] = {}
    client_set = set(clients)
    for s in servers:
        if s in client_set:
            jobs[s] = planned(s, goals_of(s)).jobs.value  # its own plan first, as in the role
        else:
            plans[s] = farm_plan(s)
            jobs[s] = plans[s].jobs.value
    for c in clients:
        plans[c] = farm_plan(c, jobs)
    for name in facts_by_host:
        if name not in plans:
            plans[name] = planned(name, goals_of(name))
    return FleetPlans({name: plans[name] for name in facts_by_host}, host_entries=entries)


def _cache_goals(
    facts_by_host: Mapping[str, HostFacts],
    groups: Mapping[str, Iterable[str]],
    goals: Goals,
    goals_by_host: Mapping[str, Goals],
    host_vars: Mapping[str, Mapping[str, Any]],
    catalog: PackageCatalog,
    secrets_dir: str,
    store_group: str,
    writer_group: str,
) -> dict[str, Goals]:
    """Every host's goals with its part in the shared compile cache: the store is planned first,
    its backend and port go to the clients (as the role does with the store's own plan)."""

    all_vars = {h: _hostvars_from_facts(h, f, host_vars.get(h)) for h, f in facts_by_host.items()}

    for h, f in facts_by_host.items():
        if f.toolchain_facts is not None:
            all_vars[h][TOOLCHAIN_VAR] = farm_toolchain(f)
    view = {str(k): list(v) for k, v in groups.items()}
    view.setdefault("all", list(facts_by_host))
    store = cache_store_of(view, store_group)
    if store not in facts_by_host:
        raise UserError(f"ccache store {store}: no facts (unreachable or excluded by --limit); the fleet needs its store")
    out: dict[str, Goals] = {}

    def merged(name: str, endpoint: tuple[str, int] | None) -> Goals:
        own = goals_by_host.get(name, goals)
        extra = cache_goals_from_hostvars(name, all_vars, view, {}, secrets_dir, store_group, writer_group, endpoint)
        return Goals.from_dict({**own.to_dict(), **extra}, f"host {name}")

    out[store] = merged(store, None)
    if not any(v.get(TOOLCHAIN_VAR) for v in all_vars.values()):
        # no published toolchains: partition by the plain facts (arch, compiler, binutils, pahole)

        keys: dict[tuple[str, ...], list[str]] = {}
        for name, f in facts_by_host.items():
            keys.setdefault(toolchain_key(f), []).append(name)
        if len(keys) > 1:
            parts = sorted(keys.items(), key=lambda kv: -len(kv[1]))
            note = (
                f"partitioned by toolchain into {len(parts)}: "
                + "; ".join(f"{', '.join(hosts)} ({' '.join(key)})" for key, hosts in parts)
                + " - hits cross only within a partition"
            )
        else:
            note = f"one toolchain on every host ({' '.join(next(iter(keys)))}): hits can cross hosts"
        out[store] = dataclasses.replace(
            out[store], ccache_toolchains=max(1, len(keys)), ccache_fleet_notes=(note, *out[store].ccache_fleet_notes)
        )
        fleet_note = (note,)
    else:
        fleet_note = None
    try:
        store_plan = plan(facts_by_host[store], out[store], catalog)
    except UserError as exc:
        raise UserError(f"host {store}: {exc}") from None
    s = store_plan.ccache.store
    endpoint = (s.backend, s.port) if s is not None else None
    for name in facts_by_host:
        if name != store:
            out[name] = merged(name, endpoint)
            if fleet_note is not None and out[name].ccache_remote is not None:
                out[name] = dataclasses.replace(out[name], ccache_fleet_notes=(*fleet_note, *out[name].ccache_fleet_notes))
    return out


def plan_inventory(hosts: Mapping[str, Any], groups: Mapping[str, Iterable[str]], goals: Goals,
                   catalog: PackageCatalog, cache_secrets_dir: str | None = None) -> FleetPlans:
    """``kprov plan -i``: plan what :func:`provision.apply.inventory.gather_fleet` found, as the role would.

    ``hosts`` maps inventory names to :class:`provision.apply.inventory.InventoryHost` (setup facts,
    probe, inventory variables). As in ``kprov apply -i``: the goals the user set on the command
    line are every host's ``kbuild_host_goals``; without any, each host's own ``kbuild_host_goals``
    from the inventory is (an unknown key or a value of the wrong type is an error naming the host
    and the key). The inventory groups of the farm and of the shared cache are the ones the hosts'
    variables name, read as the role reads them (:func:`provision.fleet.hostvars.fleet_group_names`).
    Facts are read with each host's goals (its build and ccache dirs).
    """

    cli_goals = goals_extravars(goals)
    names = _group_names(hosts)
    goals_by_host: dict[str, Goals] = {}
    facts_by_host: dict[str, HostFacts] = {}
    host_vars: dict[str, dict[str, Any]] = {}
    for name, host in hosts.items():
        try:
            host_goals = goals if cli_goals else goals_from(host.vars.get("kbuild_host_goals"))
        except UserError as exc:
            raise UserError(f"host {name}: {exc}") from None
        facts_by_host[name] = host.facts(build_dir=host_goals.build_dir, ccache_dir=host_goals.ccache_dir)
        goals_by_host[name] = host_goals
        host_vars[name] = host.hostvars()
    return plan_fleet(
        facts_by_host, groups, goals, catalog, names[SERVER_GROUP_VAR], names[CLIENT_GROUP_VAR],
        host_vars=host_vars, goals_by_host=goals_by_host, cache_secrets_dir=cache_secrets_dir,
        store_group=names[STORE_GROUP_VAR], writer_group=names[WRITER_GROUP_VAR],
    )


def _group_names(hosts: Mapping[str, Any]) -> dict[str, str]:
    """The inventory groups the hosts' variables name, one per variable for the whole inventory
    (one play plans one farm and one shared cache); an error names the host or the two that differ."""
    seen: dict[str, dict[str, str]] = {var: {} for var in GROUP_VARS}
    for name, host in hosts.items():
        try:
            named = fleet_group_names(host.vars)
        except UserError as exc:
            raise UserError(f"host {name}: {exc}") from None
        for var, value in named.items():
            seen[var].setdefault(value, name)
    for var, values in seen.items():
        if len(values) > 1:
            (a, ha), (b, hb) = list(values.items())[:2]
            what = "one distcc farm" if var in (SERVER_GROUP_VAR, CLIENT_GROUP_VAR) else "one shared compile cache"
            raise UserError(f"{var} is '{a}' on {ha} but '{b}' on {hb}: one inventory, {what}")
    return {var: next(iter(values), GROUP_VARS[var]) for var, values in seen.items()}
