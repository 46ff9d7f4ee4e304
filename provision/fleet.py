"""A fleet of build hosts: per-host plans over an inventory, the farm as Ansible shows it, and output.

The farm rules themselves live in :mod:`provision.farm`. This module feeds them the same data
from both sides, so ``kprov plan -i`` shows what the role will write:

* during a play, the role's ``kprov_farm_goals`` filter calls :func:`farm_goals_from_hostvars`
  once per farm member, after every host planned itself once, and re-plans with the goals it gets;
* ``kprov plan -i``: :func:`plan_inventory` (and :func:`plan_fleet` under it) builds the farm from
  hostvars-shaped data (the inventory variables ``ansible-inventory`` lists and the setup facts
  the gather run returned) with the very same :func:`farm_from_hostvars`, then plans each host.

A member's farm address is its ``kbuild_host_farm_address``, else the address of its default
IPv4 (then IPv6) route; its subnet, for ``farm_allow_subnets``, is the one its facts give for that
address. A host outside both groups is planned exactly as a single host would be.

This module does no I/O of its own and never imports ansible_runner: the planner is imported where
a plan is made, and the templates are read only to render the fleet table.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2

from provision.errors import KprovError, UserError
from provision.farm import (
    CLIENT_GROUP,
    SERVER_GROUP,
    TOOLCHAIN_VAR,
    Farm,
    FarmGoals,
    FarmMember,
    farm_toolchain,
    member_toolchain,
    partitions_text,
    toolchain_partitions,
)
from provision.model import (
    CacheRemoteGoal,
    CacheUser,
    Goals,
    HostEntry,
    HostFacts,
    PackageCatalog,
    Plan,
    ccache_size_string,
    human_bytes,
)
from provision.validate import (
    CACHE_DEFAULT_PORTS,
    check_path,
    check_store_user,
    check_store_var,
    parse_ip,
    store_url,
)

__all__ = [
    "CLIENT_GROUP",
    "SERVER_GROUP",
    "Farm",
    "FarmGoals",
    "FarmMember",
    "FleetPlans",
    "farm_from_hostvars",
    "farm_goals_from_hostvars",
    "fleet_json",
    "fleet_rows",
    "plan_fleet",
    "plan_inventory",
    "render_fleet",
]

#: 2: the farm's /etc/hosts entries are listed once, under ``farm``, not in every member's plan.
FLEET_SCHEMA = 2
#: The role variables that name the farm's groups (defaults/main.yml).
SERVER_GROUP_VAR = "kbuild_host_distcc_server_group"
CLIENT_GROUP_VAR = "kbuild_host_distcc_client_group"


# --------------------------------------------------------------------------- hostvars -> farm


def _get(mapping: Any, key: str) -> Any:
    """``mapping[key]``, or None when the key is missing or its value is undefined.

    Ansible's hostvars are lazy: a value is templated when it is read, and a value that names an
    undefined variable raises instead of returning. Both mean "not known" here.
    """
    if mapping is None:
        return None
    try:
        value = mapping[key]
    except (KeyError, IndexError, TypeError):
        return None
    except Exception as exc:  # AnsibleUndefinedVariable and friends, without importing Ansible
        if "Undefined" in type(exc).__name__:
            return None
        raise
    if isinstance(value, jinja2.Undefined) or type(value).__name__.endswith("Undefined"):
        return None  # Ansible's undefined markers are jinja2 Undefined subclasses
    return value


def _dig(mapping: Any, *keys: str) -> Any:
    for key in keys:
        mapping = _get(mapping, key)
        if mapping is None:
            return None
    return mapping


def _default_route(facts: Any, hostvars_of: Any, family: str) -> Any:
    return _get(facts, f"default_{family}") or _get(hostvars_of, f"ansible_default_{family}")


def _same_address(a: Any, b: str) -> bool:
    """Whether two spellings name one address (as the validator reads them)."""
    if str(a) == b:
        return True
    try:
        return parse_ip(str(a), "address") == parse_ip(b, "address")
    except UserError:
        return False


def _network_of(address: str, facts: Any, hostvars_of: Any) -> str | None:
    """The subnet ``address`` sits in, as the interface facts that carry it say (CIDR text).

    Only arithmetic here: whether the subnet may be allowed is the farm's question, answered by
    the validator's allow-list rule.
    """
    candidates = [_default_route(facts, hostvars_of, "ipv4"), _default_route(facts, hostvars_of, "ipv6")]
    for iface in _get(facts, "interfaces") or ():
        info = _get(facts, str(iface).replace("-", "_")) or _get(facts, str(iface))
        candidates.append(_get(info, "ipv4"))
        candidates.extend(_get(info, "ipv6") or ())
    for c in candidates:
        if not c or not _same_address(_get(c, "address") or "", address):
            continue
        network, netmask, prefix = _get(c, "network"), _get(c, "netmask"), _get(c, "prefix")
        text = f"{network}/{netmask}" if network and netmask else f"{address}/{prefix}" if prefix is not None else None
        if text is None:
            continue
        try:
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            return text  # the allow-list rule refuses it, naming the member
    return None


def member_from_hostvars(name: str, hostvars: Any) -> FarmMember:
    """A FarmMember from Ansible's hostvars for ``name`` (see the module docstring for the rules)."""
    hv = _get(hostvars, name)
    facts = _get(hv, "ansible_facts") or {}
    declared = _get(hv, "kbuild_host_farm_address")
    address = declared or _get(_default_route(facts, hv, "ipv4"), "address") or _get(
        _default_route(facts, hv, "ipv6"), "address"
    )
    address = str(address) if address else None
    hostname = _get(facts, "hostname") or _get(hv, "ansible_hostname")
    hostname = str(hostname) if hostname and str(hostname) != name else None
    inventory_addresses = tuple(str(a) for a in (declared, _get(hv, "ansible_host")) if a)
    compiler = _get(_get(hv, "kbuild_host_goals") or {}, "compiler")
    return FarmMember(
        toolchain=member_toolchain(_get(hv, TOOLCHAIN_VAR), name),
        compiler=compiler if compiler in ("gcc", "clang") else None,
        name=name,
        address=address,
        network=_network_of(address, facts, hv) if address else None,
        hostname=hostname,
        inventory_addresses=inventory_addresses,
    )


