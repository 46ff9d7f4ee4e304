"""Every rule about what users, facts files and role variables may say, in one place.

The CLI, the planner and the kbuild_host role (through its filter plugin) all call these functions,
so a rule is never written twice. Pure functions (no I/O). Each raises :class:`UserError` with one
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
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provision import calibration as cal
from provision.errors import UserError, shown
from provision.model import HostEntry, ccache_size_string

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_net = ipaddress.ip_network

# --------------------------------------------------------------------------- address tables

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


def _where_value(where: str, value: Any) -> str:
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
        raise UserError(f"{_where_value(where, text)} is not {what} (expected text)")
    if not text:
        raise UserError(f"{where} is empty: expected {what}")
    if "%" in text:
        raise UserError(
            f"{_where_value(where, text)} is not {what}: a scope (%interface) is not accepted; "
            "give a global, unique-local or IPv4 address"
        )
    address, slash, prefix = text.partition("/") if network else (text, "", "")
    if not _ADDRESS_CHARS.fullmatch(address) or (slash and not _PREFIX.fullmatch(prefix)):
        raise UserError(
            f"{_where_value(where, text)} is not {what}: only digits, a-f, '.' and ':'"
            + (" and a /PREFIX (e.g. 192.168.1.0/24)" if network else "")
            + "; no spaces, newlines or other characters"
        )
    if _leading_zero(address):
        raise UserError(
            f"{_where_value(where, text)} is not {what}: a number with a leading zero is octal to "
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
        raise UserError(f"{_where_value(where, text)} is not an IP address") from None


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
        raise UserError(f"{_where_value(where, text)} is not a valid CIDR (expected e.g. 192.168.1.0/24)")
    return net


def _span(net: IPNetwork) -> tuple[int, int, int]:
    """(version, first, last) of a network, for integer comparisons."""
    first = int(net.network_address)
    return net.version, first, first + (1 << (net.max_prefixlen - net.prefixlen)) - 1


_PRIVATE_SPANS = tuple(_span(n) for n in PRIVATE_NETWORKS)
_LOOPBACK_SPANS = tuple(_span(n) for n in LOOPBACK_NETWORKS)
_NOT_A_HOST_SPANS = tuple((_span(n), n) for n in NOT_A_HOST)


def _within(v: int, a: int, b: int, spans: tuple[tuple[int, int, int], ...]) -> bool:
    return any(v == rv and ra <= a and b <= rb for rv, ra, rb in spans)


def _inside_one(net: IPNetwork, spans: tuple[tuple[int, int, int], ...]) -> bool:
    return _within(*_span(net), spans)


def _not_a_host(net: IPNetwork) -> IPNetwork | None:
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
    return _inside_one(unwrap_network(value), _PRIVATE_SPANS)


def is_loopback(ip: IPAddress) -> bool:
    return _inside_one(ipaddress.ip_network(unwrap(ip)), _LOOPBACK_SPANS)


# --------------------------------------------------------------------------- distccd: allow, listen


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
        raise UserError(f"{_where_value(where, cidrs)}: expected a list of addresses or CIDR networks")
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
                f"{_where_value(where, raw)} ({net}) would let the whole Internet run commands through "
                "distccd; name your network"
            )
        bad = _not_a_host(net)
        if bad is not None:
            raise UserError(f"{_where_value(where, raw)} overlaps {bad}, where no client has an address")
        if not allow_public and not _inside_one(net, _PRIVATE_SPANS):
            raise UserError(
                f"{_where_value(where, raw)} is a public range: anyone in it could run commands through "
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
    shown_ip = _where_value(where, text)
    if int(ip) == 0:
        raise UserError(f"{shown_ip} binds every address of the host; give the one address distccd should listen on")
    bad = _not_a_host(ipaddress.ip_network(ip))
    if bad is not None:
        raise UserError(f"{shown_ip} is not a unicast address of a host (it lies in {bad})")
    if ip.version == 6 and ip in _LINK_LOCAL_V6:
        raise UserError(
            f"{shown_ip} is link-local: it needs an interface scope, which distccd's --listen cannot "
            "carry; give a global or unique-local address"
        )
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


# --------------------------------------------------------------------------- names

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.ASCII)
#: A last label that inet_aton reads as a number (``127.1``, ``0x7f.1``, ``2130706433``): such a
#: "name" is an address in disguise.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*", re.ASCII)
#: A group or user name as useradd's default NAME_REGEX allows it (plus a leading underscore).
_ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)
#: Kernel ARCH= values (arch/ directory names).
_KERNEL_ARCH = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)
#: Characters of a value that is a plain name (in shell-sourced files: nothing the shell expands).
_NAME_VALUE = re.compile(r"[A-Za-z0-9._-]{1,255}", re.ASCII)


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
            f"{_where_value(where, name)} is not a valid host name (RFC 1123: ASCII letters, digits, "
            "inner hyphens and dots; not an address)"
        )
    return name


def check_account_name(name: Any, where: str) -> str:
    """A group or user name: ``[a-z_][a-z0-9_-]*``, at most 32 characters."""
    if not isinstance(name, str) or not _ACCOUNT_NAME.fullmatch(name):
        raise UserError(f"{_where_value(where, name)} is not a valid group name (expected e.g. kbuild: a-z, 0-9, _ and -)")
    return name


def check_user_name(name: Any, where: str) -> str:
    """A user account name, by the rule group names follow."""
    if not isinstance(name, str) or not _ACCOUNT_NAME.fullmatch(name):
        raise UserError(f"{_where_value(where, name)} is not a valid user name (expected e.g. alice: a-z, 0-9, _ and -)")
    return name


def check_kernel_arch(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _KERNEL_ARCH.fullmatch(name):
        raise UserError(f"{_where_value(where, name)} is not a kernel architecture name (expected e.g. arm64, x86, riscv)")
    return name


# --------------------------------------------------------------------------- distcc client hosts


@dataclass(frozen=True)
class DistccHost:
    """One ``DISTCC_HOSTS`` entry: ``HOST[:PORT][/LIMIT][,lzo]`` (``[IPv6]`` for an IPv6 address)."""

    host: str
    port: int | None = None
    limit: int | None = None
    options: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.host == "localhost"

    def spec(self, default_limit: int) -> str:
        text = f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += f":{self.port}"
        text += f"/{self.limit if self.limit is not None else default_limit}"
        for opt in self.options:
            text += f",{opt}"
        return text


_DISTCC_HOST = re.compile(
    r"(?P<host>\[[^\]]*\]|[^:/,\[\]]*)(?::(?P<port>[^/,]*))?(?:/(?P<limit>[^,]*))?(?P<opts>(?:,[^,]*)*)",
    re.ASCII | re.DOTALL,
)
_SMALL_NUMBER = re.compile(r"[1-9][0-9]{0,5}", re.ASCII)
#: ``,lzo`` only. ``,cpp`` (pump mode) is refused: pump mode does not work with ccache
#: (REFERENCE §5) and needs the make run wrapped in ``pump``, which kprov's make line is not.
DISTCC_OPTIONS = ("lzo",)


def parse_distcc_host(spec: Any, max_limit: int, where: str = "--distcc-hosts") -> DistccHost:
    """Parse one distcc host spec; refuse anything distcc would misread or kprov cannot vouch for."""
    shown_spec = _where_value(where, spec)
    if not isinstance(spec, str) or not spec:
        raise UserError(f"{shown_spec}: expected HOST[:PORT][/LIMIT][,lzo]")
    if not spec.isascii() or not spec.isprintable() or " " in spec:
        raise UserError(f"{shown_spec}: spaces, control and non-ASCII characters are not allowed (expected HOST[:PORT][/LIMIT][,lzo])")
    if spec[0] in "@+-" or "@" in spec:
        raise UserError(
            f"{shown_spec}: ssh hosts (user@host, @host), zeroconf (+zeroconf) and options are not "
            "supported, give HOST[:PORT]"
        )
    if not spec.startswith("[") and spec.count(":") > 1:
        raise UserError(f"{shown_spec}: write an IPv6 address in brackets, e.g. [fd00::7]:3632/8")
    m = _DISTCC_HOST.fullmatch(spec)
    if not m:
        raise UserError(f"{shown_spec}: expected HOST[:PORT][/LIMIT][,lzo] ([ADDRESS] for IPv6)")
    host = m.group("host")
    if host.startswith("["):
        host = str(parse_address(host[1:-1], f"{where} {shown(spec)}: address"))
    elif host == "localhost":
        pass
    elif host and all(c in "0123456789." for c in host):
        host = str(parse_address(host, f"{where} {shown(spec)}: address"))
    elif not is_hostname(host):
        raise UserError(f"{shown_spec}: {shown(host)} is not a valid host name, IPv4 address or [IPv6 address]")
    port = None
    if m.group("port") is not None:
        p = m.group("port")
        if not _SMALL_NUMBER.fullmatch(p) or not 1 <= int(p) <= 65535:
            raise UserError(f"{shown_spec}: port {shown(p)} is not in 1..65535")
        port = int(p)
    limit = None
    if m.group("limit") is not None:
        lim = m.group("limit")
        if not _SMALL_NUMBER.fullmatch(lim) or not 1 <= int(lim) <= max_limit:
            raise UserError(f"{shown_spec}: limit {shown(lim)} must be a whole number in 1..{max_limit}")
        limit = int(lim)
    words = m.group("opts").split(",")[1:]
    for opt in words:
        if opt == "cpp":
            raise UserError(
                f"{shown_spec}: pump mode (',cpp') is not supported: it does not work with ccache and "
                "needs make run under distcc-pump; drop ',cpp'"
            )
        if opt not in DISTCC_OPTIONS:
            raise UserError(f"{shown_spec}: unknown option {shown(',' + opt)} (kprov accepts ,lzo)")
    if len(set(words)) != len(words):
        raise UserError(f"{shown_spec}: an option is given twice")
    return DistccHost(host=host, port=port, limit=limit, options=tuple(words))


def check_distcc_hosts(specs: Any, max_limit: int, where: str = "--distcc-hosts") -> tuple[DistccHost, ...]:
    """A whole host list: each spec parsed, no host (with its port) listed twice."""
    if isinstance(specs, (str, bytes)) or not isinstance(specs, Iterable):
        raise UserError(f"{_where_value(where, specs)}: expected a list of host specs")
    specs = tuple(specs)
    if all(isinstance(s, str) for s in specs):
        return _check_distcc_host_texts(specs, max_limit, where)
    return _check_distcc_hosts(specs, max_limit, where)


# A farm's clients share one server list: it is checked once.
@functools.lru_cache(maxsize=256)
def _check_distcc_host_texts(specs: tuple[str, ...], max_limit: int, where: str) -> tuple[DistccHost, ...]:
    return _check_distcc_hosts(specs, max_limit, where)


def _check_distcc_hosts(specs: tuple[Any, ...], max_limit: int, where: str) -> tuple[DistccHost, ...]:
    hosts: list[DistccHost] = []
    seen: set[tuple[str, int | None]] = set()
    for spec in specs:
        h = parse_distcc_host(spec, max_limit, where)
        if (h.host, h.port) in seen:
            raise UserError(f"{_where_value(where, spec)}: {h.host} is listed twice")
        seen.add((h.host, h.port))
        hosts.append(h)
    return tuple(hosts)


# --------------------------------------------------------------------------- sizes and numbers

_SIZE = re.compile(r"(?P<int>[0-9]{1,15})(?:\.(?P<frac>[0-9]{1,6}))?(?P<unit>[kKMGT]i?)?B?", re.ASCII)
#: Binary units whether or not the "i" is written: ``8G`` is 8 GiB. The plan hands ccache the
#: size as ``8Gi`` (model.ccache_size_string), so ccache gets exactly what kprov planned.
_UNITS = {
    "k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
    "ki": 1 << 10, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
}
#: The largest size kprov accepts for a cache: larger is a typo (``1e35T``), and ccache reads an
#: overflowing size as "no limit".
MAX_SIZE_BYTES = 64 << 40


def parse_size(text: Any, where: str = "size") -> int:
    """``8G``, ``512M``, ``1.5Gi``, ``10GiB`` -> bytes, in binary units (G and Gi are both 2^30).

    ASCII digits only, at most 64 TiB, never zero. A bare number is refused: ``10`` could mean
    bytes or gigabytes, and guessing wrong either fills a disk or makes the cache useless.
    """
    if not isinstance(text, str):
        raise UserError(f"{_where_value(where, text)}: expected a size as text, such as 8G, 512M or 10Gi")
    if not text:
        raise UserError(f"{where} is empty: expected a size such as 8G, 512M or 10Gi")
    m = _SIZE.fullmatch(text)
    if not m:
        raise UserError(
            f"{_where_value(where, text)}: expected a size such as 8G, 512M or 10Gi "
            "(ASCII digits, at most 15 before the point, and a unit k, M, G or T)"
        )
    if m.group("unit") is None:
        raise UserError(f"{_where_value(where, text)}: give a unit, e.g. {m.group('int')}G or {m.group('int')}M")
    unit, frac = _UNITS[m.group("unit")], m.group("frac") or ""
    size = int(m.group("int")) * unit + (int(frac or "0") * unit) // 10 ** len(frac)
    if size <= 0:
        raise UserError(f"{_where_value(where, text)}: must be larger than zero")
    if size > MAX_SIZE_BYTES:
        raise UserError(f"{_where_value(where, text)}: more than 64 TiB is surely a typo")
    return size


def check_size_bytes(value: Any, where: str) -> int:
    """A size already in bytes (from a goals file): 1 byte .. 64 TiB."""
    return check_int(value, where, 1, MAX_SIZE_BYTES)


def ccache_size(text: Any, where: str) -> str:
    """A size for ccache.conf, in ccache's binary-unit syntax (``2048Mi``, ``8Gi``)."""
    return ccache_size_string(parse_size(text, where))


