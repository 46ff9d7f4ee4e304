"""What ``kprov cache status`` measures of the shared compile cache on a host.

It reads the local cache's statistics (``ccache --print-stats``), the client's
store line from the file ``CCACHE_CONFIGPATH`` names (when this user may read it), and asks the
store directly: Redis with AUTH then a GET of a key that does not exist, over a raw socket; http
with a GET of an object that does not exist, with basic auth. A refused connection, a timeout and
a refused credential are different answers.

A probe has one deadline for all of it (the name lookup, the connection, every request and every
reply): a store that answers a byte at a time, or a name server that never answers, cannot keep
``kprov cache status`` waiting longer than :data:`PROBE_DEADLINE_S`.
"""

from __future__ import annotations

import base64
import errno
import os
import re
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from provision.errors import UserError, escaped, shown
from provision.rules.store import check_secret_text, check_store_url, check_store_user

#: kprov cache status gives a store this long in all (name lookup, connect, every request and reply).
PROBE_DEADLINE_S = 1.5


@dataclass(frozen=True)
class RemoteLine:
    url: str  # without userinfo
    user: str
    secret: str = field(repr=False)
    read_only: bool
    attributes: dict[str, str]
    only: bool


def parse_remote_conf(text: str, where: str) -> RemoteLine | None:
    """The ``remote_storage`` line of a client config file (as the role writes it)."""
    value = None
    only = False
    for line in text.splitlines():
        key, eq, rest = line.partition("=")
        if not eq:
            continue
        key, rest = key.strip(), rest.strip()
        if key == "remote_storage":
            value = rest
        elif key == "remote_only":
            only = rest == "true"
    if not value:
        return None
    url, *attrs = value.split("|")
    attributes = {}
    for a in attrs:
        k, _, v = a.partition("=")
        attributes[k] = v
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at:
        raise UserError(f"{where}: remote_storage has no USER:PASSWORD@ (ccache would not authenticate)")
    user, colon, secret = userinfo.partition(":")
    plain = f"{scheme}://{hostpart}"
    check_store_url(plain, where)
    return RemoteLine(
        url=plain,
        user=check_store_user(user, f"{where} user"),
        secret=check_secret_text(secret, where) if colon else "",
        read_only="read-only" in attributes,
        attributes=attributes,
        only=only,
    )


@dataclass(frozen=True)
class Probe:
    state: str  # answers, refused, timeout, auth-failed, forbidden, unreachable, error
    detail: str
    milliseconds: float | None = None


def _redis_cmd(*args: str) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        b = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(b), b)
    return out


class _Deadline:
    """The one deadline of a probe: each wait gets what is left of it, never a fresh timeout."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; TimeoutError once there are none."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the probe's deadline passed")
        return left


def _readline(sock: socket.socket, deadline: _Deadline) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        sock.settimeout(deadline.left())
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionResetError("the store closed the connection")
        data += chunk
        if len(data) > 4096:
            break
    return data.strip()


def _send(sock: socket.socket, data: bytes, deadline: _Deadline) -> None:
    sock.settimeout(deadline.left())  # sendall's timeout bounds the whole send
    sock.sendall(data)


def _host_port(url: str) -> tuple[str, int, str]:
    u = check_store_url(url, "store URL")
    return u.host.strip("[]"), u.port, u.path


def _addresses(host: str, port: int, deadline: _Deadline) -> list[tuple]:
    """getaddrinfo within the deadline: the lookup runs in a daemon thread that is left behind
    when the name server does not answer in time (getaddrinfo itself cannot be interrupted)."""
    found: dict[str, object] = {}

    def lookup() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    worker = threading.Thread(target=lookup, name="kprov-store-lookup", daemon=True)
    worker.start()
    worker.join(deadline.left())
    if worker.is_alive():
        raise TimeoutError("the store's name did not resolve in time")
    if "error" in found:
        raise found["error"]  # type: ignore[misc]
    return found["infos"]  # type: ignore[return-value]


def _connect(host: str, port: int, deadline: _Deadline) -> socket.socket:
    failure: OSError = OSError(f"{host} has no address")
    for family, kind, proto, _, address in _addresses(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(deadline.left())
            sock.connect(address)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        return sock
    raise failure


def _failure(exc: BaseException, started: float, budget: float) -> Probe:
    ms = (time.monotonic() - started) * 1000
    if isinstance(exc, ConnectionRefusedError):
        return Probe("refused", "connection refused: nothing listens there (or a firewall rejects)", ms)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Probe("timeout", f"no answer within {budget * 1000:.0f} ms: the store is hung or a firewall drops", ms)
    if isinstance(exc, socket.gaierror):
        return Probe("unreachable", f"the name does not resolve: {exc.strerror}", ms)
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return Probe("unreachable", f"no route: {exc.strerror}", ms)
    return Probe("error", " ".join(str(exc).split()), ms)


def probe_redis(url: str, user: str, secret: str, timeout: float = PROBE_DEADLINE_S) -> Probe:
    """AUTH, then GET of a key that does not exist: what ccache does on a miss. ``timeout`` is the
    whole probe's deadline."""
    host, port, _ = _host_port(url)
    started = time.monotonic()
    deadline = _Deadline(timeout)
    try:
        with _connect(host, port, deadline) as sock:
            _send(sock, _redis_cmd("AUTH", user, secret), deadline)
            reply = _readline(sock, deadline)
            if reply.startswith(b"-"):
                ms = (time.monotonic() - started) * 1000
                word = reply[1:].split(b" ", 1)[0].decode("ascii", "replace")
                return Probe("auth-failed", f"AUTH refused ({escaped(word[:40])}): wrong user or password, or the user is off", ms)
            _send(sock, _redis_cmd("GET", f"ccache:kprov-status-{secrets.token_hex(8)}"), deadline)
            reply = _readline(sock, deadline)
            ms = (time.monotonic() - started) * 1000
            if reply == b"$-1":
                return Probe("answers", "AUTH accepted, GET of a missing key answered", ms)
            if reply.startswith(b"-NOPERM"):
                return Probe("forbidden", "AUTH accepted but GET is not allowed for this user", ms)
            return Probe("error", f"unexpected reply {shown(reply.decode('ascii', 'replace')[:60])}", ms)
    except (OSError, ConnectionError) as exc:
        return _failure(exc, started, timeout)


