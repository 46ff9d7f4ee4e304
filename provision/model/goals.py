"""What the user asks for: :class:`Goals` (every switch of ``kprov plan``/``apply`` and every key
of ``kbuild_host_goals``; a key it does not know is refused), /etc/hosts entries (checked:
unicast addresses, host names, loopback names kept for loopback), the shared cache's users, and
the goals a command line changed.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import ipaddress
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provision.errors import UserError, shown
from provision.model.schema import Serialisable
from provision.rules.addresses import (
    LOOPBACK_NAMES,
    LOOPBACK_SPANS,
    inside_one,
    is_hostname,
    not_a_host,
    parse_address,
    where_value,
)


@dataclass(frozen=True)
class CacheUser(Serialisable):
    """One credential of a compile-cache store: a host, whether it writes, where its secret is."""

    name: str
    write: bool
    secret_file: str  # a path on the controller (or this host); never the secret itself


@dataclass(frozen=True)
class CacheRemoteGoal(Serialisable):
    """A store this host uses (``--ccache-remote``): the URL carries no user or password."""

    url: str
    user: str
    secret_file: str
    write: bool = False
    only: bool = False


@dataclass(frozen=True)
class HostEntry(Serialisable):
    address: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Goals(Serialisable):
    """What the user asked for. ``None`` means "let the planner decide"."""

    target: str | None = None
    compiler: str = "auto"
    debug_info: str = "auto"
    lto: str = "auto"
    arch: str | None = None  # cross-build target ARCH=, None = native
    for_this_machine: bool = True  # the kernel will boot on the host that builds it
    build_dir: str | None = None
    # overrides, each forces one decision
    jobs: int | None = None
    zram: bool | None = None
    zram_percent: int | None = None
    zram_algorithm: str | None = None
    ccache: bool | None = None
    ccache_size_bytes: int | None = None
    ccache_dir: str | None = None
    ccache_shared: bool = False  # several trees / machines share the cache
    # the common parent of the trees this host's users build (ccache base_dir for every user);
    # None: the parent of the users' home directories
    source_root: str | None = None
    builds_to_keep: int = 2
    load: float | None = None  # make -l N, only when asked (--load N)
    # distcc
    distcc_server: bool = False
    allow: tuple[str, ...] = ()
    allow_public: bool = False
    listen: str | None = None
    distcc_hosts: tuple[str, ...] = ()
    host_entries: tuple[HostEntry, ...] = ()
    # a distcc farm (provision.fleet): servers allow their clients' subnets instead of each address
    farm_allow_subnets: bool = False
    # set by the farm (provision.fleet.farm): servers left out of DISTCC_HOSTS, each "NAME: why"; the
    # packages a server installs so that it compiles what its clients compile
    distcc_excluded: tuple[str, ...] = ()
    distcc_server_packages: tuple[str, ...] = ()
    # the shared ccache: users to add to its group (nobody unless asked); or no shared cache at all
    ccache_group_add: tuple[str, ...] = ()
    ccache_private: bool = False
    # the shared compile cache (provision.planner.shared_cache): run a store, use one, or both
    ccache_server: bool = False
    ccache_backend: str | None = None  # redis | http; None = the planner chooses
    ccache_port: int | None = None
    ccache_listen: str | None = None  # the store's own address and allow list (a fleet: not distccd's);
    ccache_allow: tuple[str, ...] = ()  # None/() = --listen/--allow
    ccache_users: tuple[CacheUser, ...] = ()  # the store's users (secret files: paths only)
    ccache_remote: CacheRemoteGoal | None = None
    ccache_toolchains: int = 1  # distinct toolchains among the store's clients (a fleet knows)
    ccache_fleet_role: str = ""  # fleet: store, writer, reader, or "excluded: why"
    ccache_fleet_notes: tuple[str, ...] = ()  # fleet: why the cache is partitioned, and by what

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None) -> Goals:
        """Goals from a partial ``to_dict()`` (``kbuild_host_goals``): a key Goals does not know,
        at the top or in an object it holds, is refused, never dropped (``ccache_privat: true``
        would otherwise plan a shared cache)."""
        where = cls.__name__ if where is None else where
        _refuse_unknown_keys(cls, data, where)
        return super().from_dict(data, where)


@functools.cache
def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _held_dataclass(tp: Any) -> type | None:
    """The dataclass a field holds (itself, optional, or as the items of a tuple), if any."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    for arg in typing.get_args(tp):
        found = _held_dataclass(arg) if arg is not Ellipsis else None
        if found is not None:
            return found
    return None