_VERSION = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,9}))?(?:\.([0-9]{1,9}))?", re.ASCII)


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """First ``X[.Y[.Z]]`` in ``text`` as a 3-tuple, or None when there is none."""
    if not text:
        return None
    m = _VERSION.search(str(text))
    if not m:
        return None
    return tuple(int(g or 0) for g in m.groups())  # type: ignore[return-value]


def version_below(have: str | None, minimum: str | None) -> bool:
    """True only when both versions parse and ``have`` is older than ``minimum``."""
    h, m = parse_version(have), parse_version(minimum)
    return h is not None and m is not None and h < m


_INT_TEXT = re.compile(r"-?[0-9]{1,12}", re.ASCII)


def check_int(value: Any, where: str, low: int, high: int, why: str = "") -> int:
    """A whole number in ``low..high``; ASCII digit strings are accepted (Ansible's k=v vars are text)."""
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{_where_value(where, value)}: expected a whole number in {low}..{high}")
    if not low <= value <= high:
        raise UserError(f"{_where_value(where, value)}: must be within {low}..{high}" + (f" ({why})" if why else ""))
    return value


_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
_FALSE = frozenset({"n", "no", "off", "0", "false", "f", ""})


def check_flag(value: Any, where: str) -> bool:
    """A boolean as Ansible's ``bool`` filter reads it; anything else is an error, not false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UserError(f"{_where_value(where, value)}: expected true or false")


# --------------------------------------------------------------------------- paths

#: Characters of a path kprov writes into ccache.conf and shell-sourced files: nothing a shell
#: expands or splits ($ ` ' " spaces * ? [ ~ :), nothing ccache expands ($), no Jinja braces.
_PATH = re.compile(r"[A-Za-z0-9._+@/-]+", re.ASCII)
PATH_MAX = 4095
#: The role makes the ccache directory root:GROUP mode 2775: never one of these or a directory in them.
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
               "/sbin", "/sys", "/usr")


def check_path(text: Any, where: str) -> str:
    """An absolute path in a safe character set, without ``.``/``..``; returned normalised."""
    if not isinstance(text, str):
        raise UserError(f"{_where_value(where, text)}: expected an absolute path as text")
    if not text:
        raise UserError(f"{where} is empty: expected an absolute path")
    if len(text) > PATH_MAX:
        raise UserError(f"{where}: a path of {len(text)} characters is longer than PATH_MAX ({PATH_MAX})")
    if not text.startswith("/"):
        raise UserError(f"{_where_value(where, text)}: expected an absolute path (starting with /)")
    if not _PATH.fullmatch(text):
        raise UserError(
            f"{_where_value(where, text)}: a path may only contain ASCII letters, digits and . _ + @ - / "
            "(no spaces, quotes, $, braces or control characters)"
        )
    parts = [p for p in text.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise UserError(f"{_where_value(where, text)}: '.' and '..' are not allowed in the path")
    if any(len(p) > 255 for p in parts):
        raise UserError(f"{_where_value(where, text)}: a path component is longer than 255 characters")
    return "/" + "/".join(parts)


def check_owned_dir(text: Any, where: str) -> str:
    """A directory the role creates and hands to a group: a path at least two levels deep that is
    not a system directory or inside one."""
    path = check_path(text, where)
    if path.count("/") < 2:
        raise UserError(f"{_where_value(where, text)}: give a directory of its own, at least two levels deep (e.g. /var/cache/ccache)")
    if any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS):
        raise UserError(f"{_where_value(where, text)}: a system directory; give a directory of its own (e.g. /var/cache/ccache)")
    return path


# --------------------------------------------------------------------------- zram and sysctls

_ZRAM_ALGORITHM = re.compile(r"[a-z0-9][a-z0-9-]{0,31}", re.ASCII)


def check_zram_percent(value: Any, where: str) -> int:
    """The zram device size in percent of RAM: one range for the CLI, the planner and the role."""
    return check_int(value, where, cal.ZRAM_MIN_PERCENT, cal.ZRAM_MAX_PERCENT, "a device over 2 x RAM is pointless")


def check_zram_algorithm(value: Any, where: str) -> str:
    """A compressor name as the kernel spells them (lz4, lzo-rle, zstd, 842)."""
    if not isinstance(value, str) or not _ZRAM_ALGORITHM.fullmatch(value):
        raise UserError(f"{_where_value(where, value)} is not a zram compressor name (expected e.g. lz4, lzo-rle, zstd)")
    return value


def check_zram_priority(value: Any, where: str) -> int:
    """Swap priority: -1 (the kernel picks) up to 32767, swapon's range."""
    return check_int(value, where, -1, 32767)


