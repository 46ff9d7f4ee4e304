"""The shared compile cache's store and client lines, as the kbuild_host role writes them.

Pure functions (no I/O): the role's filter plugin hands them the planned ``kbuild_host_ccache_store``
and ``kbuild_host_ccache_remote`` dicts and the secrets it read on the controller, and writes what
they return: Redis ACL lines with ``#<sha256>`` password hashes, nginx htpasswd lines with
``{SSHA}`` hashes, and ccache's ``remote_storage`` line. Every value goes through
the store rules (``provision.rules.store``) first, so no line can carry a second setting.

Hashes are deterministic (the htpasswd salt is derived from the user name): a second run writes
the same files and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from provision.errors import UserError, shown
from provision.model.goals import CacheUser
from provision.model.plan import CacheRemotePlan, CacheStorePlan
from provision.rules import store as store_rules
from provision.rules.names import check_flag
from provision.rules.store import (
    CACHE_BACKENDS,
    check_remote_var,
    check_secret_text,
    check_store_user,
    check_store_var,
)

BACKENDS = CACHE_BACKENDS


#: Redis key prefix ccache uses; ACL users may touch nothing else.
REDIS_KEY_PATTERN = "ccache:*"


def check_user_name(name: Any, where: str) -> str:
    return check_store_user(name, where)


def check_secret(secret: Any, where: str) -> str:
    """A store password as kprov generates it; a trailing newline (a file's) is dropped."""
    return check_secret_text(secret, where)


def check_store(store: Any, where: str = "kbuild_host_ccache_store") -> CacheStorePlan | None:
    """The planned store, checked and canonical; None when this host runs no store (``{}``/null)."""
    s = check_store_var(store, where)
    if not s:
        return None
    users = tuple(CacheUser(u["name"], u["write"], u["secret_file"]) for u in s["users"])
    return CacheStorePlan(s["backend"], s["listen"], s["port"], tuple(s["allow"]), s["max_size_bytes"],
                          s["max_object_bytes"], s["dir"], users)


def check_remote(remote: Any, where: str = "kbuild_host_ccache_remote") -> CacheRemotePlan | None:
    """The planned remote store of a client, checked; None when this host uses none (``{}``/null)."""
    r = check_remote_var(remote, where)
    if not r:
        return None
    return CacheRemotePlan(**r)


def check_compiler_check(value: Any, where: str = "kbuild_host_ccache_compiler_check") -> str:
    return store_rules.check_compiler_check(value, where)


def redis_password_hash(secret: str) -> str:
    """Redis ACL's ``#<sha256 hex>`` form: the config holds no password."""
    return "#" + hashlib.sha256(secret.encode("ascii")).hexdigest()


def redis_acl_line(name: Any, secret: Any, write: Any, reshare: bool = False) -> str:
    """``user NAME on #HASH ~ccache:* resetchannels -@all +get [+set +del] [+exists]``.

    ccache sends AUTH, GET, SET and DEL (EXISTS only with reshare); AUTH needs no permission.
    ``-@all`` first, so no user ever gets FLUSHALL, CONFIG, KEYS, DEBUG or any other command.
    """
    user = check_user_name(name, "store user")
    password = check_secret(secret, f"the secret of store user {user}")
    commands = ["+get"]
    if check_flag(write, f"store user {user} write"):
        commands += ["+set", "+del"]
        if reshare:
            commands.append("+exists")
    return " ".join(["user", user, "reset", "on", redis_password_hash(password), f"~{REDIS_KEY_PATTERN}",
                     "resetchannels", "-@all", *commands])


def htpasswd_salt(name: str) -> bytes:
    """8 bytes derived from the user name: the same line on every run, other users other salts."""
    return hashlib.sha256(b"kprov-ccache-htpasswd:" + name.encode("ascii")).digest()[:8]


def htpasswd_line(name: Any, secret: Any) -> str:
    """``NAME:{SSHA}base64(sha1(secret + salt) + salt)``, a scheme nginx's auth_basic reads."""
    user = check_user_name(name, "store user")
    password = check_secret(secret, f"the secret of store user {user}").encode("ascii")
    salt = htpasswd_salt(user)
    digest = hashlib.sha1(password + salt).digest()  # the {SSHA} scheme is SHA-1 by definition
    return f"{user}:{{SSHA}}{base64.b64encode(digest + salt).decode('ascii')}"


def remote_storage_line(remote: Any, secret: Any) -> str:
    """ccache's ``remote_storage`` value: the URL with ``USER:SECRET@`` and its attributes.

    Redis needs the user name too: with ``redis://:PASS@`` ccache sends no AUTH at all.
    """
    r = check_remote(remote)
    if r is None:
        raise UserError("kbuild_host_ccache_remote is empty: no remote store to write")
    password = check_secret(secret, f"the secret of store user {r.user}")
    scheme, rest = r.url.split("://", 1)
    attrs = [f"connect-timeout={r.connect_timeout_ms}", f"operation-timeout={r.operation_timeout_ms}"]
    if not r.write:
        attrs.append("read-only")
    return "|".join([f"{scheme}://{r.user}:{password}@{rest}", *attrs])


def nginx_user_file_lines(store: Any, secrets: Mapping[str, Any], writers_only: bool) -> list[str]:
    """htpasswd lines for every store user (or only the writers), from ``{name: secret}``."""
    s = check_store(store)
    if s is None:
        return []
    users = tuple(u for u in s.users if u.write) if writers_only else s.users
    missing = [u.name for u in users if u.name not in secrets]
    if missing:
        raise UserError(f"kbuild_host_ccache_store: no secret read for store user {shown(missing[0])}")
    return [htpasswd_line(u.name, secrets[u.name]) for u in users]


def redis_acl_lines(store: Any, secrets: Mapping[str, Any], reshare: bool = False) -> list[str]:
    s = check_store(store)
    if s is None:
        return []
    missing = [u.name for u in s.users if u.name not in secrets]
    if missing:
        raise UserError(f"kbuild_host_ccache_store: no secret read for store user {shown(missing[0])}")
    return [redis_acl_line(u.name, secrets[u.name], u.write, reshare) for u in s.users]