def _group(groups: Any, name: str) -> list[str]:
    return [str(h) for h in (_get(groups, name) or ())]


def farm_from_hostvars(
    hostvars: Any, groups: Any, server_group: str = SERVER_GROUP, client_group: str = CLIENT_GROUP
) -> Farm:
    """The farm the inventory groups describe, its members read from hostvars."""
    servers = _group(groups, server_group)
    clients = _group(groups, client_group)
    members = {h: member_from_hostvars(h, hostvars) for h in dict.fromkeys(servers + clients)}
    return Farm(
        [members[h] for h in servers],
        [members[h] for h in clients],
        server_group,
        client_group,
        inventory_names=_group(groups, "all"),
    )


def _server_jobs(name: str, hostvars: Any) -> int:
    """A server's planned -j: its first plan in this play, else a plan from its cached facts."""
    hv = _get(hostvars, name)
    jobs = _get(hv, "kbuild_host_farm_jobs")
    if jobs is None:
        return _jobs_from_cached_facts(name, hv, _get(hv, "ansible_facts") or {})
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise UserError(f"distcc server {name}: its planned jobs are {jobs!r}, not a number")
    return jobs


def _jobs_from_cached_facts(name: str, hv: Any, facts: Any) -> int:
    """A server outside this play: plan it from the facts Ansible cached for it, if any."""
    if not facts or not _get(facts, "processor_vcpus"):
        raise KprovError(
            f"distcc server {name}: not planned in this play and no cached facts "
            "(run the play on it too, or enable a fact cache)"
        )
    from provision.ansible_facts import plan_from_ansible

    goals = _get(hv, "kbuild_host_goals") or {}
    return plan_from_ansible(dict(facts), None, dict(goals)).jobs.value