#: The sysctls kprov plans for swap on zram (REFERENCE §3) and the values each may take: the
#: kernel's own bounds where it has them (swappiness 0..200 from Linux 5.8, watermark_scale_factor
#: 1..3000, page-cluster 0..31); watermark_boost_factor has none, so 0 (off) up to its default 15000.
SYSCTL_RANGES: dict[str, tuple[int, int]] = {
    "vm.swappiness": (0, 200),
    "vm.watermark_boost_factor": (0, 15000),
    "vm.watermark_scale_factor": (1, 3000),
    "vm.page-cluster": (0, 31),
}


def check_sysctls(values: Any, where: str) -> dict[str, str]:
    """Sysctl settings: keys from :data:`SYSCTL_RANGES` only, values whole numbers in range."""
    if not isinstance(values, Mapping):
        raise UserError(f"{_where_value(where, values)}: expected a mapping of sysctl names to numbers")
    out: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(key, str) or key not in SYSCTL_RANGES:
            raise UserError(
                f"{where}: sysctl {shown(key)} is not one kprov sets (only {', '.join(SYSCTL_RANGES)})"
            )
        low, high = SYSCTL_RANGES[key]
        out[key] = str(check_int(value, f"{where} {key}", low, high))
    return out


# --------------------------------------------------------------------------- /etc/hosts entries


