"""Addresses, networks, host names and inventory group names: what users, facts files,
inventories and role variables may say of them.

The CLI, the planner and the kbuild_host role (through its filter plugin) all call these functions
(``provision.rules`` holds one module per domain), so a rule is never written twice. Pure functions (no I/O). Each raises :class:`UserError` with one
line that names the bad value (escaped, so control characters never reach a terminal) and says what
was expected; the ``check_*``/``parse_*`` functions return the value in the canonical form that
kprov writes into files.

Addresses are parsed with :mod:`ipaddress` and judged by kprov's own tables below, never by
``ipaddress``'s ``is_private`` and friends (they disagree across Python patch releases and count
IPv4-mapped space as private).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from provision.errors import UserError, shown

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


_net = ipaddress.ip_network


#: What kprov calls private: networks that one organisation runs for itself. Written out so the
#: answer is the same on every Python. 100.64.0.0/10 (carrier-grade NAT, RFC 6598) is left out on
#: purpose: an ISP shares it between its customers, so it is not one owner's network.
PRIVATE_NETWORKS: tuple[IPNetwork, ...] = (
    _net("10.0.0.0/8"),  # RFC 1918
    _net("172.16.0.0/12"),  # RFC 1918
    _net("192.168.0.0/16"),  # RFC 1918
    _net("127.0.0.0/8"),  # loopback
    _net("169.254.0.0/16"),  # link-local
    _net("fc00::/7"),  # unique local addresses (RFC 4193)
    _net("fe80::/10"),  # link-local
    _net("::1/128"),  # loopback
)


LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (_net("127.0.0.0/8"), _net("::1/128"))


#: Names that mean this very host: /etc/hosts may give them only a loopback address.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "localhost6",
                            "localhost6.localdomain6"})


#: No host sends from or listens on these: "this network", multicast, reserved and broadcast; the
#: IPv6 unspecified address, IPv4-mapped space (an IPv4 client seen through an IPv6 socket, which
#: distccd 3.4 compares byte-swapped) and multicast.
NOT_A_HOST: tuple[IPNetwork, ...] = (
    _net("0.0.0.0/8"),
    _net("224.0.0.0/4"),
    _net("240.0.0.0/4"),
    _net("::/128"),
    _net("::ffff:0:0/96"),
    _net("ff00::/8"),
)


_LINK_LOCAL_V6 = _net("fe80::/10")


#: With --allow-public, the public part of an allow list (its addresses outside PRIVATE_NETWORKS)
#: is at most as large as an IPv4 /16 (65,536 addresses, a campus) or an IPv6 /48 (one site).
#: More is a typo or a wish to let strangers run commands.
ALLOW_PUBLIC_MAX_PREFIX = {4: 16, 6: 48}


_ADDRESS_CHARS = re.compile(r"[0-9A-Fa-f.:]{1,45}", re.ASCII)


_PREFIX = re.compile(r"0|[1-9][0-9]{0,2}", re.ASCII)


def where_value(where: str, value: Any) -> str:
    return f"{where} {shown(value)}"


def _leading_zero(text: str) -> bool:
    """A dotted-decimal part with a leading zero: octal to inet_aton, decimal to others."""
    dotted = text.rsplit(":", 1)[-1]
    return "." in dotted and any(len(part) > 1 and part.startswith("0") for part in dotted.split("."))


def _spelling(text: Any, where: str, what: str, network: bool) -> str:
    """The address part of ``text`` if ``text`` can only be an address (or network) spelling.

    Refused before :mod:`ipaddress` sees them: anything but text, empty text, a scope
    (``%eth0``), whitespace, control or non-ASCII characters, and dotted numbers with a leading
    zero. A network may carry one ``/PREFIX`` of ASCII digits without leading zeros.
    """
    if not isinstance(text, str):
        raise UserError(f"{where_value(where, text)} is not {what} (expected text)")
    if not text:
        raise UserError(f"{where} is empty: expected {what}")
    if "%" in text:
        raise UserError(
            f"{where_value(where, text)} is not {what}: a scope (%interface) is not accepted; "
            "give a global, unique-local or IPv4 address"
        )
    address, slash, prefix = text.partition("/") if network else (text, "", "")
    if not _ADDRESS_CHARS.fullmatch(address) or (slash and not _PREFIX.fullmatch(prefix)):
        raise UserError(
            f"{where_value(where, text)} is not {what}: only digits, a-f, '.' and ':'"
            + (" and a /PREFIX (e.g. 192.168.1.0/24)" if network else "")
            + "; no spaces, newlines or other characters"
        )
    if _leading_zero(address):
        raise UserError(
            f"{where_value(where, text)} is not {what}: a number with a leading zero is octal to "
            "some tools and decimal to others"
        )
    return address


def unwrap(ip: IPAddress) -> IPAddress:
    """IPv4-mapped (``::ffff:a.b.c.d``) and IPv4-compatible (``::a.b.c.d``) addresses as IPv4."""
    if ip.version == 6:
        n = int(ip)
        if n >> 32 == 0xFFFF:
            return ipaddress.IPv4Address(n & 0xFFFFFFFF)
        if n >> 32 == 0 and n > 1:  # ``::`` and ``::1`` are IPv6's own
            return ipaddress.IPv4Address(n)
    return ip


def unwrap_network(net: IPNetwork) -> IPNetwork:
    """An IPv6 network that lies inside IPv4-mapped or -compatible space, as the IPv4 network it is."""
    if net.version == 6 and net.prefixlen >= 96:
        n = int(net.network_address)
        single = net.prefixlen == 128 and n <= 1
        if n >> 32 == 0xFFFF or (n >> 32 == 0 and not single):
            return ipaddress.IPv4Network((n & 0xFFFFFFFF, net.prefixlen - 96))
    return net


def parse_address(text: Any, where: str) -> IPAddress:
    """One IPv4/IPv6 address, normalised (mapped and compatible spellings become IPv4)."""
    _spelling(text, where, "an IP address", network=False)
    try:
        return unwrap(ipaddress.ip_address(text))
    except ValueError:
        raise UserError(f"{where_value(where, text)} is not an IP address") from None


def parse_ip(text: Any, where: str) -> str:
    """A single IPv4/IPv6 address in canonical text form; UserError otherwise."""
    return str(parse_address(text, where))


# A farm checks the same client addresses once per server: parsed spellings are remembered.
@functools.lru_cache(maxsize=1 << 14)
def _network_from_text(text: str) -> IPNetwork | None:
    try:
        return unwrap_network(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return None


def parse_network(text: Any, where: str) -> IPNetwork:
    """``ADDRESS[/PREFIX]`` as a network (host bits dropped), normalised like :func:`parse_address`."""
    _spelling(text, where, "a valid CIDR", network=True)
    net = _network_from_text(text)
    if net is None:
        raise UserError(f"{where_value(where, text)} is not a valid CIDR (expected e.g. 192.168.1.0/24)")
    return net


def _span(net: IPNetwork) -> tuple[int, int, int]:
    """(version, first, last) of a network, for integer comparisons."""
    first = int(net.network_address)
    return net.version, first, first + (1 << (net.max_prefixlen - net.prefixlen)) - 1


_PRIVATE_SPANS = tuple(_span(n) for n in PRIVATE_NETWORKS)


LOOPBACK_SPANS = tuple(_span(n) for n in LOOPBACK_NETWORKS)


_NOT_A_HOST_SPANS = tuple((_span(n), n) for n in NOT_A_HOST)


def _within(v: int, a: int, b: int, spans: tuple[tuple[int, int, int], ...]) -> bool:
    return any(v == rv and ra <= a and b <= rb for rv, ra, rb in spans)


def inside_one(net: IPNetwork, spans: tuple[tuple[int, int, int], ...]) -> bool:
    return _within(*_span(net), spans)


def not_a_host(net: IPNetwork) -> IPNetwork | None:
    """The :data:`NOT_A_HOST` network ``net`` overlaps, if any."""
    v, a, b = _span(net)
    return next((r for (rv, ra, rb), r in _NOT_A_HOST_SPANS if v == rv and a <= rb and ra <= b), None)


def _union(spans: Iterable[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """Disjoint, sorted (first, last) intervals covering the spans (of one family)."""
    merged: list[list[int]] = []
    for _, a, b in sorted(spans):
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _private_count(version: int, a: int, b: int) -> int:
    """How many addresses of ``a..b`` lie in the private ranges (which are disjoint)."""
    return sum(max(0, min(b, rb) - max(a, ra) + 1) for rv, ra, rb in _PRIVATE_SPANS if rv == version)


def is_private(value: IPAddress | IPNetwork) -> bool:
    """Inside one of :data:`PRIVATE_NETWORKS` (after unwrapping IPv4-mapped spellings)."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        value = ipaddress.ip_network(unwrap(value))
    return inside_one(unwrap_network(value), _PRIVATE_SPANS)


