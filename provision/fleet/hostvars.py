"""A fleet's hosts as Ansible shows them (hostvars), read into each member's farm and cache goals.

The farm rules themselves live in :mod:`provision.fleet.farm`. This module feeds them the same data
from both sides, so ``kprov plan -i`` shows what the role will write:

* during a play, the role's ``kprov_farm_goals`` filter calls :func:`farm_goals_from_hostvars`
  once per farm member, after every host planned itself once, and re-plans with the goals it gets;
* ``kprov plan -i``: :func:`plan_inventory` (and :func:`plan_fleet` under it) builds the farm from
  hostvars-shaped data (the inventory variables ``ansible-inventory`` lists and the setup facts
  the gather run returned) with the very same :func:`farm_from_hostvars`, then plans each host.

The inventory groups of the farm and of the shared cache are named by role variables
(:data:`GROUP_VARS`); both sides check them with :func:`fleet_group_names`, so a name that is
not an inventory group name (a list, text with spaces) is a one-line error on both.

A member's farm address is its ``kbuild_host_farm_address``, else the address of its default
IPv4 (then IPv6) route; its subnet, for ``farm_allow_subnets``, is the one its facts give for that
address. A host outside both groups is planned exactly as a single host would be.

This module does no I/O and never imports ansible_runner. The shared cache's secret files that
the goals name are listed by :func:`secret_files`; the caller makes them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2

from provision.errors import KprovError, UserError
from provision.fleet.farm import CLIENT_GROUP, SERVER_GROUP, Farm
from provision.fleet.host import plan_from_ansible
from provision.fleet.members import (
    TOOLCHAIN_VAR,
    FarmMember,
    member_toolchain,
    partitions_text,
    toolchain_partitions,
)
from provision.model.goals import CacheRemoteGoal, CacheUser
from provision.model.plan import Plan
from provision.rules.addresses import parse_ip
from provision.rules.names import check_arg_path, check_group_name
from provision.rules.store import (
    CACHE_DEFAULT_PORTS,
    check_store_user,
    check_store_var,
    store_url,
)
from provision.units import human_bytes

#: The role variables that name the farm's groups (defaults/main.yml).
SERVER_GROUP_VAR = "kbuild_host_distcc_server_group"


CLIENT_GROUP_VAR = "kbuild_host_distcc_client_group"


#: Inventory groups of the shared compile cache (role variables with these defaults).
STORE_GROUP = "ccache_store"


WRITER_GROUP = "ccache_writers"


STORE_GROUP_VAR = "kbuild_host_ccache_store_group"


WRITER_GROUP_VAR = "kbuild_host_ccache_writer_group"


#: Every role variable that names inventory groups, with the role's default (defaults/main.yml).
GROUP_VARS = {
    SERVER_GROUP_VAR: SERVER_GROUP,
    CLIENT_GROUP_VAR: CLIENT_GROUP,
    STORE_GROUP_VAR: STORE_GROUP,
    WRITER_GROUP_VAR: WRITER_GROUP,
}


def fleet_group_names(variables: Mapping[str, Any]) -> dict[str, str]:
    """The inventory groups a host's variables name (:data:`GROUP_VARS`, the role's default for
    each one not set), each an inventory group name; UserError names the variable.

    ``kprov plan -i`` reads a host's inventory variables through this, and the role's farm and
    cache filters read the values the role hands them through it too.
    """
    out = {}
    for var, default in GROUP_VARS.items():
        value = variables.get(var)
        out[var] = default if value is None else check_group_name(value, var)
    return out


def _checked_groups(**given: str) -> dict[str, str]:
    """The group names a role filter was handed, by variable, through :func:`fleet_group_names`."""
    names = {SERVER_GROUP_VAR: "server_group", CLIENT_GROUP_VAR: "client_group",
             STORE_GROUP_VAR: "store_group", WRITER_GROUP_VAR: "writer_group"}
    return fleet_group_names({var: given[arg] for var, arg in names.items() if arg in given})


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
    _checked_groups(server_group=server_group, client_group=client_group)
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
) -> dict:
    """``goals`` with ``host``'s part in the fleet's shared compile cache (a partial Goals.to_dict()).

    The store (the one host of ``store_group``) listens on its farm address and admits every other
    host of the inventory by its address; each host has a credential of its own, a secret file
    ``secrets_dir/<inventory name>`` on the controller (:func:`secret_files` names the files these
    goals need; the caller makes the missing ones). Hosts of ``writer_group`` and the store write; every other host reads. A client
    needs the store's backend and port: ``endpoint``, else the store's own plan in ``hostvars``
    (``kbuild_host_ccache_store``), else the backend asked in ``goals``. A host that cannot take
    part is excluded with the reason in its plan.
    """
    goals = dict(goals or {})
    _checked_groups(store_group=store_group, writer_group=writer_group)
    store = cache_store_of(groups, store_group)
    if store is None:
        return goals
    writers = set(_group(groups, writer_group))
    fleet = list(dict.fromkeys(_group(groups, "all") or [store, host]))
    secrets_dir = check_arg_path(secrets_dir, "the fleet's secrets directory")
    store_member = member_from_hostvars(store, hostvars)
    if not store_member.address:
        raise UserError(
            f"ccache store {store}: no address (set kbuild_host_farm_address, or gather its facts for its default route)"
        )
    listen = parse_ip(store_member.address, f"ccache store {store}: its address")

    def secret_of(name: str) -> str:
        return f"{secrets_dir}/{check_store_user(name, f'inventory host {name!r} as a store user')}"

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


def secret_files(goals: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The secret files that a host's cache goals (:func:`cache_goals_from_hostvars`) name, with the
    store user each belongs to: a store's users, a client's own credential."""
    files = [(str(u["secret_file"]), str(u["name"])) for u in goals.get("ccache_users") or ()]
    remote = goals.get("ccache_remote")
    if remote:
        files.append((str(remote["secret_file"]), str(remote["user"])))
    return tuple(dict.fromkeys(files))


def plans_secret_files(plans: Mapping[str, Plan]) -> tuple[tuple[str, str], ...]:
    """The secret files a fleet's plans name: every store user's (the store's plan lists them all)."""
    files = []
    for p in plans.values():
        if p.ccache.enabled and p.ccache.store is not None:
            files += [(u.secret_file, u.name) for u in p.ccache.store.users]
    return tuple(dict.fromkeys(files))


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