def check_host_entry(address: Any, names: Any, where: str = "host entry") -> HostEntry:
    """One /etc/hosts line: a unicast address and one or more host names."""
    ip = parse_address(address, f"{where} address")
    bad = _not_a_host(ipaddress.ip_network(ip))
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
        if name.lower() in LOOPBACK_NAMES and not _inside_one(ipaddress.ip_network(ip), _LOOPBACK_SPANS):
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
        raise UserError(f"{_where_value(where, entries)}: expected a list of entries")
    out = []
    for e in entries:
        if isinstance(e, HostEntry):
            out.append(check_host_entry(e.address, e.names, where))
        elif isinstance(e, Mapping):
            out.append(check_host_entry(e.get("address"), e.get("names") or (), where))
        else:
            raise UserError(f"{_where_value(where, e)}: expected an address and its names")
    result = tuple(out)
    if isinstance(entries, tuple) and all(isinstance(e, HostEntry) for e in entries):
        if len(_checked_entries) > 8:
            _checked_entries.clear()
        _checked_entries[id(entries)] = (entries, result)
    return result


# --------------------------------------------------------------------------- the build environment

_MAKEFLAGS = re.compile(r"[A-Za-z0-9 .=+-]{1,200}", re.ASCII)
_TIMESTAMP = re.compile(r"[A-Za-z0-9 :+.,-]{1,64}", re.ASCII)
_COMMAND = re.compile(r"[A-Za-z0-9._+/-]{1,255}", re.ASCII)
_MAKE_ARGS = re.compile(r"[A-Za-z0-9._+/= '-]{0,4096}", re.ASCII)
_MAKE_VALUE = re.compile(r"[A-Za-z0-9._+/ -]{0,255}", re.ASCII)
#: The make variables kprov passes on the command line (planner._make_vars).
MAKE_VARS = ("O", "ARCH", "CROSS_COMPILE", "LLVM", "CC")