def is_loopback(ip: IPAddress) -> bool:
    return inside_one(ipaddress.ip_network(unwrap(ip)), LOOPBACK_SPANS)


def parse_allow(
    cidrs: Iterable[str],
    allow_public: bool,
    where: str = "--allow",
    public_switch: str = "--allow-public",
) -> tuple[str, ...]:
    """distccd's allow list: each entry canonical, one address family, never the whole Internet.

    "Anyone who can connect to distccd can run arbitrary commands" (distcc security notes,
    CVE-2004-2687). The union of the entries is what distccd admits, so the rules apply to it:
    without ``allow_public`` every collapsed network lies inside one private range; with it, the
    union still never covers a whole address family and its public part is at most a /16 (IPv4) or
    a /48 (IPv6). An empty list is refused: distccd 3.3+ then falls back to every private network.
    """
    if isinstance(cidrs, (str, bytes)) or not isinstance(cidrs, Iterable):
        raise UserError(f"{where_value(where, cidrs)}: expected a list of addresses or CIDR networks")
    cidrs = tuple(cidrs)
    if all(isinstance(c, str) for c in cidrs):
        return _parse_allow_texts(cidrs, bool(allow_public), where, public_switch)
    return _parse_allow(cidrs, bool(allow_public), where, public_switch)