def _refuse_unknown_keys(cls: type, data: Any, where: str) -> None:
    """UserError naming the first key of ``data`` (and of the objects in it) that ``cls`` lacks."""
    if not isinstance(data, Mapping):
        return  # from_dict says what is wrong with it
    fields = _fields(cls)
    at = f"{where}: " if where else ""
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1) if isinstance(key, str) else []
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise UserError(f"{at}unknown key {shown(key)}{hint}")
    for name, tp in fields.items():
        inner = _held_dataclass(tp)
        if inner is None or name not in data:
            continue
        value, here = data[name], f"{where}.{name}" if where else name
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                _refuse_unknown_keys(inner, item, f"{here}[{i}]")
        else:
            _refuse_unknown_keys(inner, value, here)


def check_host_entry(address: Any, names: Any, where: str = "host entry") -> HostEntry:
    """One /etc/hosts line: a unicast address and one or more host names."""
    ip = parse_address(address, f"{where} address")
    bad = not_a_host(ipaddress.ip_network(ip))
    if bad is not None:
        raise UserError(f"{where} {shown(address)}: not a host address (it lies in {bad})")
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise UserError(f"{where} {ip}: names must be a list of host names")
    names = tuple(names)
    if not names:
        raise UserError(f"{where} {ip}: needs at least one name")
    for name in names:
        if not is_hostname(name):
            raise UserError(f"{where} {ip}: {shown(name)} is not a valid host name (RFC 1123, not an address)")
        if name.lower() in LOOPBACK_NAMES and not inside_one(ipaddress.ip_network(ip), LOOPBACK_SPANS):
            raise UserError(
                f"{where} {ip}: {shown(name)} names this host's loopback; giving it another address would "
                "send whatever trusts it (distcc's localhost, local services) elsewhere"
            )
    return HostEntry(address=str(ip), names=names)


# A farm hands every member the same tuple of entries; checking it again per member would cost
# members x entries. The memo holds the checked tuple itself, so its id cannot be reused.
_checked_entries: dict[int, tuple[tuple[Any, ...], tuple[HostEntry, ...]]] = {}


def check_host_entries(entries: Any, where: str = "host entry") -> tuple[HostEntry, ...]:
    """Every entry through :func:`check_host_entry`; a tuple already checked is not checked again."""
    if isinstance(entries, tuple):
        hit = _checked_entries.get(id(entries))
        if hit is not None and hit[0] is entries:
            return hit[1]
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Iterable):
        raise UserError(f"{where_value(where, entries)}: expected a list of entries")
    out = []
    for e in entries:
        if isinstance(e, HostEntry):
            out.append(check_host_entry(e.address, e.names, where))
        elif isinstance(e, Mapping):
            out.append(check_host_entry(e.get("address"), e.get("names") or (), where))
        else:
            raise UserError(f"{where_value(where, e)}: expected an address and its names")
    result = tuple(out)
    if isinstance(entries, tuple) and all(isinstance(e, HostEntry) for e in entries):
        if len(_checked_entries) > 8:
            _checked_entries.clear()
        _checked_entries[id(entries)] = (entries, result)
    return result


def goals_extravars(goals: Goals | None) -> dict[str, Any]:
    """The goals the user set (fields that differ from Goals()), as the role's kbuild_host_goals.

    Only what differs is passed, so an empty command line leaves the inventory's own
    ``kbuild_host_goals`` (host or group vars) in charge.
    """
    if goals is None:
        return {}
    default = Goals().to_dict()
    return {k: v for k, v in goals.to_dict().items() if default.get(k) != v}
