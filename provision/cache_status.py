"""The shared compile cache on a host: its secret files, and ``kprov cache status``.

Secrets are random tokens (``secrets.token_urlsafe(32)``), one file each, mode 0600 in a 0700
directory. They are made when missing and never overwritten; nothing here prints, logs or returns
a secret to a caller that could print it: plans carry the path only.

``kprov cache status`` reads the local cache's statistics (``ccache --print-stats``), the client's
store line from the file ``CCACHE_CONFIGPATH`` names (when this user may read it), and asks the
store directly: Redis with AUTH then a GET of a key that does not exist, over a raw socket; http
with a GET of an object that does not exist, with basic auth. A refused connection, a timeout and
a refused credential are different answers.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import secrets
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from provision import cache as cache_rules
from provision.errors import EnvironmentProblem, UserError, shown
from provision.model import human_bytes
from provision.validate import (
    check_path,
    check_secret_text,
    check_store_url,
    check_store_user,
)

#: A secret file is one short line; anything longer is not one of kprov's.
MAX_SECRET_FILE_BYTES = 4096
#: kprov cache status waits this long for a store (connect, then each reply).
PROBE_TIMEOUT_S = 1.0


# --------------------------------------------------------------------------- secret files


def read_secret_file(path: str, where: str) -> str:
    """The secret in ``path`` after the checks a password file needs: a regular file (not a
    symlink, FIFO or device), not readable by group or others, one line of the token charset.
    Opened without following a symlink and without blocking on a FIFO."""
    check_path(path, where)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UserError(f"{where} {path}: no such file") from None
    except OSError as exc:
        raise UserError(f"{where} {path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise UserError(f"{where} {path}: is a symbolic link (expected the secret file itself)")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{where} {path}: not a regular file (a FIFO, device or directory)")
    if st.st_mode & 0o077:
        raise UserError(
            f"{where} {path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read it (expected 0600: chmod 600 {path})"
        )
    if st.st_size > MAX_SECRET_FILE_BYTES:
        raise UserError(f"{where} {path}: {st.st_size} bytes is not one secret line")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(f"{where} {path}: cannot read it ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"{where} {path}: not a regular file")
        data = os.read(fd, MAX_SECRET_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = None
    return check_secret_text(text, f"{where} {path}")


def check_secret_file(path: str, where: str) -> str:
    """``path`` checked as :func:`read_secret_file` does; the path is returned, never the secret."""
    read_secret_file(path, where)
    return check_path(path, where)


def ensure_secret_file(path: str, where: str = "secret file") -> bool:
    """Make ``path`` (0600) with a new secret, its directory 0700, unless it exists; True when made.
    An existing file is checked, never overwritten."""
    path = check_path(path, where)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {directory}: {exc.strerror}") from None
    dst = os.lstat(directory)
    if stat.S_ISLNK(dst.st_mode) or not stat.S_ISDIR(dst.st_mode):
        raise UserError(f"{directory}: not a directory (a symbolic link or a file); secrets need a directory of their own")
    if stat.S_IMODE(dst.st_mode) & 0o077:
        os.chmod(directory, 0o700)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        check_secret_file(path, where)
        return False
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def fleet_secrets_dir(inventory: str) -> str:
    """``<inventory dir>/kprov-secrets/ccache``: the controller keeps a fleet's secrets next to it."""
    base = inventory if os.path.isdir(inventory) else os.path.dirname(os.path.abspath(inventory))
    return check_path(os.path.join(os.path.abspath(base), "kprov-secrets", "ccache"), "the fleet's secrets directory")


# --------------------------------------------------------------------------- the client's config


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


# --------------------------------------------------------------------------- probes


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


