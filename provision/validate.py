"""Parsers for what users type: sizes, CIDRs, addresses, host names, distcc host specs, versions.

Pure functions (no I/O). Each raises :class:`UserError` with one line that names the bad value and
says what was expected, so the CLI can print it as is.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from provision.errors import UserError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKMGT]i?)?[bB]?\s*$")
#: Binary units whether or not the "i" is written: ``8G`` is 8 GiB. The plan hands ccache the
#: size as ``8Gi`` (model.ccache_size_string), so ccache gets exactly what the user typed.
_UNITS = {
    "k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
    "ki": 1 << 10, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
}

#: RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def parse_size(text: str, where: str = "size") -> int:
    """``8G``, ``512M``, ``1.5Gi``, ``10GiB`` -> bytes, in binary units (G and Gi are both 2^30).

    A bare number is refused: ``10`` could mean bytes or gigabytes, and guessing wrong either
    fills a disk or makes the cache useless.
    """
    m = _SIZE.match(str(text))
    if not m:
        raise UserError(f"{where} '{text}': expected a size such as 8G, 512M or 10Gi")
    number, unit = m.groups()
    if unit is None:
        raise UserError(f"{where} '{text}': give a unit, e.g. {text}G or {text}M")
    size = int(float(number) * _UNITS[unit])
    if size <= 0:
        raise UserError(f"{where} '{text}': must be larger than zero")
    return size


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


def is_hostname(name: str) -> bool:
    return bool(HOSTNAME_RE.match(name)) and not re.fullmatch(r"[\d.]+", name)


def parse_ip(text: str, where: str) -> str:
    """A single IPv4/IPv6 address, normalised; UserError otherwise."""
    try:
        return str(ipaddress.ip_address(str(text).strip()))
    except ValueError:
        raise UserError(f"{where} '{text}' is not an IP address") from None


def _is_private(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return net.is_private or net.is_loopback or net.is_link_local


def parse_allow(cidrs: tuple[str, ...] | list[str], allow_public: bool) -> tuple[str, ...]:
    """Validate distccd's allow list: each entry a CIDR or address, never the whole Internet.

    ``0.0.0.0/0`` and ``::/0`` are refused even with ``allow_public``: "anyone who can connect to
    distccd can run arbitrary commands" (distcc security notes, CVE-2004-2687). Other public
    ranges need ``allow_public``.
    """
    out: list[str] = []
    for raw in cidrs:
        text = str(raw).strip()
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise UserError(f"--allow '{raw}' is not a valid CIDR (expected e.g. 192.168.1.0/24)") from None
        if net.prefixlen == 0:
            raise UserError(
                f"--allow '{raw}' would let the whole Internet run commands through distccd; name your network"
            )
        if not _is_private(net) and not allow_public:
            raise UserError(
                f"--allow '{raw}' is a public range: anyone in it could run commands through distccd "
                "(add --allow-public if you mean it)"
            )
        if str(net) not in out:
            out.append(str(net))
    return tuple(out)


def address_in(address: str, networks: tuple[str, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


@dataclass(frozen=True)
class DistccHost:
    """One ``DISTCC_HOSTS`` entry: ``HOST[:PORT][/LIMIT][,lzo][,cpp]``."""

    host: str
    port: int | None = None
    limit: int | None = None
    options: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.host == "localhost"

    def spec(self, default_limit: int) -> str:
        text = self.host
        if self.port is not None:
            text += f":{self.port}"
        text += f"/{self.limit if self.limit is not None else default_limit}"
        for opt in self.options:
            text += f",{opt}"
        return text


_DISTCC_HOST = re.compile(r"^(?P<host>[^:/,\s]+)(?::(?P<port>[^/,]*))?(?:/(?P<limit>[^,]*))?(?P<opts>(?:,[^,]*)*)$")


def parse_distcc_host(spec: str, max_limit: int) -> DistccHost:
    """Parse one distcc host spec; refuse anything distcc would misread or kprov cannot vouch for."""
    text = str(spec).strip()
    m = _DISTCC_HOST.match(text)
    if not m:
        raise UserError(f"--distcc-hosts '{spec}': expected HOST[:PORT][/LIMIT][,lzo]")
    host = m.group("host")
    if host.startswith("@") or host.startswith("+") or host.startswith("-"):
        raise UserError(f"--distcc-hosts '{spec}': ssh (@host), zeroconf and options are not supported, give HOST[:PORT]")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not is_hostname(host):
                raise UserError(f"--distcc-hosts '{spec}': '{host}' is not a valid host name or IPv4 address") from None
    port = None
    if m.group("port") is not None:
        p = m.group("port")
        if not p.isdigit() or not 1 <= int(p) <= 65535:
            raise UserError(f"--distcc-hosts '{spec}': port '{p}' is not in 1..65535")
        port = int(p)
    limit = None
    if m.group("limit") is not None:
        lim = m.group("limit")
        if not lim.isdigit() or not 1 <= int(lim) <= max_limit:
            raise UserError(f"--distcc-hosts '{spec}': limit '{lim}' must be a whole number in 1..{max_limit}")
        limit = int(lim)
    options = tuple(o for o in m.group("opts").split(",") if o)
    for opt in options:
        if opt not in ("lzo", "cpp"):
            raise UserError(f"--distcc-hosts '{spec}': unknown option ',{opt}' (kprov accepts ,lzo and ,cpp)")
    if m.group("opts") and "" in m.group("opts").split(",")[1:]:
        raise UserError(f"--distcc-hosts '{spec}': empty option after ','")
    return DistccHost(host=host, port=port, limit=limit, options=options)
