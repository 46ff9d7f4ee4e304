"""distcc host specifications (``HOST[:PORT][/LIMIT][,lzo]``): parsed, bounded and written in
canonical form; pump mode (``,cpp``) is refused.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from provision.errors import UserError, shown
from provision.rules.addresses import is_hostname, parse_address, where_value


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
    shown_spec = where_value(where, spec)
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
        raise UserError(f"{where_value(where, specs)}: expected a list of host specs")
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
            raise UserError(f"{where_value(where, spec)}: {h.host} is listed twice")
        seen.add((h.host, h.port))
        hosts.append(h)
    return tuple(hosts)