def probe_http(url: str, user: str, secret: str, timeout: float = PROBE_DEADLINE_S) -> Probe:
    """GET of an object that does not exist, with basic auth: 404 means the store answers.
    ``timeout`` is the whole probe's deadline."""
    host, port, path = _host_port(url)
    started = time.monotonic()
    deadline = _Deadline(timeout)
    auth = base64.b64encode(f"{user}:{secret}".encode("ascii")).decode("ascii")
    target = f"{path}kprov-status-{secrets.token_hex(8)}"
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Basic {auth}\r\n"
        "Connection: close\r\nUser-Agent: kprov\r\n\r\n"
    ).encode("ascii")
    try:
        with _connect(host, port, deadline) as sock:
            _send(sock, request, deadline)
            status = _readline(sock, deadline).decode("ascii", "replace")
    except (OSError, ConnectionError) as exc:
        return _failure(exc, started, timeout)
    ms = (time.monotonic() - started) * 1000
    parts = status.split(" ", 2)
    code = parts[1] if len(parts) > 1 else ""
    if code == "404":
        return Probe("answers", "GET of a missing object answered 404", ms)
    if code == "401":
        return Probe("auth-failed", "401: the user or password is refused", ms)
    if code == "403":
        return Probe("forbidden", "403: this address is not allowed (nginx allow/deny)", ms)
    if code == "200":
        return Probe("answers", "GET answered 200", ms)
    return Probe("error", f"unexpected answer {shown(status[:60])}", ms)


def probe(remote: RemoteLine, timeout: float = PROBE_DEADLINE_S) -> Probe:
    fn = probe_redis if remote.url.startswith("redis://") else probe_http
    return fn(remote.url, remote.user, remote.secret, timeout)


def run_ccache(args: list[str], env: Mapping[str, str] | None = None) -> str | None:
    """``ccache ARGS``' output, or None. Without ``env``: this process's environment without
    ``CCACHE_CONFIGPATH`` (kprov cache status never reads the password file)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "CCACHE_CONFIGPATH"}
    try:
        done = subprocess.run(["ccache", *args], capture_output=True, text=True, timeout=20, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def ccache_stats(env: Mapping[str, str] | None = None) -> dict[str, int]:
    """ccache's counters (``--print-stats``), as :func:`run_ccache` runs it."""
    text = run_ccache(["--print-stats"], env) or ""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


_PRINTED_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kMGT]?)(i?)B?", re.ASCII)


def ccache_printed_size(text: str) -> int | None:
    """A size as ccache prints it (``536.9M``: k/M/G/T are decimal, Ki/Mi/Gi/Ti binary), in
    bytes; None when it is not one."""
    m = _PRINTED_SIZE.fullmatch(text.strip())
    if not m:
        return None
    power = " kMGT".index(m.group(2) or " ")
    return int(float(m.group(1)) * (1024 if m.group(3) else 1000) ** power)