def farm_goals_from_hostvars(
    host: str,
    hostvars: Any,
    groups: Any,
    goals: dict,
    server_group: str = SERVER_GROUP,
    client_group: str = CLIENT_GROUP,
) -> dict:
    """``goals`` with the farm's values for ``host`` merged in (a partial Goals.to_dict()).

    Called by the role's ``kprov_farm_goals`` filter after every host of the play set
    ``kbuild_host_farm_jobs`` (the -j of its first, farm-less plan): a server's DISTCC_HOSTS limit is that
    first plan's ``jobs.value``. ``hostvars`` needs, per member: ``ansible_facts``,
    ``kbuild_host_farm_address``, ``ansible_host`` and ``kbuild_host_farm_jobs`` (and
    ``kbuild_host_goals`` for a server outside the play).
    """
    goals = dict(goals or {})
    servers = _group(groups, server_group)
    clients = _group(groups, client_group)
    if host not in servers and host not in clients:
        return goals
    farm = farm_from_hostvars(hostvars, groups, server_group, client_group)
    jobs: dict[str, int] = {}
    if host in clients:  # only a client needs the servers' planned jobs (its DISTCC_HOSTS limits)
        refused = farm.refused
        jobs = {s: _server_jobs(s, hostvars) for s in servers if s != host and s not in refused}
    return farm.goals_for(host, goals, jobs).merged_dict(goals)


# --------------------------------------------------------------------------- the shared compile cache

#: Inventory groups of the shared compile cache (role variables with these defaults).
STORE_GROUP = "ccache_store"
WRITER_GROUP = "ccache_writers"
STORE_GROUP_VAR = "kbuild_host_ccache_store_group"
WRITER_GROUP_VAR = "kbuild_host_ccache_writer_group"


def cache_store_of(groups: Any, store_group: str = STORE_GROUP) -> str | None:
    """The one host of the store group; None when the fleet has no store."""
    stores = _group(groups, store_group)
    if len(stores) > 1:
        raise UserError(f"group {store_group} has {len(stores)} hosts ({', '.join(stores[:3])}): a fleet has exactly one store")
    return stores[0] if stores else None


def _store_endpoint(store: str, hostvars: Any) -> tuple[str, int] | None:
    """The store's planned backend and port, from its own plan in this play (hostvars)."""
    planned = _dig(hostvars, store, "kbuild_host_ccache_store")
    if not planned:
        return None
    checked = check_store_var(dict(planned), f"{store}: kbuild_host_ccache_store")
    return checked["backend"], checked["port"]