def _readline(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionResetError("the store closed the connection")
        data += chunk
        if len(data) > 4096:
            break
    return data.strip()


def _host_port(url: str) -> tuple[str, int, str]:
    u = check_store_url(url, "store URL")
    return u.host.strip("[]"), u.port, u.path


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def _failure(exc: BaseException, started: float) -> Probe:
    ms = (time.monotonic() - started) * 1000
    if isinstance(exc, ConnectionRefusedError):
        return Probe("refused", "connection refused: nothing listens there (or a firewall rejects)", ms)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Probe("timeout", f"no answer within {PROBE_TIMEOUT_S * 1000:.0f} ms: the store is hung or a firewall drops", ms)
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return Probe("unreachable", f"no route: {exc.strerror}", ms)
    if isinstance(exc, socket.gaierror):
        return Probe("unreachable", f"the name does not resolve: {exc.strerror}", ms)
    return Probe("error", " ".join(str(exc).split()), ms)


def probe_redis(url: str, user: str, secret: str, timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """AUTH, then GET of a key that does not exist: what ccache does on a miss."""
    host, port, _ = _host_port(url)
    started = time.monotonic()
    try:
        with _connect(host, port, timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_redis_cmd("AUTH", user, secret))
            reply = _readline(sock)
            if reply.startswith(b"-"):
                ms = (time.monotonic() - started) * 1000
                word = reply[1:].split(b" ", 1)[0].decode("ascii", "replace")
                return Probe("auth-failed", f"AUTH refused ({word}): wrong user or password, or the user is off", ms)
            sock.sendall(_redis_cmd("GET", f"ccache:kprov-status-{secrets.token_hex(8)}"))
            reply = _readline(sock)
            ms = (time.monotonic() - started) * 1000
            if reply == b"$-1":
                return Probe("answers", "AUTH accepted, GET of a missing key answered", ms)
            if reply.startswith(b"-NOPERM"):
                return Probe("forbidden", "AUTH accepted but GET is not allowed for this user", ms)
            return Probe("error", f"unexpected reply {shown(reply.decode('ascii', 'replace')[:60])}", ms)
    except (OSError, ConnectionError) as exc:
        return _failure(exc, started)


def probe_http(url: str, user: str, secret: str, timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """GET of an object that does not exist, with basic auth: 404 means the store answers."""
    host, port, path = _host_port(url)
    started = time.monotonic()
    auth = base64.b64encode(f"{user}:{secret}".encode("ascii")).decode("ascii")
    target = f"{path}kprov-status-{secrets.token_hex(8)}"
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Basic {auth}\r\n"
        "Connection: close\r\nUser-Agent: kprov\r\n\r\n"
    ).encode("ascii")
    try:
        with _connect(host, port, timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(request)
            status = _readline(sock).decode("ascii", "replace")
    except (OSError, ConnectionError) as exc:
        return _failure(exc, started)
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


def probe(remote: RemoteLine, timeout: float = PROBE_TIMEOUT_S) -> Probe:
    fn = probe_redis if remote.url.startswith("redis://") else probe_http
    return fn(remote.url, remote.user, remote.secret, timeout)


# --------------------------------------------------------------------------- status


def _ccache(args: list[str]) -> str | None:
    env = {k: v for k, v in os.environ.items() if k != "CCACHE_CONFIGPATH"}  # never read the password file
    try:
        done = subprocess.run(["ccache", *args], capture_output=True, text=True, timeout=20, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _stats() -> dict[str, int]:
    text = _ccache(["--print-stats"]) or ""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _plan_sharing(path: str = "/etc/kprov/plan.json") -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return [str(x) for x in data.get("ccache", {}).get("sharing", [])]
    except (OSError, ValueError, AttributeError):
        return []


_PRINTED_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kMGT]?)(i?)B?", re.ASCII)


def _ccache_printed_size(text: str) -> int | None:
    """A size as ccache prints it (``536.9M``: k/M/G/T are decimal, Ki/Mi/Gi/Ti binary), in
    bytes; None when it is not one."""
    m = _PRINTED_SIZE.fullmatch(text.strip())
    if not m:
        return None
    power = " kMGT".index(m.group(2) or " ")
    return int(float(m.group(1)) * (1024 if m.group(3) else 1000) ** power)


def status(config_path: str | None = None, timeout: float = PROBE_TIMEOUT_S, plan_path: str = "/etc/kprov/plan.json") -> dict[str, Any]:
    """What ``kprov cache status`` shows, as data (no secret in it)."""
    out: dict[str, Any] = {}
    values = (_ccache(["-k", "cache_dir", "-k", "max_size"]) or "").splitlines()
    stats = _stats()
    size = stats.get("cache_size_kibibyte", 0) * 1024
    out["local"] = {
        "dir": values[0] if values else None,
        "max_size": values[1] if len(values) > 1 else None,
        "size_bytes": size,
        "files": stats.get("files_in_cache", 0),
        "hits": stats.get("local_storage_hit", 0),
        "misses": stats.get("local_storage_miss", 0),
        "available": bool(values),
        "fullness": None,
    }
    limit = _ccache_printed_size(values[1]) if len(values) > 1 else None
    if limit:
        out["local"]["fullness"] = round(size / limit, 4)
        out["local"]["max_size_bytes"] = limit
    remote_stats = {k: stats.get(f"remote_storage_{k}", 0) for k in ("hit", "miss", "error", "timeout", "write")}
    path = config_path or os.environ.get("CCACHE_CONFIGPATH") or cache_rules.REMOTE_CONF
    store: dict[str, Any] = {"config": path, "configured": False}
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read(65536)
    except FileNotFoundError:
        store["note"] = f"{path} does not exist: this host uses no remote store"
    except PermissionError:
        store["note"] = (
            f"cannot read {path} (it holds the store's password: root and the build group only); "
            "run as root or as a member of the ccache group"
        )
    except (OSError, UnicodeDecodeError) as exc:
        store["note"] = f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
    else:
        try:
            line = parse_remote_conf(text, path)
        except UserError as exc:
            line = None
            store["note"] = str(exc)
        if line is not None:
            p = probe(line, timeout)
            store.update(
                configured=True,
                url=line.url,
                user=line.user,
                access="read" if line.read_only else "read and write",
                remote_only=line.only,
                connect_timeout_ms=line.attributes.get("connect-timeout"),
                operation_timeout_ms=line.attributes.get("operation-timeout"),
                probe={"state": p.state, "detail": p.detail,
                       "milliseconds": None if p.milliseconds is None else round(p.milliseconds, 1)},
            )
        elif "note" not in store:
            store["note"] = f"{path} has no remote_storage line"
    store["stats"] = remote_stats
    out["store"] = store
    out["sharing"] = _plan_sharing(plan_path)
    return out


def render_status(data: dict[str, Any]) -> str:
    local, store = data["local"], data["store"]
    lines = []
    if local["available"]:
        full = f" ({local['fullness']:.0%} full)" if local.get("fullness") is not None else ""
        lines.append(
            f"local cache: {local['dir']} {human_bytes(local['size_bytes'])} of "
            f"{human_bytes(local['max_size_bytes']) if local.get('max_size_bytes') else local['max_size']}{full}, "
            f"{local['files']} files; hits {local['hits']}, misses {local['misses']}"
        )
    else:
        lines.append("local cache: ccache did not answer (not installed?)")
    if store.get("configured"):
        p = store["probe"]
        ms = "" if p["milliseconds"] is None else f" in {p['milliseconds']:.1f} ms"
        answer = {
            "answers": "answers", "refused": "REFUSED", "timeout": "TIMED OUT", "auth-failed": "AUTH FAILED",
            "forbidden": "FORBIDDEN", "unreachable": "UNREACHABLE", "error": "ERROR",
        }[p["state"]]
        lines.append(f"store: {store['url']} as {store['user']} ({store['access']}): {answer}{ms}: {p['detail']}")
        lines.append(
            f"timeouts: connect {store['connect_timeout_ms'] or 'default'} ms, operation "
            f"{store['operation_timeout_ms'] or 'default'} ms" + ("; remote only" if store["remote_only"] else "")
        )
    else:
        lines.append(f"store: {store.get('note', 'none')}")
    s = store["stats"]
    lines.append(
        f"remote: hits {s['hit']}, misses {s['miss']}, errors {s['error']}, timeouts {s['timeout']}, writes {s['write']}"
    )
    for line in data["sharing"] or [GENERIC_SHARING]:
        lines.append(f"hits: {line}")
    return "\n".join(lines) + "\n"


GENERIC_SHARING = (
    "hits cross hosts only between builders whose autoconf.h is the same (CONFIG_CC_VERSION_TEXT, as, ld "
    "and pahole versions), with the same config, KBUILD_BUILD_*, and paths relative to base_dir"
)