# Every server of a farm gets the same client list: the answer for a list is remembered.
@functools.lru_cache(maxsize=256)
def _parse_allow_texts(cidrs: tuple[str, ...], allow_public: bool, where: str, public_switch: str) -> tuple[str, ...]:
    return _parse_allow(cidrs, allow_public, where, public_switch)


def _parse_allow(cidrs: tuple[Any, ...], allow_public: bool, where: str, public_switch: str) -> tuple[str, ...]:
    nets: list[IPNetwork] = []
    for raw in cidrs:
        net = parse_network(raw, where)
        if net.prefixlen == 0:
            raise UserError(
                f"{where_value(where, raw)} ({net}) would let the whole Internet run commands through "
                "distccd; name your network"
            )
        bad = not_a_host(net)
        if bad is not None:
            raise UserError(f"{where_value(where, raw)} overlaps {bad}, where no client has an address")
        if not allow_public and not inside_one(net, _PRIVATE_SPANS):
            raise UserError(
                f"{where_value(where, raw)} is a public range: anyone in it could run commands through "
                f"distccd (add {public_switch} if you mean it)"
            )
        nets.append(net)
    if not nets:
        raise UserError(
            f"{where}: the allow list is empty (distccd would fall back to every private network); "
            "name the clients' networks"
        )
    families = sorted({n.version for n in nets})
    if len(families) > 1:
        v4 = next(n for n in nets if n.version == 4)
        v6 = next(n for n in nets if n.version == 6)
        raise UserError(
            f"{where} mixes IPv4 ({v4}) and IPv6 ({v6}): distccd listens on one address, so its allow "
            "list must be one address family"
        )
    version = families[0]
    bits = 32 if version == 4 else 128
    # What distccd admits is the union of the entries (the intervals collapse_addresses would give).
    union = _union(_span(n) for n in nets)
    listed = " ".join(str(n) for n in nets[:4]) + (" ..." if len(nets) > 4 else "")
    if union[0] == (0, (1 << bits) - 1):
        raise UserError(f"{where} {listed}: together these cover every IPv{version} address")
    if not allow_public:
        for a, b in union:
            if not _within(version, a, b, _PRIVATE_SPANS):
                cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
                raise UserError(
                    f"{where}: together the entries cover {cls(a)}-{cls(b)}, which is not inside one private "
                    f"range (add {public_switch} if you mean it)"
                )
    else:
        public = sum((b - a + 1) - _private_count(version, a, b) for a, b in union)
        shortest = ALLOW_PUBLIC_MAX_PREFIX[version]
        if public > 1 << (bits - shortest):
            raise UserError(
                f"{where} {listed}: the public part covers more addresses than a /{shortest}, the most "
                f"kprov allows even with {public_switch} (each of them could run commands through distccd)"
            )
    return tuple(dict.fromkeys(str(n) for n in nets))


def allow_family(allow: Iterable[str]) -> int | None:
    """4 or 6: the address family of an allow list (entries normalised); None when it is empty."""
    allow = tuple(allow)
    if all(isinstance(a, str) for a in allow):
        return _allow_family_texts(allow)
    return _allow_family(allow)


# A farm's servers share one allow list: its family is worked out once.
@functools.lru_cache(maxsize=256)
def _allow_family_texts(allow: tuple[str, ...]) -> int | None:
    return _allow_family(allow)


def _allow_family(allow: tuple[Any, ...]) -> int | None:
    versions = {parse_network(a, "allow entry").version for a in allow}
    if len(versions) > 1:
        raise UserError("the allow list mixes IPv4 and IPv6: it must be one address family")
    return versions.pop() if versions else None