def cache_goals_from_hostvars(
    host: str,
    hostvars: Any,
    groups: Any,
    goals: dict,
    secrets_dir: str,
    store_group: str = STORE_GROUP,
    writer_group: str = WRITER_GROUP,
    endpoint: tuple[str, int] | None = None,
    make_secrets: bool = True,
) -> dict:
    """``goals`` with ``host``'s part in the fleet's shared compile cache (a partial Goals.to_dict()).

    The store (the one host of ``store_group``) listens on its farm address and admits every other
    host of the inventory by its address; each host has a credential of its own, a secret file
    ``secrets_dir/<inventory name>`` on the controller, made here when missing (never
    overwritten). Hosts of ``writer_group`` and the store write; every other host reads. A client
    needs the store's backend and port: ``endpoint``, else the store's own plan in ``hostvars``
    (``kbuild_host_ccache_store``), else the backend asked in ``goals``. A host that cannot take
    part is excluded with the reason in its plan.
    """
    # cache_status does file and network I/O: loaded only when a fleet has a store
    from provision.cache_status import ensure_secret_file

    goals = dict(goals or {})
    store = cache_store_of(groups, store_group)
    if store is None:
        return goals
    writers = set(_group(groups, writer_group))
    fleet = list(dict.fromkeys(_group(groups, "all") or [store, host]))
    secrets_dir = check_path(secrets_dir, "the fleet's secrets directory")
    store_member = member_from_hostvars(store, hostvars)
    if not store_member.address:
        raise UserError(
            f"ccache store {store}: no address (set kbuild_host_farm_address, or gather its facts for its default route)"
        )
    listen = parse_ip(store_member.address, f"ccache store {store}: its address")

    def secret_of(name: str) -> str:
        path = f"{secrets_dir}/{check_store_user(name, f'inventory host {name!r} as a store user')}"
        if make_secrets:
            ensure_secret_file(path, f"the secret of store user {name}")
        return path

    excluded: dict[str, str] = {}
    addresses: dict[str, str] = {}
    family = ipaddress.ip_address(listen).version
    for name in fleet:
        if name == store:
            continue
        m = member_from_hostvars(name, hostvars)
        if not m.address:
            excluded[name] = "no address known (set kbuild_host_farm_address or gather its facts)"
            continue
        address = parse_ip(m.address, f"host {name}: its address")
        if ipaddress.ip_address(address).version != family:
            excluded[name] = f"its address {address} is not in the store's address family ({listen})"
            continue
        addresses[name] = address
    published = {n: _dig(hostvars, n, TOOLCHAIN_VAR) for n in [store, *addresses]}
    parsed = {n: member_toolchain(tc, n) for n, tc in published.items() if tc is not None}
    partitions = toolchain_partitions({n: tc for n, tc in parsed.items() if tc is not None})
    kinds_note = partitions_text(partitions) if partitions else ""
    role_of = "store" if host == store else ("writer" if host in writers else "reader")
    if host in excluded:
        goals["ccache_fleet_role"] = f"excluded: {excluded[host]}"
        return goals
    notes = [kinds_note] if kinds_note else []
    if host == store:
        # each client by its own address (a /32 or /128), or the store alone when it has none
        allow = [str(ipaddress.ip_network(a)) for a in sorted(set(addresses.values())) or [listen]]
        users = [CacheUser(store, True, secret_of(store))]  # first: the store's own (cache._own_user)
        users += [CacheUser(n, n in writers, secret_of(n)) for n in addresses]
        goals.update(
            ccache_server=True,
            ccache_listen=listen,
            ccache_allow=allow,
            ccache_users=[u.to_dict() for u in users],
            ccache_toolchains=max(1, len(partitions)),
        )
        notes += [f"{n} excluded: {why}" for n, why in excluded.items()]
    else:
        backend, port = endpoint or _store_endpoint(store, hostvars) or (
            goals.get("ccache_backend") or "redis",
            goals.get("ccache_port") or CACHE_DEFAULT_PORTS[goals.get("ccache_backend") or "redis"],
        )
        goals["ccache_remote"] = CacheRemoteGoal(
            url=store_url(backend, listen, port), user=check_store_user(host, "store user"),
            secret_file=secret_of(host), write=host in writers,
        ).to_dict()
        for key in ("ccache_backend", "ccache_port"):
            goals.pop(key, None)
    goals["ccache_fleet_role"] = role_of
    goals["ccache_fleet_notes"] = notes
    return goals


def cache_role(plan: Plan) -> str:
    c = plan.ccache
    if c.fleet_role:
        return c.fleet_role.split(":", 1)[0]
    return "store" if c.store else ("writer" if c.remote and c.remote.write else "reader" if c.remote else "-")


def cache_summary(plans: Mapping[str, Plan], order: Iterable[str]) -> list[str]:
    """The shared compile cache, one line per host: store, writer, reader or excluded, and why."""
    lines: list[str] = []
    for name in order:
        c = plans[name].ccache
        if c.store is not None:
            s = c.store
            lines.append(
                f"  store {name}: {s.backend} on {s.listen}:{s.port}, {human_bytes(s.max_size_bytes)}, allows "
                f"{' '.join(s.allow)}: {s.reasons.get('backend', '')}"
            )
        elif c.remote is not None:
            r = c.remote
            lines.append(f"  {'writer' if r.write else 'reader'} {name}: {r.url} as {r.user}")
        elif c.fleet_role.startswith("excluded"):
            lines.append(f"  excluded {name}: {c.fleet_role.split(':', 1)[1].strip()}")
        elif c.fleet_role and not c.enabled:
            lines.append(f"  excluded {name}: ccache is {c.reason}")
    notes = dict.fromkeys(n for name in order for n in plans[name].ccache.sharing if "partitioned" in n or "one toolchain" in n)
    lines += [f"  {n}" for n in notes]
    return lines