def _env_pattern(pattern: re.Pattern[str], what: str):
    def check(value: Any, where: str) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise UserError(f"{_where_value(where, value)}: expected {what}")
        return value

    return check


def _env_hosts(value: Any, where: str) -> str:
    if not isinstance(value, str) or "" in value.split(" "):
        raise UserError(f"{_where_value(where, value)}: expected distcc host specs separated by single spaces")
    check_distcc_hosts(value.split(" "), cal.DISTCC_MAX_LIMIT, where)
    return value


def _env_make_args(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _MAKE_ARGS.fullmatch(value):
        raise UserError(f"{_where_value(where, value)}: expected make variables such as LLVM=1 CC='ccache gcc'")
    try:
        words = shlex.split(value)
    except ValueError:
        raise UserError(f"{_where_value(where, value)}: unbalanced quotes") from None
    for word in words:
        name, eq, arg = word.partition("=")
        if not eq or name not in MAKE_VARS or not _MAKE_VALUE.fullmatch(arg):
            raise UserError(
                f"{where}: {shown(word)} is not one of the make variables kprov passes ({', '.join(MAKE_VARS)}) "
                "with a plain value"
            )
    return value


#: The variables kprov exports (planner._env, ``kprov env``, /etc/profile.d/kprov-kbuild.sh), each
#: with the check of its value. Anything else (LD_PRELOAD, PATH, ...) is refused.
BUILDENV_CHECKS = {
    "MAKEFLAGS": _env_pattern(_MAKEFLAGS, "make flags such as '-j8 -l8' (letters, digits, space . = + -)"),
    "KBUILD_BUILD_TIMESTAMP": _env_pattern(_TIMESTAMP, "a date such as '1970-01-01 00:00:00 UTC'"),
    "KBUILD_BUILD_USER": _env_pattern(_NAME_VALUE, "a name of A-Z a-z 0-9 . _ -"),
    "KBUILD_BUILD_HOST": _env_pattern(_NAME_VALUE, "a name of A-Z a-z 0-9 . _ -"),
    "KBUILD_BUILD_VERSION": _env_pattern(_NAME_VALUE, "a version of A-Z a-z 0-9 . _ -"),
    "KBUILD_OUTPUT": check_path,
    "CCACHE_DIR": check_path,
    "CCACHE_BASEDIR": check_path,
    "CCACHE_NOHASHDIR": _env_pattern(re.compile(r"true|1", re.ASCII), "true"),
    "CCACHE_PREFIX": _env_pattern(_COMMAND, "a command name or path such as distcc"),
    "CCACHE_CONFIGPATH": check_path,
    "KCFLAGS": _env_pattern(
        re.compile(r"-fdebug-prefix-map=/[A-Za-z0-9._+@/-]*=", re.ASCII), "-fdebug-prefix-map=/ABSOLUTE/PATH/="
    ),
    "DISTCC_HOSTS": _env_hosts,
    "KPROV_MAKE_ARGS": _env_make_args,
}


def check_buildenv(env: Any, where: str = "build environment") -> dict[str, str]:
    """The exported build environment: names from :data:`BUILDENV_CHECKS`, each value checked."""
    if not isinstance(env, Mapping):
        raise UserError(f"{_where_value(where, env)}: expected a mapping of variable names to values")
    out: dict[str, str] = {}
    for name, value in env.items():
        check = BUILDENV_CHECKS.get(name) if isinstance(name, str) else None
        if check is None:
            raise UserError(
                f"{where}: {shown(name)} is not a variable kprov exports (only {', '.join(BUILDENV_CHECKS)})"
            )
        # YAML reads `true` and `1` as a boolean and a number; the shell sees their text.
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        out[name] = check(value, f"{where} {name}")
    return out


# --------------------------------------------------------------------------- the role's variables

_SLOPPINESS = re.compile(r"[a-z_]{1,40}", re.ASCII)


def check_sloppiness(values: Any, where: str) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise UserError(f"{_where_value(where, values)}: expected a list such as [time_macros]")
    for v in values:
        if not isinstance(v, str) or not _SLOPPINESS.fullmatch(v):
            raise UserError(f"{where}: {shown(v)} is not a ccache sloppiness name (expected e.g. time_macros)")
    return tuple(values)


#: A distro package name (Debian, Fedora, Arch, openSUSE, Alpine), optionally pinned to a version
#: with '='; nothing that starts like an option (``-o ...``) or carries a separator.
_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]{0,127}(=[A-Za-z0-9.+~:_-]{1,128})?", re.ASCII)


