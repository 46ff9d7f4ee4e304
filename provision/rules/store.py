"""The shared compile cache store's rules: backends and ports, store URLs (``redis://`` and
``http://`` with a host that is one host's unicast address or a host name), store user names and secrets, and
the role variables of a store and of its clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provision.errors import UserError, shown
from provision.rules.addresses import (
    check_host_address,
    check_hostname,
    check_listen,
    parse_allow,
    where_value,
)
from provision.rules.names import (
    check_flag,
    check_int,
    check_owned_dir,
    check_arg_path,
    check_path,
    check_size_bytes,
)

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
        raise UserError(f"{where_value(where, url)}: {expected}")
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
        raise UserError(f"{where_value(where, url)}: a store URL may not contain {what}; {expected}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in CACHE_BACKENDS:
        raise UserError(f"{where_value(where, url)}: the scheme must be redis or http (no TLS in ccache 4.7); {expected}")
    m = _URL_HOST_PORT.fullmatch(rest)
    host = m.group("host") if m else ""
    if not host:
        raise UserError(f"{where_value(where, url)}: no host; {expected}")
    # an address must be one host's, as --listen and --host-entry require (not 0.0.0.0, ::,
    # multicast or broadcast); a name is resolved by ccache on the host
    if host.startswith("["):
        host = "[" + str(check_host_address(host[1:-1], f"{where} host")) + "]"
        if ":" not in host:
            raise UserError(f"{where_value(where, url)}: brackets are for IPv6 addresses only")
    elif re.fullmatch(r"[0-9.]+", host):
        host = str(check_host_address(host, f"{where} host"))
    else:
        check_hostname(host, where)
    port_text = m.group("port")
    if port_text is None:
        port = CACHE_DEFAULT_PORTS[scheme]
    elif not _PORT_TEXT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise UserError(f"{where_value(where, url)}: the port must be a number in 1..65535")
    else:
        port = int(port_text)
    path = m.group("path") or ""
    if scheme == "redis":
        if path not in ("", "/"):
            raise UserError(f"{where_value(where, url)}: a Redis store URL has no path (ccache uses database 0)")
        path = ""
    else:
        if not path:
            path = CACHE_HTTP_PATH
        if not _URL_PATH.fullmatch(path) or any(p in (".", "..") for p in path.split("/")):
            raise UserError(
                f"{where_value(where, url)}: an http store path is /NAME/.../ ending with '/' "
                "(letters, digits . _ -; no '.' or '..' parts)"
            )
    return StoreUrl(scheme, host, port, path)


def check_store_user(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _STORE_USER.fullmatch(name):
        raise UserError(
            f"{where_value(where, name)} is not a store user name (expected e.g. builder1: ASCII letters, digits, "
            ". _ -, at most 64)"
        )
    return name


def check_store_client(spec: Any, where: str = "--ccache-client") -> tuple[str, bool]:
    """``NAME`` or ``NAME:write`` -> (name, writes)."""
    if not isinstance(spec, str):
        raise UserError(f"{where_value(where, spec)}: expected NAME or NAME:write")
    name, sep, attr = spec.partition(":")
    if sep and attr != "write":
        raise UserError(f"{where_value(where, spec)}: expected NAME or NAME:write (only ':write' may follow the name)")
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
        raise UserError(f"{where_value(where, value)}: expected redis or http")
    return value


def check_compiler_check(value: Any, where: str) -> str:
    if value not in COMPILER_CHECKS:
        raise UserError(f"{where_value(where, value)}: expected one of {', '.join(COMPILER_CHECKS)}")
    return value


def _mapping(value: Any, where: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UserError(f"{where_value(where, value)}: expected a mapping")
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
        raise UserError(f"{where_value(where + '.users', raw)}: expected a list of {{name, write, secret_file}}")
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
            "secret_file": check_arg_path(u.get("secret_file"), f"{at}.secret_file"),
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
        "secret_file": check_arg_path(r.get("secret_file"), f"{where}.secret_file"),
        "write": check_flag(r.get("write", False), f"{where}.write"),
        "only": check_flag(r.get("only", False), f"{where}.only"),
        "connect_timeout_ms": check_int(r.get("connect_timeout_ms"), f"{where}.connect_timeout_ms", 1, MAX_CACHE_TIMEOUT_MS),
        "operation_timeout_ms": check_int(
            r.get("operation_timeout_ms"), f"{where}.operation_timeout_ms", 1, MAX_CACHE_TIMEOUT_MS
        ),
    }


def check_extra_files(paths: Any, where: str = "kbuild_host_ccache_extra_files") -> tuple[str, ...]:
    if isinstance(paths, (str, bytes, Mapping)) or not isinstance(paths, Iterable):
        raise UserError(f"{where_value(where, paths)}: expected a list of absolute paths")
    return tuple(check_path(p, where) for p in paths)