# --------------------------------------------------------------------------- kprov plan -i


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
    from provision.planner import plan

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
    from provision.planner import plan

    all_vars = {h: _hostvars_from_facts(h, f, host_vars.get(h)) for h, f in facts_by_host.items()}
    from provision.farm import TOOLCHAIN_VAR, farm_toolchain

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
        from provision.cache import toolchain_key

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
    """``kprov plan -i``: plan what :func:`provision.inventory.gather_fleet` found, as the role would.

    ``hosts`` maps inventory names to :class:`provision.inventory.InventoryHost` (setup facts,
    probe, inventory variables). As in ``kprov apply -i``: the goals the user set on the command
    line are every host's ``kbuild_host_goals``; without any, each host's own ``kbuild_host_goals``
    from the inventory is. Facts are read with each host's goals (its build and ccache dirs).
    """
    from provision.ansible_facts import goals_from
    from provision.runner import goals_extravars

    cli_goals = goals_extravars(goals)
    server_group = _one_value(hosts, SERVER_GROUP_VAR, SERVER_GROUP)
    client_group = _one_value(hosts, CLIENT_GROUP_VAR, CLIENT_GROUP)
    goals_by_host: dict[str, Goals] = {}
    facts_by_host: dict[str, HostFacts] = {}
    host_vars: dict[str, dict[str, Any]] = {}
    for name, host in hosts.items():
        try:
            host_goals = goals if cli_goals else goals_from(host.vars.get("kbuild_host_goals") or {})
        except UserError as exc:
            raise UserError(f"host {name}: {exc}") from None
        facts_by_host[name] = host.facts(build_dir=host_goals.build_dir, ccache_dir=host_goals.ccache_dir)
        goals_by_host[name] = host_goals
        host_vars[name] = host.hostvars()
    return plan_fleet(
        facts_by_host, groups, goals, catalog, server_group, client_group,
        host_vars=host_vars, goals_by_host=goals_by_host, cache_secrets_dir=cache_secrets_dir,
        store_group=_one_value(hosts, STORE_GROUP_VAR, STORE_GROUP),
        writer_group=_one_value(hosts, WRITER_GROUP_VAR, WRITER_GROUP),
    )


def _one_value(hosts: Mapping[str, Any], var: str, default: str) -> str:
    """A role variable that must be the same on every host (the farm's group names)."""
    values: dict[str, str] = {}
    for name, host in hosts.items():
        values.setdefault(str(host.vars.get(var) or default), name)
    if len(values) > 1:
        (a, ha), (b, hb) = list(values.items())[:2]
        raise UserError(f"{var} is '{a}' on {ha} but '{b}' on {hb}: one inventory, one distcc farm")
    return next(iter(values), default)


# --------------------------------------------------------------------------- output


def distcc_role(plan: Plan) -> str:
    d = plan.distcc
    roles = [r for r, on in (("server", d.server), ("client", d.client)) if on]
    return "+".join(roles) or "-"


def fleet_rows(plans: Mapping[str, Plan], groups: Mapping[str, Iterable[str]] | None = None) -> list[dict]:
    """One row per host, in inventory order (the groups' order, then the rest by name)."""
    order: dict[str, None] = {}
    for members in (groups or {}).values():
        for h in members:
            if h in plans:
                order.setdefault(h, None)
    for h in sorted(plans):
        order.setdefault(h, None)
    rows = []
    for name in order:
        p = plans[name]
        rows.append(
            {
                "host": name,
                "cores": p.host.usable_cpus,
                "ram": human_bytes(p.host.memory_bytes),
                "jobs": p.jobs.value,
                "zram": f"{p.zram.algorithm}/{p.zram.percent}%" if p.zram.enabled else "off",
                "ccache": ccache_size_string(p.ccache.max_size_bytes) if p.ccache.enabled else "off",
                "distcc": distcc_role(p),
            }
        )
    return rows