def check_packages(names: Any, where: str) -> tuple[str, ...]:
    """A list of package names the package manager is handed as they are."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise UserError(f"{_where_value(where, names)}: expected a list of package names")
    out = tuple(names)
    for name in out:
        if not isinstance(name, str) or not _PACKAGE.fullmatch(name):
            raise UserError(f"{where}: {shown(name)} is not a package name (letters, digits and + . _ -, optionally =VERSION)")
    return out


# --------------------------------------------------------------------------- the shared compile cache

CACHE_BACKENDS = ("redis", "http")
#: kprov's own store instances (the distro's default ones keep 6379 and 80).
CACHE_DEFAULT_PORTS = {"redis": 6380, "http": 8380}
#: The URL path the http store is served at.
CACHE_HTTP_PATH = "/cache/"
#: ccache compiler_check values kprov plans.
COMPILER_CHECKS = ("mtime", "content", "%compiler% -v")
#: A store user (a host's credential): it lands in a URL's userinfo, an htpasswd line and a Redis
#: ACL rule, so nothing that ends one of them (``: @ | #`` space).
_STORE_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
#: A secret as kprov generates it (``secrets.token_urlsafe(32)``: 43 characters).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}", re.ASCII)
_URL_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:/]*)(?::(?P<port>[^/]*))?(?P<path>/.*)?", re.ASCII | re.DOTALL)
_URL_PATH = re.compile(r"(/[A-Za-z0-9._-]+)*/", re.ASCII)
_PORT_TEXT = re.compile(r"[1-9][0-9]{0,4}", re.ASCII)
#: How long ccache may wait on the store, per connect or operation.
MAX_CACHE_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class StoreUrl:
    scheme: str
    host: str  # an address in canonical form ([v6] in brackets) or a host name
    port: int
    path: str  # "" for redis, "/.../" for http

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


def store_url(scheme: str, address: str, port: int) -> str:
    """The URL clients use for a store listening on ``address``."""
    host = f"[{address}]" if ":" in address else address
    return str(StoreUrl(scheme, host, port, CACHE_HTTP_PATH if scheme == "http" else ""))


def check_store_url(url: Any, where: str) -> StoreUrl:
    """``redis://HOST[:PORT]`` or ``http://HOST[:PORT]/PATH/``: no user or password (the secret lives
    in its own file), nothing that ccache reads as an attribute (``|``) or a second line."""
    expected = "expected redis://HOST:PORT or http://HOST:PORT/cache/ without user or password"
    if not isinstance(url, str):
        raise UserError(f"{_where_value(where, url)}: {expected}")
    if "@" in url:
        # the part before '@' may be a password: never show it
        raise UserError(
            f"{where}: a store URL may not carry a user or password ('@'); give the user with "
            "--ccache-remote-user and the password in a file (--ccache-remote-secret)"
        )
    bad = next((c for c in url if c in "|#?@ \t\r\n\\" or not c.isascii() or not c.isprintable()), None)
    if bad is not None:
        what = {"|": "'|' (ccache reads what follows as attributes)", "@": "'@' (a user or password)"}.get(
            bad, "'#', '?', whitespace or control characters"
        )
        raise UserError(f"{_where_value(where, url)}: a store URL may not contain {what}; {expected}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in CACHE_BACKENDS:
        raise UserError(f"{_where_value(where, url)}: the scheme must be redis or http (no TLS in ccache 4.7); {expected}")
    m = _URL_HOST_PORT.fullmatch(rest)
    host = m.group("host") if m else ""
    if not host:
        raise UserError(f"{_where_value(where, url)}: no host; {expected}")
    if host.startswith("["):
        host = "[" + parse_ip(host[1:-1], where) + "]"
        if ":" not in host:
            raise UserError(f"{_where_value(where, url)}: brackets are for IPv6 addresses only")
    elif re.fullmatch(r"[0-9.]+", host):
        host = parse_ip(host, where)
    else:
        check_hostname(host, where)
    port_text = m.group("port")
    if port_text is None:
        port = CACHE_DEFAULT_PORTS[scheme]
    elif not _PORT_TEXT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise UserError(f"{_where_value(where, url)}: the port must be a number in 1..65535")
    else:
        port = int(port_text)
    path = m.group("path") or ""
    if scheme == "redis":
        if path not in ("", "/"):
            raise UserError(f"{_where_value(where, url)}: a Redis store URL has no path (ccache uses database 0)")
        path = ""
    else:
        if not path:
            path = CACHE_HTTP_PATH
        if not _URL_PATH.fullmatch(path) or any(p in (".", "..") for p in path.split("/")):
            raise UserError(
                f"{_where_value(where, url)}: an http store path is /NAME/.../ ending with '/' "
                "(letters, digits . _ -; no '.' or '..' parts)"
            )
    return StoreUrl(scheme, host, port, path)


def check_store_user(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _STORE_USER.fullmatch(name):
        raise UserError(
            f"{_where_value(where, name)} is not a store user name (expected e.g. builder1: ASCII letters, digits, "
            ". _ -, at most 64)"
        )
    return name


def check_store_client(spec: Any, where: str = "--ccache-client") -> tuple[str, bool]:
    """``NAME`` or ``NAME:write`` -> (name, writes)."""
    if not isinstance(spec, str):
        raise UserError(f"{_where_value(where, spec)}: expected NAME or NAME:write")
    name, sep, attr = spec.partition(":")
    if sep and attr != "write":
        raise UserError(f"{_where_value(where, spec)}: expected NAME or NAME:write (only ':write' may follow the name)")
    return check_store_user(name, where), bool(sep)


def check_secret_text(text: Any, where: str) -> str:
    """A store secret: one line (a final newline allowed) of 16-256 URL-safe characters. The
    message never shows the text: it is a password."""
    if isinstance(text, str) and text.endswith("\n"):
        text = text[:-1]
    if not isinstance(text, str) or not _TOKEN.fullmatch(text):
        raise UserError(f"{where}: the secret is not one line of 16-256 URL-safe characters (A-Z a-z 0-9 _ -)")
    return text


def check_cache_backend(value: Any, where: str) -> str:
    if value not in CACHE_BACKENDS:
        raise UserError(f"{_where_value(where, value)}: expected redis or http")
    return value


def check_compiler_check(value: Any, where: str) -> str:
    if value not in COMPILER_CHECKS:
        raise UserError(f"{_where_value(where, value)}: expected one of {', '.join(COMPILER_CHECKS)}")
    return value


def _mapping(value: Any, where: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UserError(f"{_where_value(where, value)}: expected a mapping")
    extra = sorted(str(k) for k in value if k not in known)
    if extra:
        raise UserError(f"{where}: unknown key {shown(extra[0])} (expected {', '.join(known)})")
    return value


_STORE_KEYS = ("backend", "listen", "port", "allow", "max_size_bytes", "max_object_bytes", "dir", "users")
_REMOTE_KEYS = ("url", "user", "secret_file", "write", "only", "connect_timeout_ms", "operation_timeout_ms")


def check_store_var(
    store: Any, where: str = "kbuild_host_ccache_store", host_addresses: Iterable[Any] | None = None
) -> dict[str, Any]:
    """The role's store variable, checked; returned canonical ({} = no store). With the host's
    addresses known, the store must listen on one of them (or loopback)."""
    if store is None or (isinstance(store, Mapping) and not store):
        return {}
    s = _mapping(store, where, _STORE_KEYS)
    backend = check_cache_backend(s.get("backend"), f"{where}.backend")
    allow = parse_allow(s.get("allow") or (), False, f"{where}.allow", "--allow-public")
    if not allow:
        raise UserError(f"{where}.allow is empty: name the networks that may connect (e.g. [10.0.0.0/24])")
    listen = check_listen(s.get("listen"), allow, host_addresses, f"{where}.listen")
    port = check_int(s.get("port"), f"{where}.port", 1, 65535)
    size = check_size_bytes(s.get("max_size_bytes"), f"{where}.max_size_bytes")
    if size < 1:
        raise UserError(f"{where}.max_size_bytes is 0: a store needs a size (0 would mean no limit)")
    largest = check_int(s.get("max_object_bytes"), f"{where}.max_object_bytes", 1, size, "never 0, at most the store's size")
    directory = check_owned_dir(s.get("dir"), f"{where}.dir")
    raw = s.get("users")
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Iterable):
        raise UserError(f"{_where_value(where + '.users', raw)}: expected a list of {{name, write, secret_file}}")
    users: list[dict[str, Any]] = []
    for i, u in enumerate(raw):
        at = f"{where}.users[{i}]"
        u = _mapping(u, at, ("name", "write", "secret_file"))
        name = check_store_user(u.get("name"), f"{at}.name")
        if any(x["name"] == name for x in users):
            raise UserError(f"{where}.users: {shown(name)} is listed twice (one credential per host)")
        users.append({
            "name": name,
            "write": check_flag(u.get("write"), f"{at}.write"),
            "secret_file": check_path(u.get("secret_file"), f"{at}.secret_file"),
        })
    if not users:
        raise UserError(f"{where}.users is empty: a store needs at least its own host's user")
    return {"backend": backend, "listen": listen, "port": port, "allow": list(allow), "max_size_bytes": size,
            "max_object_bytes": largest, "dir": directory, "users": users}


def check_remote_var(remote: Any, where: str = "kbuild_host_ccache_remote") -> dict[str, Any]:
    """The role's remote-store variable, checked; returned canonical ({} = none)."""
    if remote is None or (isinstance(remote, Mapping) and not remote):
        return {}
    r = _mapping(remote, where, _REMOTE_KEYS)
    return {
        "url": str(check_store_url(r.get("url"), f"{where}.url")),
        "user": check_store_user(r.get("user"), f"{where}.user"),
        "secret_file": check_path(r.get("secret_file"), f"{where}.secret_file"),
        "write": check_flag(r.get("write", False), f"{where}.write"),
        "only": check_flag(r.get("only", False), f"{where}.only"),
        "connect_timeout_ms": check_int(r.get("connect_timeout_ms"), f"{where}.connect_timeout_ms", 1, MAX_CACHE_TIMEOUT_MS),
        "operation_timeout_ms": check_int(
            r.get("operation_timeout_ms"), f"{where}.operation_timeout_ms", 1, MAX_CACHE_TIMEOUT_MS
        ),
    }


