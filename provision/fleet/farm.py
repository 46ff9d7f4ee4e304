"""The rules of a distcc farm: who allows whom, where distccd listens, client host limits, /etc/hosts.

One :class:`Farm` serves both callers, so ``kprov plan -i`` previews exactly what the role writes:
the role's ``kprov_farm_goals`` filter (through :func:`provision.fleet.farm_goals_from_hostvars`)
and :func:`provision.fleet.plan_fleet`. For the hosts of the server group and the client group:

* a server runs distccd, allows exactly its clients' addresses (or their subnets when its goals
  ask for ``farm_allow_subnets``) plus its own explicit ``allow``, and listens on its own farm
  address; the whole list goes through :func:`provision.rules.addresses.parse_allow`, the rule ``--allow``
  follows, so what members report cannot widen it. A server with no client is an error, never an
  open daemon;
* a client lists every server in ``DISTCC_HOSTS`` with ``/LIMIT`` = that server's planned jobs;
* every member gets one shared tuple of ``/etc/hosts`` entries naming every member.

Members are named by the inventory, not by their own facts. A member's facts hostname that is
another inventory host's name or another member's hostname, or a farm address that is another
member's, gets that member refused: its own goals raise one line naming both hosts, and the other
members leave it out of their allow lists, host lists and ``/etc/hosts``. An address the
inventory gives a member (``kbuild_host_farm_address``, an ``ansible_host`` that is an address)
is that member's; a member whose facts claim it is the one refused. A reported subnet must hold
the member's address. A member with no address at all stops every member's goals: the farm
cannot be complete without it.

Members compile for each other only with the same compiler. From each member's toolchain facts
(published as ``kbuild_host_farm_toolchain``: :func:`farm_toolchain`), a server whose compiler
for a client's planned kind differs from the client's (another version line, or no driver of the
client's versioned triplet name) is left out of that client's ``DISTCC_HOSTS`` with the reason;
where the server runs the same distro release as the client and the distro packages that
compiler (Debian's ``gcc-N``, ``clang-N``), the server installs it instead. Members without
toolchain facts are kept as before (nothing to judge). :func:`toolchain_partitions` groups hosts
by what a kernel build records of its toolchain, which decides whether they can share ccache hits.

Pure: no I/O. Every address and name is judged by :mod:`provision.rules`; this module only
compares the canonical forms the validator returns.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provision.errors import UserError
from provision.fleet.members import FarmMember, Verdict, compiles_for, planned_kind
from provision.model.goals import Goals, HostEntry
from provision.rules.addresses import LOOPBACK_NAMES, is_hostname, parse_allow, parse_ip

SERVER_GROUP = "distcc_servers"


CLIENT_GROUP = "distcc_clients"






@dataclass(frozen=True)
class FarmGoals:
    """The goal changes the farm makes for one member (None / empty: leave the goal as it is).

    ``host_entries`` is the whole /etc/hosts list: the farm's entries, then the member's own.
    Members with the same own entries get the very same tuple (and servers with the same goals
    the same ``allow`` tuple), so a check that remembers what it checked does it once per farm.
    """

    distcc_server: bool = False
    allow: tuple[str, ...] = ()
    listen: str | None = None
    distcc_hosts: tuple[str, ...] = ()
    host_entries: tuple[HostEntry, ...] = ()
    distcc_excluded: tuple[str, ...] = ()  # a client's servers left out, each "NAME: why"
    distcc_server_packages: tuple[str, ...] = ()  # what a server installs to compile for its clients

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
        if self.distcc_excluded:
            out["distcc_excluded"] = list(self.distcc_excluded)
        if self.distcc_server_packages:
            out["distcc_server_packages"] = list(self.distcc_server_packages)
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
        if self.distcc_excluded:
            changes["distcc_excluded"] = self.distcc_excluded
        if self.distcc_server_packages:
            changes["distcc_server_packages"] = self.distcc_server_packages
        return dataclasses.replace(goals, **changes) if changes else goals


def _own_entry(entry: Any) -> HostEntry:
    """An explicit ``host_entries`` goal item; the planner checks it with everything else."""
    if isinstance(entry, HostEntry):
        return entry
    if not isinstance(entry, Mapping):
        raise UserError(f"goals.host_entries: expected an object with address and names, got {type(entry).__name__}")
    return HostEntry.from_dict(dict(entry), "goals.host_entries")


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _usable_name(name: str | None) -> bool:
    """A name the farm may write for a member: a host name, and not one of loopback's (RFC 6761,
    Debian's /etc/hosts): never a member's name in /etc/hosts, nor a DISTCC_HOSTS entry, where
    ``localhost`` means "compile here"."""
    if not name or not is_hostname(name):
        return False
    key = name.lower()
    return key not in LOOPBACK_NAMES and not key.endswith(".localhost")


def _name_keys(name: str) -> tuple[str, ...]:
    """The spellings a resolver matches ``name`` by: the name and its first label, any case."""
    if not is_hostname(name):
        return ()
    key = name.lower()
    return _unique((key, key.split(".")[0]))


@dataclass
class _Checked:
    """The farm after its one validation pass (shared by every member's goals)."""

    addresses: dict[str, str] = field(default_factory=dict)  # member -> canonical farm address
    hostnames: dict[str, str] = field(default_factory=dict)  # member -> facts hostname kept as a name
    refused: dict[str, str] = field(default_factory=dict)  # member -> why (one line naming the other host)


class Farm:
    """The servers and clients of one distcc farm; :meth:`goals_for` applies the farm rules.

    ``inventory_names`` are every inventory host's names (Ansible's ``groups['all']``): no
    member's facts may claim one of them for itself.
    """

    def __init__(
        self,
        servers: Iterable[FarmMember],
        clients: Iterable[FarmMember],
        server_group: str = SERVER_GROUP,
        client_group: str = CLIENT_GROUP,
        inventory_names: Iterable[str] = (),
    ):
        self.servers = tuple(servers)
        self.clients = tuple(clients)
        self.server_group = server_group
        self.client_group = client_group
        self.inventory_names = tuple(str(n) for n in inventory_names)
        self._server_names = {m.name for m in self.servers}
        self._client_names = {m.name for m in self.clients}
        # Shared results, one object per distinct input: see FarmGoals.
        self._allow: dict[tuple, tuple[str, ...]] = {}
        self._hosts: dict[tuple, tuple[str, ...]] = {}
        self._entries: dict[tuple[HostEntry, ...], tuple[HostEntry, ...]] = {}
        self._kinds: dict[str, str] = {m.name: m.compiler for m in self.members if m.compiler in ("gcc", "clang")}
        self._verdicts: dict[tuple, Verdict] = {}

    def is_member(self, host: str) -> bool:
        return host in self._server_names or host in self._client_names

    def _role(self, name: str) -> str:
        return "server" if name in self._server_names else "client"

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

    # ----------------------------------------------------------------- the one validation pass

    @functools.cached_property
    def _checked(self) -> _Checked:
        checked = _Checked()
        for m in self.members:
            if not m.address:
                raise UserError(
                    f"distcc {self._role(m.name)} {m.name}: no farm address "
                    "(set kbuild_host_farm_address or gather its facts)"
                )
            try:
                checked.addresses[m.name] = parse_ip(m.address, f"distcc farm member {m.name}: farm address")
            except UserError as exc:
                checked.refused[m.name] = str(exc)
        self._check_addresses(checked)
        self._check_hostnames(checked)
        return checked

    def _check_addresses(self, checked: _Checked) -> None:
        """Two members on one address: the one the inventory gives it keeps it, else neither does."""
        owners: dict[str, list[str]] = {}
        for m in self.members:
            for text in m.inventory_addresses:
                try:
                    address = parse_ip(text, "inventory address")
                except UserError:
                    continue  # an ansible_host that is a name, not an address
                owners.setdefault(address, [])
                if m.name not in owners[address]:
                    owners[address].append(m.name)
        users: dict[str, list[str]] = {}
        for name, address in checked.addresses.items():
            users.setdefault(address, []).append(name)
        for address, names in users.items():
            declared = owners.get(address, [])
            claimants = _unique(names + declared)
            if len(claimants) < 2:
                continue
            for name in names:
                if name in checked.refused:
                    continue
                if len(declared) == 1 and declared[0] == name:
                    continue  # its own inventory address: the others are the ones refused
                other = next(o for o in (declared + names) if o != name)
                whose = "in the inventory" if other in declared else "from its facts"
                checked.refused[name] = (
                    f"distcc farm member {name}: farm address {address} is also member {other}'s ({whose}); "
                    "members are told apart by address (set kbuild_host_farm_address)"
                )

    def _check_hostnames(self, checked: _Checked) -> None:
        """A facts hostname becomes an /etc/hosts name only when no other host answers to it."""
        holders: dict[str, list[str]] = {}
        for name in _unique(self.inventory_names + tuple(m.name for m in self.members)):
            for key in _name_keys(name):
                holders.setdefault(key, []).append(name)
        claimed: dict[str, list[str]] = {}
        for m in self.members:
            if _usable_name(m.hostname) and m.hostname.lower() != m.name.lower():
                claimed.setdefault(m.hostname.lower(), []).append(m.name)
        for key, names in claimed.items():
            for name in names:
                others = [n for n in holders.get(key, []) if n != name]
                hostname = self._by_name[name].hostname
                if key in _name_keys(name):
                    # the short form of its own inventory name: a fine alias, unless another
                    # host's name reads the same (then the alias would be ambiguous: leave it out)
                    if not others and len(names) == 1 and name not in checked.refused:
                        checked.hostnames[name] = str(hostname)
                    continue
                if others:
                    why = f"is the inventory name of {others[0]}"
                elif len(names) > 1:
                    why = f"is also member {next(n for n in names if n != name)}'s facts hostname"
                else:
                    if name not in checked.refused:
                        checked.hostnames[name] = str(hostname)
                    continue
                checked.refused.setdefault(
                    name,
                    f"distcc farm member {name}: its facts hostname '{hostname}' {why}; "
                    "members are named by the inventory, not by their own facts",
                )

    @property
    def refused(self) -> dict[str, str]:
        """Member -> the one-line reason it was left out of the farm."""
        return dict(self._checked.refused)

    def address(self, name: str) -> str:
        """A member's canonical farm address."""
        return self._checked.addresses[name]

    # ----------------------------------------------------------------- shared results

    @functools.cached_property
    def host_entries(self) -> tuple[HostEntry, ...]:
        """One /etc/hosts entry per member: its inventory name and its own short hostname."""
        checked = self._checked
        entries = []
        for m in self.members:
            if m.name in checked.refused:
                continue
            names = tuple(n for n in (m.name, checked.hostnames.get(m.name)) if _usable_name(n))
            if names:
                entries.append(HostEntry(address=checked.addresses[m.name], names=names))
        return tuple(entries)

    def _usable(self, members: tuple[FarmMember, ...]) -> list[FarmMember]:
        refused = self._checked.refused
        return [m for m in members if m.name not in refused]

    def _client_allow(self, server: str, subnets: bool, extra: tuple[str, ...], allow_public: bool) -> tuple[str, ...]:
        key = (subnets, extra, allow_public)
        if key not in self._allow:
            self._allow[key] = self._compute_allow(server, subnets, extra, allow_public)
        return self._allow[key]

    def _compute_allow(self, server: str, subnets: bool, extra: tuple[str, ...], allow_public: bool) -> tuple[str, ...]:
        """The clients' addresses (or subnets) and ``extra``, through the rule ``--allow`` follows."""
        sources = []
        for m in self._usable(self.clients):
            address = self.address(m.name)
            if subnets and m.network:
                sources.append((m.name, "subnet", m.network, address))
            else:
                sources.append((m.name, "address", address, address))
        try:
            allow = parse_allow(_unique(s[2] for s in sources) + extra, allow_public)
        except UserError as exc:
            raise self._allow_error(server, sources, extra, allow_public, exc) from None
        for name, what, entry, address in sources:
            if what == "subnet" and not _contains(entry, address):
                raise UserError(
                    f"distcc server {server}: client {name}'s subnet {entry} does not hold its address {address}"
                )
        return allow

    @staticmethod
    def _allow_error(server: str, sources: list, extra: tuple[str, ...], allow_public: bool, exc: UserError) -> UserError:
        """Name the client whose reported address or subnet the rule refuses, when one alone is."""
        for name, what, entry, _ in sources:
            try:
                parse_allow((entry,), allow_public)
            except UserError as one:
                return UserError(f"distcc server {server}: client {name}'s {what} {entry}: {one}")
        if extra:
            try:
                parse_allow(extra, allow_public)
            except UserError as one:
                return UserError(f"distcc server {server}: {one}")
        return UserError(f"distcc server {server}: the allow list of its clients: {exc}")

    # ----------------------------------------------------------------- one member's goals

    def goals_for(self, host: str, goals: Mapping[str, Any], jobs: Mapping[str, int] | None = None) -> FarmGoals:
        """The farm's goals for ``host``; ``goals`` is the host's own (partial) goals dict.

        ``jobs`` maps each server to its planned ``-j`` (a client's ``DISTCC_HOSTS`` limits).
        Explicit ``allow``, ``distcc_hosts`` and ``host_entries`` in ``goals`` are kept after the
        farm's own; an explicit ``listen`` wins over the farm address.
        """
        if not self.is_member(host):
            return FarmGoals()
        checked = self._checked
        if host in checked.refused:
            raise UserError(checked.refused[host])
        own = tuple(_own_entry(e) for e in goals.get("host_entries") or ())
        result: dict[str, Any] = {"host_entries": self._entries_with(own)}
        if host in self._server_names:
            if not self._usable(self.clients):
                raise UserError(
                    f"distcc server {host}: no client addresses to allow "
                    f"({self._none_usable(self.clients, self.client_group)})"
                )
            extra = tuple(str(a) for a in goals.get("allow") or ())
            allow = self._client_allow(
                host, bool(goals.get("farm_allow_subnets")), extra, bool(goals.get("allow_public"))
            )
            result.update(distcc_server=True, allow=allow, listen=goals.get("listen") or self.address(host))
            packages = self._server_packages(host)
            if packages:
                result["distcc_server_packages"] = packages
        if host in self._client_names:
            extra = tuple(str(h) for h in goals.get("distcc_hosts") or ())
            kind = goals.get("compiler")
            hosts, excluded = self._client_hosts(host, extra, jobs or {}, kind)
            result["distcc_hosts"] = hosts
            if excluded:
                result["distcc_excluded"] = excluded
        return FarmGoals(**result)

    # ----------------------------------------------------------------- toolchains

    def kind_of(self, name: str) -> str | None:
        """The compiler kind ``name`` builds with, as the farm judges it (see :func:`planned_kind`)."""
        return self._kinds.get(name)

    def verdict(self, client: str, server: str, kind: str | None = None) -> Verdict:
        """Whether ``server`` compiles what ``client`` compiles (kept when either's toolchain is unknown)."""
        key = (client, server, kind)
        if key not in self._verdicts:
            c = self._by_name[client].toolchain
            s = self._by_name[server].toolchain
            if c is None or s is None:
                self._verdicts[key] = Verdict(True)
            else:
                chosen = planned_kind(c.facts, kind or self._kinds.get(client))
                self._verdicts[key] = compiles_for(c, s, chosen) if chosen else Verdict(True)
        return self._verdicts[key]

    def _server_packages(self, server: str) -> tuple[str, ...]:
        """What ``server`` installs so that it compiles like its clients (same distro release)."""
        packages: list[str] = []
        for m in self._usable(self.clients):
            if m.name != server:
                packages += self.verdict(m.name, server).packages
        return _unique(packages)

    def _entries_with(self, own: tuple[HostEntry, ...]) -> tuple[HostEntry, ...]:
        if not own:
            return self.host_entries
        if own not in self._entries:
            self._entries[own] = self.host_entries + own
        return self._entries[own]

    def _client_hosts(
        self, host: str, extra: tuple[str, ...], jobs: Mapping[str, int], kind: str | None = None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """DISTCC_HOSTS for a client: every usable server but itself that compiles what it
        compiles, then its own extra hosts; and the servers left out, each "NAME: why"."""
        servers = [m for m in self._usable(self.servers) if m.name != host]
        if not servers:
            raise UserError(
                f"distcc client {host}: no distcc server to send jobs to "
                f"({self._none_usable(tuple(m for m in self.servers if m.name != host), self.server_group)})"
            )
        if kind in ("gcc", "clang"):
            self._kinds.setdefault(host, kind)
        verdicts = [(m, self.verdict(host, m.name, kind if kind in ("gcc", "clang") else None)) for m in servers]
        excluded = tuple(f"{m.name}: {v.reason}" for m, v in verdicts if not v.ok)
        servers = [m for m, v in verdicts if v.ok]
        if not servers:
            return extra, excluded
        key = (host if host in self._server_names else None, extra, tuple((m.name, jobs.get(m.name)) for m in servers))
        if key not in self._hosts:
            specs = tuple(self._server_spec(m, jobs) for m in servers)
            self._hosts[key] = _unique(specs + extra)
        return self._hosts[key], excluded

    def _none_usable(self, members: tuple[FarmMember, ...], group: str) -> str:
        if not members:
            return f"group {group} is empty"
        return f"every member of group {group} was refused: {self._checked.refused[members[0].name]}"

    def _server_spec(self, m: FarmMember, jobs: Mapping[str, int]) -> str:
        n = jobs.get(m.name)
        if n is None or isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"distcc server {m.name}: no planned jobs (it was not planned in this run)")
        # DISTCC_HOSTS names the server as /etc/hosts does, or by address when its name is not one
        # (an IPv6 address in brackets, as distcc's HOST[:PORT] syntax needs)
        if _usable_name(m.name):
            return f"{m.name}/{n}"
        address = self.address(m.name)
        return f"[{address}]/{n}" if ipaddress.ip_address(address).version == 6 else f"{address}/{n}"


def _contains(network: str, address: str) -> bool:
    """Whether ``address`` (canonical, from the validator) lies in ``network``, which the allow-list
    rule has accepted."""
    return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