def farm_summary(plans: Mapping[str, Plan], order: Iterable[str]) -> dict[str, list[dict]]:
    """The farm as the table's footer shows it: each server's allow list, each client's hosts."""
    servers, clients = [], []
    for name in order:
        d = plans[name].distcc
        if d.server:
            servers.append({"host": name, "listen": d.listen or "-", "jobs": d.server_jobs, "allow": list(d.allow),
                            "installs": list(d.server_packages)})
        if d.client:
            clients.append({"host": name, "hosts": " ".join(d.hosts), "total_jobs": d.total_jobs,
                            "excluded": list(d.excluded)})
        elif d.excluded:
            clients.append({"host": name, "hosts": "", "total_jobs": 0, "excluded": list(d.excluded)})

    return {"servers": servers, "clients": clients}


def render_fleet(plans: Mapping[str, Plan], groups: Mapping[str, Iterable[str]] | None = None) -> str:
    """The fleet table (templates/fleet.txt.j2)."""
    from provision.render import render_template

    rows = fleet_rows(plans, groups)
    headers = {"host": "HOST", "cores": "CPUS", "ram": "RAM", "jobs": "-j", "zram": "ZRAM",
               "ccache": "CCACHE", "distcc": "DISTCC"}
    widths = {k: max([len(v)] + [len(str(r[k])) for r in rows]) for k, v in headers.items()}
    # The same warning on many hosts is one line naming them: a fleet table stays a table.
    by_warning: dict[str, list[str]] = {}
    for r in rows:
        for w in plans[r["host"]].warnings:
            by_warning.setdefault(w, []).append(r["host"])
    warnings = [(_host_list(hosts), w) for w, hosts in by_warning.items()]
    text = render_template(
        "fleet.txt.j2",
        rows=rows,
        headers=headers,
        widths=widths,
        farm=farm_summary(plans, [r["host"] for r in rows]),
        warnings=warnings,
    )
    cache = cache_summary(plans, [r["host"] for r in rows])
    if cache:
        text = text.rstrip("\n") + "\n\nshared compile cache\n" + "\n".join(cache) + "\n"
    return text


def _host_list(hosts: list[str], shown: int = 4) -> str:
    if len(hosts) <= shown:
        return ", ".join(hosts)
    return f"{', '.join(hosts[:shown])} and {len(hosts) - shown} more"


def fleet_json(plans: Mapping[str, Plan]) -> dict[str, Any]:
    """``kprov plan -i --json``: every host's plan keyed by inventory name, the farm's entries once.

    With a farm, ``farm.host_entries`` lists the /etc/hosts entries every member gets; a member's
    plan says ``distcc.farm_host_entries: true`` and its ``distcc.host_entries`` holds only its
    own entries, written after the farm's. Everything else is ``Plan.to_dict()``.
    """
    shared = plans.host_entries if isinstance(plans, FleetPlans) else ()
    k = len(shared)
    starts_shared: dict[int, bool] = {}  # members share entry tuples: compare each tuple once
    hosts: dict[str, Any] = {}
    for name, p in plans.items():
        entries = p.distcc.host_entries
        if shared and id(entries) not in starts_shared:
            starts_shared[id(entries)] = entries[:k] == shared
        if shared and starts_shared[id(entries)]:
            own = dataclasses.replace(p.distcc, host_entries=entries[k:])
            data = dataclasses.replace(p, distcc=own).to_dict()
            data["distcc"]["farm_host_entries"] = True
        else:
            data = p.to_dict()
        hosts[name] = data
    out: dict[str, Any] = {"schema": FLEET_SCHEMA}
    if shared:
        out["farm"] = {"host_entries": [{"address": e.address, "names": list(e.names)} for e in shared]}
    out["hosts"] = hosts
    return out