def loopback_for(allow: Iterable[str]) -> str:
    """The loopback address of the allow list's family (listen and allow share one family)."""
    return "::1" if allow_family(allow) == 6 else "127.0.0.1"


def own_addresses(addresses: Iterable[Any]) -> frozenset[IPAddress]:
    """A host's addresses as reported by its facts, normalised; what does not parse is left out."""
    out: set[IPAddress] = set()
    for a in addresses:
        try:
            out.add(parse_address(a, "address"))
        except UserError:
            continue
    return frozenset(out)


def check_host_address(text: Any, where: str) -> IPAddress:
    """One concrete unicast address of a host, as a daemon binds it or a client connects to it:
    not the unspecified address (``0.0.0.0``, ``::``), nor in :data:`NOT_A_HOST` (multicast,
    broadcast and reserved space, IPv4-mapped spellings of those), nor IPv6 link-local (it needs
    an interface scope, which kprov never accepts). Returned normalised."""
    ip = parse_address(text, where)
    shown_ip = where_value(where, text)
    if int(ip) == 0:
        raise UserError(f"{shown_ip} is the unspecified address: it stands for every address of a host, not one host")
    bad = not_a_host(ipaddress.ip_network(ip))
    if bad is not None:
        raise UserError(f"{shown_ip} is not a unicast address of a host (it lies in {bad})")
    if ip.version == 6 and ip in _LINK_LOCAL_V6:
        raise UserError(
            f"{shown_ip} is link-local: it needs an interface scope (%eth0), which kprov does not accept; "
            "give a global or unique-local address"
        )
    return ip


def check_listen(
    text: Any,
    allow: Iterable[str],
    host_addresses: Iterable[Any] | None = None,
    where: str = "--listen",
) -> str:
    """The one address distccd binds to: a concrete unicast address of the allow list's family.

    IPv4 allow entries need an IPv4 listen address: distccd 3.4 (Debian 12, without upstream fix
    aaddab4) compares them byte-swapped on an IPv6 socket. An IPv6 allow list with an IPv6 listen
    address works: checked with distccd 3.4 listening on ::1 (a client on ::1 admitted by ``::1``
    and ``::/120``, refused by ``::2``, ``::100:0`` and ``::100/120``). When the host's addresses
    are known the address must be one of them; loopback always counts.
    """
    ip = parse_address(text, where)
    shown_ip = where_value(where, text)
    if int(ip) == 0:
        raise UserError(f"{shown_ip} binds every address of the host; give the one address distccd should listen on")
    if ip.version == 6 and ip in _LINK_LOCAL_V6:
        raise UserError(
            f"{shown_ip} is link-local: it needs an interface scope, which distccd's --listen cannot "
            "carry; give a global or unique-local address"
        )
    ip = check_host_address(text, where)
    family = allow_family(allow)
    if family == 4 and ip.version == 6:
        raise UserError(
            f"{shown_ip} is IPv6 but the allow list is IPv4: distccd 3.4 compares IPv4 allow entries "
            "byte-swapped on an IPv6 socket; give an IPv4 listen address"
        )
    if family == 6 and ip.version == 4:
        raise UserError(f"{shown_ip} is IPv4 but the allow list is IPv6: its clients could never reach it")
    if host_addresses is not None and not is_loopback(ip):
        mine = own_addresses(host_addresses)
        if ip not in mine:
            have = ", ".join(sorted(str(a) for a in mine)) or "none known"
            raise UserError(f"{shown_ip} is not an address of this host (it has {have})")
    return str(ip)


def address_in(address: str, networks: Iterable[str]) -> bool:
    """True when ``address`` lies in one of ``networks`` (both normalised first)."""
    ip = unwrap(ipaddress.ip_address(address))
    return any(ip in unwrap_network(ipaddress.ip_network(n, strict=False)) for n in networks)


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.ASCII)


#: A last label that inet_aton reads as a number (``127.1``, ``0x7f.1``, ``2130706433``): such a
#: "name" is an address in disguise.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*", re.ASCII)


def is_hostname(name: Any) -> bool:
    """An RFC 1123 host name in ASCII whose last label is not a number (so not an address)."""
    return (
        isinstance(name, str)
        and len(name) <= 253
        and _HOSTNAME.fullmatch(name) is not None
        and _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]) is None
    )


def check_hostname(name: Any, where: str) -> str:
    if not is_hostname(name):
        raise UserError(
            f"{where_value(where, name)} is not a valid host name (RFC 1123: ASCII letters, digits, "
            "inner hyphens and dots; not an address)"
        )
    return name


#: An inventory group name as Ansible's own rule has it (a valid variable name: letters, digits
#: and underscores, not starting with a digit; Ansible warns about anything else and may rewrite
#: it), in ASCII.
