"""A fleet of build hosts: per-host plans over an inventory, and the rules of a distcc farm.

Two callers share one set of farm rules (:class:`Farm`):

* the role, during a play: its filter ``kprov_farm_goals`` calls :func:`farm_goals_from_hostvars`
  once per farm member, after every host planned itself once, and re-plans with the goals it gets;
* ``kprov plan -i``: :func:`plan_fleet` does the same two passes in plain Python over the facts
  the runner gathered.

The rules, for the hosts of the server group and the client group:

* a server runs distccd, allows exactly its clients' addresses (``/32``/``/128``, or their subnets
  when the goals ask for ``farm_allow_subnets``) plus any explicit ``allow``, and listens on its
  own farm address; a server with no client to allow is an error, never an open daemon;
* a client lists every server in ``DISTCC_HOSTS`` with ``/LIMIT`` = that server's planned jobs
  (the planner adds ``localhost/N`` and the total ``-j`` and explains both);
* every member gets ``/etc/hosts`` entries naming every member.

A host outside both groups is planned exactly as a single host would be.

This module does no I/O of its own and never imports ansible_runner: the planner is imported where
a plan is made, and the templates are read only to render the fleet table.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from provision.errors import KprovError, UserError
from provision.model import GIB, Goals, HostEntry, HostFacts, PackageCatalog, Plan, ccache_size_string

SERVER_GROUP = "distcc_servers"
CLIENT_GROUP = "distcc_clients"
FLEET_SCHEMA = 1

#: A name /etc/hosts and DISTCC_HOSTS accept: RFC 1123 labels, dot-separated.
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


# --------------------------------------------------------------------------- the farm rules


@dataclass(frozen=True)
class FarmMember:
    """What the farm needs to know about one host, whichever way it was learned."""

    name: str  # inventory name
    address: str | None  # the address the other members reach it on
    jobs: int | None = None  # planned make -j (servers: the distcc slots clients may use)
    network: str | None = None  # the subnet of ``address`` (CIDR), when known
    hostname: str | None = None  # its own short hostname, when it differs from the inventory name


@dataclass(frozen=True)
class FarmGoals:
    """The goal changes the farm makes for one member (None / empty: leave the goal as it is)."""

    distcc_server: bool = False
    allow: tuple[str, ...] = ()
    listen: str | None = None
    distcc_hosts: tuple[str, ...] = ()
    host_entries: tuple[HostEntry, ...] = ()

    def merged_dict(self, goals: Mapping[str, Any]) -> dict[str, Any]:
        """``goals`` (a partial Goals.to_dict()) with the farm's values merged in, as plain data."""
        out = dict(goals)
        if self.distcc_server:
            out["distcc_server"] = True
            out["allow"] = list(self.allow)
            out["listen"] = self.listen
        if self.distcc_hosts:
            out["distcc_hosts"] = list(self.distcc_hosts)
        if self.host_entries:
            out["host_entries"] = [{"address": e.address, "names": list(e.names)} for e in self.host_entries]
        return out

    def merged_goals(self, goals: Goals) -> Goals:
        """The same merge on a Goals object (no round trip through dicts: fleets can be large)."""
        changes: dict[str, Any] = {}
        if self.distcc_server:
            changes.update(distcc_server=True, allow=self.allow, listen=self.listen)
        if self.distcc_hosts:
            changes["distcc_hosts"] = self.distcc_hosts
        if self.host_entries:
            changes["host_entries"] = self.host_entries
        return dataclasses.replace(goals, **changes) if changes else goals


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _host_cidr(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


def _is_hostname(name: str | None) -> bool:
    if not name or not _HOSTNAME.match(name):
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False  # an address is not a name


class Farm:
    """The servers and clients of one distcc farm; :meth:`goals_for` applies the farm rules."""

    def __init__(
        self,
        servers: Iterable[FarmMember],
        clients: Iterable[FarmMember],
        server_group: str = SERVER_GROUP,
        client_group: str = CLIENT_GROUP,
    ):
        self.servers = tuple(servers)
        self.clients = tuple(clients)
        self.server_group = server_group
        self.client_group = client_group
        self._server_names = {m.name for m in self.servers}
        self._client_names = {m.name for m in self.clients}
        self._addresses: dict[str, str] = {}
        self._allow: dict[bool, tuple[str, ...]] = {}

    def is_member(self, host: str) -> bool:
        return host in self._server_names or host in self._client_names

    @functools.cached_property
    def members(self) -> tuple[FarmMember, ...]:
        """Servers then clients, each host once (a host may be in both groups)."""
        seen: dict[str, FarmMember] = {}
        for m in self.servers + self.clients:
            seen.setdefault(m.name, m)
        return tuple(seen.values())

    @functools.cached_property
    def _by_name(self) -> dict[str, FarmMember]:
        return {m.name: m for m in self.members}

    def _address(self, member: FarmMember) -> str:
        """The member's address in canonical form (checked once per member: fleets can be large)."""
        cached = self._addresses.get(member.name)
        if cached is not None:
            return cached
        self._addresses[member.name] = address = self._check_address(member)
        return address

    def _check_address(self, member: FarmMember) -> str:
        if not member.address:
            role = "server" if member.name in self._server_names else "client"
            raise UserError(
                f"distcc {role} {member.name}: no farm address "
                "(set kbuild_host_farm_address or gather its facts)"
            )
        try:
            return str(ipaddress.ip_address(member.address))
        except ValueError:
            raise UserError(f"distcc farm member {member.name}: {member.address!r} is not an IP address") from None

    @functools.cached_property
    def host_entries(self) -> tuple[HostEntry, ...]:
        """One /etc/hosts entry per member address: its inventory name and short hostname."""
        names_by_address: dict[str, list[str]] = {}
        taken: set[str] = set()
        for m in self.members:
            address = self._address(m)
            names = names_by_address.setdefault(address, [])
            for name in (m.name, m.hostname):
                if _is_hostname(name) and name not in taken:
                    taken.add(name)
                    names.append(name)
        return tuple(HostEntry(address=a, names=tuple(n)) for a, n in names_by_address.items() if n)

    def _client_allow(self, subnets: bool) -> tuple[str, ...]:
        if subnets not in self._allow:
            self._allow[subnets] = self._compute_client_allow(subnets)
        return self._allow[subnets]

    def _compute_client_allow(self, subnets: bool) -> tuple[str, ...]:
        allow = []
        for m in self.clients:
            address = self._address(m)
            if subnets and m.network:
                net = ipaddress.ip_network(m.network, strict=False)
                if net.prefixlen == 0:
                    raise UserError(
                        f"distcc client {m.name}: its subnet {net} would open distccd to every address"
                    )
                if ipaddress.ip_address(address) not in net:
                    raise UserError(f"distcc client {m.name}: address {address} is not in its subnet {net}")
                allow.append(str(net))
            else:
                allow.append(_host_cidr(address))
        return _unique(allow)

    def _server_spec(self, m: FarmMember) -> str:
        if m.jobs is None or m.jobs < 1:
            raise UserError(f"distcc server {m.name}: no planned jobs (it was not planned in this run)")
        where = m.name if _is_hostname(m.name) else self._address(m)
        return f"{where}/{m.jobs}"

    def goals_for(self, host: str, goals: Mapping[str, Any]) -> FarmGoals:
        """The farm's goals for ``host``; ``goals`` is the host's own (partial) goals dict.

        Explicit ``allow``, ``distcc_hosts`` and ``host_entries`` in ``goals`` are kept after the
        farm's own; an explicit ``listen`` wins over the farm address.
        """
        if not self.is_member(host):
            return FarmGoals()
        me = self._by_name[host]
        entries = self.host_entries
        extra_entries = tuple(
            e if isinstance(e, HostEntry) else HostEntry.from_dict(dict(e), "goals.host_entries")
            for e in goals.get("host_entries") or ()
        )
        result: dict[str, Any] = {"host_entries": entries + extra_entries}
        if host in self._server_names:
            if not self.clients:
                raise UserError(
                    f"distcc server {host}: no client addresses to allow "
                    f"(group {self.client_group} is empty)"
                )
            allow = self._client_allow(bool(goals.get("farm_allow_subnets")))
            extra = tuple(str(a) for a in goals.get("allow") or ())
            result.update(
                distcc_server=True,
                allow=_unique(allow + extra),
                listen=goals.get("listen") or self._address(me),
            )
        if host in self._client_names:
            servers = [m for m in self.servers if m.name != host]
            if not servers:
                raise UserError(
                    f"distcc client {host}: no distcc server to send jobs to "
                    f"(group {self.server_group} is empty)"
                )
            specs = tuple(self._server_spec(m) for m in servers)
            extra = tuple(str(h) for h in goals.get("distcc_hosts") or ())
            result["distcc_hosts"] = _unique(specs + extra)
        return FarmGoals(**result)


# --------------------------------------------------------------------------- during a play (the role's filter)


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


def _network_of(address: str, facts: Any, hostvars_of: Any) -> str | None:
    """The subnet ``address`` sits in, from the interface facts that carry it."""
    candidates = [_default_route(facts, hostvars_of, "ipv4"), _default_route(facts, hostvars_of, "ipv6")]
    for iface in _get(facts, "interfaces") or ():
        info = _get(facts, str(iface).replace("-", "_")) or _get(facts, str(iface))
        candidates.append(_get(info, "ipv4"))
        candidates.extend(_get(info, "ipv6") or ())
    for c in candidates:
        if not c or str(_get(c, "address") or "") != address:
            continue
        if _get(c, "network") and _get(c, "netmask"):
            return str(ipaddress.ip_network(f"{c['network']}/{c['netmask']}", strict=False))
        if _get(c, "prefix") is not None:
            return str(ipaddress.ip_network(f"{address}/{c['prefix']}", strict=False))
    return None


def member_from_hostvars(name: str, hostvars: Any, *, with_jobs: bool) -> FarmMember:
    """A FarmMember from Ansible's hostvars for ``name`` (see the module docstring for the rules)."""
    hv = _get(hostvars, name)
    facts = _get(hv, "ansible_facts") or {}
    address = _get(hv, "kbuild_host_farm_address")
    if not address:
        address = _get(_default_route(facts, hv, "ipv4"), "address") or _get(
            _default_route(facts, hv, "ipv6"), "address"
        )
    address = str(address) if address else None
    hostname = _get(facts, "hostname") or _get(hv, "ansible_hostname")
    hostname = str(hostname) if hostname and str(hostname) != name else None
    network = _network_of(address, facts, hv) if address else None
    jobs = None
    if with_jobs:
        jobs = _dig(hv, "__kbuild_host_base_vars", "kbuild_host_plan", "jobs", "value")
        if jobs is None:
            jobs = _jobs_from_cached_facts(name, hv, facts)
        jobs = int(jobs)
    return FarmMember(name=name, address=address, jobs=jobs, network=network, hostname=hostname)


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


def _group(groups: Any, name: str) -> list[str]:
    return [str(h) for h in (_get(groups, name) or ())]


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
    ``__kbuild_host_base_vars`` (its first, farm-less plan): a server's DISTCC_HOSTS limit is that
    first plan's ``jobs.value``.
    """
    goals = dict(goals or {})
    servers = _group(groups, server_group)
    clients = _group(groups, client_group)
    if host not in servers and host not in clients:
        return goals
    farm = Farm(
        # Only a client needs the servers' planned jobs (its DISTCC_HOSTS limits).
        (member_from_hostvars(h, hostvars, with_jobs=host in clients and h != host) for h in servers),
        (member_from_hostvars(h, hostvars, with_jobs=False) for h in clients),
        server_group,
        client_group,
    )
    return farm.goals_for(host, goals).merged_dict(goals)


# --------------------------------------------------------------------------- kprov plan -i


def plan_fleet(
    facts_by_host: Mapping[str, HostFacts],
    groups: Mapping[str, Iterable[str]],
    goals: Goals,
    catalog: PackageCatalog,
    server_group: str = SERVER_GROUP,
    client_group: str = CLIENT_GROUP,
    *,
    addresses: Mapping[str, str] | None = None,
    networks: Mapping[str, str] | None = None,
) -> dict[str, Plan]:
    """Plan every host from its own facts, then the farm members again with the farm's goals.

    ``addresses`` (inventory name -> farm address, e.g. from ``kbuild_host_farm_address``) wins over
    a host's default IPv4; ``networks`` (name -> CIDR) is what ``farm_allow_subnets`` allows.
    """
    from provision.planner import plan

    addresses = addresses or {}
    networks = networks or {}
    base = {name: plan(facts, goals, catalog) for name, facts in facts_by_host.items()}
    in_groups = {str(h): role for role, group in (("client", client_group), ("server", server_group))
                 for h in groups.get(group) or ()}
    present = [h for h in in_groups if h in facts_by_host]
    if not present:
        return base
    missing = [h for h in in_groups if h not in facts_by_host]
    if missing:
        # Every member needs every other member's address (allow lists, /etc/hosts, DISTCC_HOSTS).
        raise UserError(
            f"distcc {in_groups[missing[0]]} {missing[0]}: no facts (unreachable or excluded by --limit); "
            "the farm needs every member"
        )
    servers = [str(h) for h in groups.get(server_group) or ()]
    clients = [str(h) for h in groups.get(client_group) or ()]

    def member(name: str) -> FarmMember:
        facts = facts_by_host[name]
        return FarmMember(
            name=name,
            address=addresses.get(name) or facts.default_ipv4,
            jobs=base[name].jobs.value,
            network=networks.get(name),
            hostname=facts.hostname.split(".")[0] if facts.hostname.split(".")[0] != name else None,
        )

    farm = Farm([member(h) for h in servers], [member(h) for h in clients], server_group, client_group)
    goals_dict = {
        "allow": goals.allow,
        "distcc_hosts": goals.distcc_hosts,
        "host_entries": goals.host_entries,
        "listen": goals.listen,
        "farm_allow_subnets": goals.farm_allow_subnets,
    }
    plans = dict(base)
    for m in farm.members:
        plans[m.name] = plan(facts_by_host[m.name], farm.goals_for(m.name, goals_dict).merged_goals(goals), catalog)
    return plans


# --------------------------------------------------------------------------- output


def distcc_role(plan: Plan) -> str:
    d = plan.distcc
    roles = [r for r, on in (("server", d.server), ("client", d.client)) if on]
    return "+".join(roles) or "-"


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


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
                "ram": _gib(p.host.memory_bytes),
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
            servers.append({"host": name, "listen": d.listen or "-", "jobs": d.server_jobs, "allow": list(d.allow)})
        if d.client:
            clients.append({"host": name, "hosts": " ".join(d.hosts), "total_jobs": d.total_jobs})
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
    return render_template(
        "fleet.txt.j2",
        rows=rows,
        headers=headers,
        widths=widths,
        farm=farm_summary(plans, [r["host"] for r in rows]),
        warnings=warnings,
    )


def _host_list(hosts: list[str], shown: int = 4) -> str:
    if len(hosts) <= shown:
        return ", ".join(hosts)
    return f"{', '.join(hosts[:shown])} and {len(hosts) - shown} more"


def fleet_json(plans: Mapping[str, Plan]) -> dict[str, Any]:
    """``kprov plan -i --json``: every host's plan, keyed by inventory name."""
    return {"schema": FLEET_SCHEMA, "hosts": {name: p.to_dict() for name, p in plans.items()}}