def check_extra_files(paths: Any, where: str = "kbuild_host_ccache_extra_files") -> tuple[str, ...]:
    if isinstance(paths, (str, bytes, Mapping)) or not isinstance(paths, Iterable):
        raise UserError(f"{_where_value(where, paths)}: expected a list of absolute paths")
    return tuple(check_path(p, where) for p in paths)


def check_role_vars(role_vars: Mapping[str, Any], host_addresses: Iterable[Any] | None = None) -> None:
    """The kbuild_host role's variables, every area that is enabled; UserError names the variable.

    ``host_addresses`` are the host's own addresses (Ansible's all_ipv4_addresses and
    all_ipv6_addresses); when given, distccd's listen address must be one of them or loopback.
    """
    v = role_vars

    def on(name: str) -> bool:
        return check_flag(v.get(name, False), name)

    if on("kbuild_host_packages_enabled"):
        check_packages(v.get("kbuild_host_packages") or (), "kbuild_host_packages")

    if on("kbuild_host_zram_enabled"):
        check_zram_algorithm(v.get("kbuild_host_zram_algorithm"), "kbuild_host_zram_algorithm")
        check_zram_percent(v.get("kbuild_host_zram_percent"), "kbuild_host_zram_percent")
        check_zram_priority(v.get("kbuild_host_zram_priority"), "kbuild_host_zram_priority")
        check_sysctls(v.get("kbuild_host_zram_sysctls"), "kbuild_host_zram_sysctls")
    if on("kbuild_host_ccache_enabled"):
        private = check_flag(v.get("kbuild_host_ccache_private", False), "kbuild_host_ccache_private")
        members = v.get("kbuild_host_ccache_group_members") or ()
        if isinstance(members, (str, bytes)) or not isinstance(members, Iterable):
            raise UserError(f"{_where_value('kbuild_host_ccache_group_members', members)}: expected a list of user names")
        for user in members:
            check_user_name(user, "kbuild_host_ccache_group_members")
        if private and members:
            raise UserError("kbuild_host_ccache_group_members with kbuild_host_ccache_private: a private cache has no group")
        if not private:
            check_owned_dir(v.get("kbuild_host_ccache_dir"), "kbuild_host_ccache_dir")
        if v.get("kbuild_host_ccache_base_dir") not in (None, ""):
            check_path(v.get("kbuild_host_ccache_base_dir"), "kbuild_host_ccache_base_dir")
        parse_size(v.get("kbuild_host_ccache_max_size"), "kbuild_host_ccache_max_size")
        check_account_name(v.get("kbuild_host_ccache_group", "kbuild"), "kbuild_host_ccache_group")
        check_sloppiness(v.get("kbuild_host_ccache_sloppiness") or (), "kbuild_host_ccache_sloppiness")
        check_store_var(v.get("kbuild_host_ccache_store"), "kbuild_host_ccache_store", host_addresses)
        check_remote_var(v.get("kbuild_host_ccache_remote"))
        check_compiler_check(v.get("kbuild_host_ccache_compiler_check", "mtime"), "kbuild_host_ccache_compiler_check")
        check_extra_files(v.get("kbuild_host_ccache_extra_files") or ())
    if on("kbuild_host_distcc_enabled"):
        if on("kbuild_host_distcc_server"):
            public = check_flag(v.get("kbuild_host_distcc_allow_public"), "kbuild_host_distcc_allow_public")
            allow = parse_allow(
                v.get("kbuild_host_distcc_allow") or (), public, "kbuild_host_distcc_allow", "kbuild_host_distcc_allow_public"
            )
            check_listen(v.get("kbuild_host_distcc_listen"), allow, host_addresses, "kbuild_host_distcc_listen")
            check_int(v.get("kbuild_host_distcc_jobs"), "kbuild_host_distcc_jobs", 1, cal.DISTCC_MAX_LIMIT)
            check_int(v.get("kbuild_host_distcc_nice", 10), "kbuild_host_distcc_nice", 0, 20)
        if on("kbuild_host_distcc_client"):
            hosts = v.get("kbuild_host_distcc_hosts") or ()
            if not hosts:
                raise UserError("kbuild_host_distcc_hosts is empty: a distcc client needs host specs like build2/8")
            check_distcc_hosts(hosts, cal.DISTCC_MAX_LIMIT, "kbuild_host_distcc_hosts")
    if on("kbuild_host_hosts_enabled"):
        check_host_entries(v.get("kbuild_host_hosts_entries") or (), "kbuild_host_hosts_entries")
    if on("kbuild_host_buildenv_enabled"):
        check_buildenv(v.get("kbuild_host_buildenv") or {}, "kbuild_host_buildenv")


#: The role's areas, in the order its tasks/main.yml runs them; each is tagged kbuild_host_<area>.
AREAS = ("packages", "zram", "ccache", "distcc", "hosts", "buildenv")


def check_area_tags(values: Sequence[str], switch: str) -> tuple[str, ...]:
    """``--tags``/``--skip-tags`` values (repeated, or comma-separated as Ansible takes them) as
    area names; anything else is one line and exit 2: a tag that matched nothing would make a run
    that silently does nothing."""
    areas: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            area = name[len("kbuild_host_"):] if name.startswith("kbuild_host_") else name
            if area not in AREAS:
                raise UserError(f"{switch} {name or repr(part)}: not an area of kprov apply (choose from {', '.join(AREAS)})")
            areas.append(area)
    return tuple(dict.fromkeys(areas))
