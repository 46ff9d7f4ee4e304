"""The compile-cache store a host runs, and the store a ccache client uses.

From the goals (--ccache-server, --listen, --allow, --ccache-backend, --ccache-client,
--ccache-remote), the disk facts of the cache's filesystem and the figures the planner already
has (:class:`Inputs`: the RAM the host's own build leaves). A store gets Redis when the cache,
with Redis's own overhead, fits in its share of that RAM; else nginx WebDAV keeps the objects on
disk. :func:`plan_store` returns the :class:`CacheStorePlan` (backend, size, address, one
credential per host) and :func:`plan_remote` the :class:`CacheRemotePlan` of the client side.
Secrets travel only as paths: their content never reaches a plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import HostFacts
from provision.model.goals import CacheUser, Goals
from provision.model.plan import CacheRemotePlan, CacheStorePlan
from provision.rules.addresses import (
    check_listen,
    is_loopback,
    parse_address,
    parse_allow,
)
from provision.rules.names import check_arg_path, check_int
from provision.rules.store import (
    CACHE_DEFAULT_PORTS,
    check_cache_backend,
    check_store_url,
    check_store_user,
    store_url,
)
from provision.units import MIB, human_bytes

DOC = cal.DOC


REDIS_OVERHEAD = cal._k(
    "CACHE_REDIS_OVERHEAD",
    0.10,
    f"measured: {DOC} §13 Redis 7.0 used_memory grew 9.3% over the value bytes for 4,000 ccache-sized "
    "values (1-128 KiB, log-uniform, mean 25 KiB; jemalloc size classes and key overhead)",
)


REDIS_BASE_BYTES = cal._k(
    "CACHE_REDIS_BASE_BYTES",
    16 * MIB,
    f"measured: {DOC} §13 an empty redis-server 7.0 has 12 MiB resident; rounded up",
)


REDIS_RAM_SHARE = cal._k(
    "CACHE_REDIS_RAM_SHARE",
    0.5,
    f"estimate: Redis may take half of the RAM the host's own build leaves; the rest stays page cache "
    f"for the build's sources and objects ({DOC} §13)",
)


STORE_DISK_SHARE = cal._k(
    "CACHE_STORE_DISK_SHARE",
    0.5,
    f"estimate: an http store may take half of the free space on its filesystem ({DOC} §13)",
)


STORE_MAX_OBJECT_BYTES = cal._k(
    "CACHE_STORE_MAX_OBJECT_BYTES",
    64 * MIB,
    f"estimate: nginx's default client_max_body_size (1 MiB) refuses kernel objects; ccache entries "
    f"are zstd-compressed and the largest allmodconfig objects with DWARF are tens of MiB ({DOC} §13)",
)


CONNECT_TIMEOUT_MS = cal._k(
    "CACHE_CONNECT_TIMEOUT_MS",
    100,
    f"estimate: a LAN answers a TCP connect in well under 1 ms; 100 ms bounds a dead store's cost ({DOC} §13)",
)


OPERATION_TIMEOUT_MS = cal._k(
    "CACHE_OPERATION_TIMEOUT_MS",
    1000,
    f"estimate: a 64 MiB object at 1 Gbit/s takes ~0.5 s; ccache's own default is 10 s. measured: a unit "
    f"against a SIGSTOPped Redis cost 1.18 s in all, a refused one nothing measurable ({DOC} §13)",
)


#: Where a store host keeps its users' secrets (``kprov apply --ccache-server``); dir 0700.
LOCAL_SECRETS_DIR = "/etc/kprov/ccache-store/secrets"


#: The client's config file with the URL and its password (root:build group 0640).
REMOTE_CONF = "/etc/kprov/ccache-remote.conf"


#: The http store's WebDAV root.
STORE_DIR = "/var/lib/kprov/ccache-store"


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What the planner already knows that the cache rules need."""

    footprint_bytes: int  # the ccache bytes of one build of the planned target
    footprint_source: str
    ram_spare_bytes: int  # RAM budget minus the host's own build at its planned -j
    ram_story: str  # how ram_spare_bytes was found, for the reason
    compiler: str  # gcc or clang
    config: Mapping[str, str]  # the .config options the plan knows (RANDSTRUCT_*)
    build_dir: str | None
    tree: str | None


def local_secret_file(name: str) -> str:
    return f"{LOCAL_SECRETS_DIR}/{check_store_user(name, 'store user')}"


def own_user_name(hostname: str) -> str:
    """A host's own store credential name: its short host name (the store host's, or a client's
    that joins without --ccache-remote-user)."""
    return check_store_user(hostname.split(".", 1)[0], "this host's short host name as a store user")


def own_user(facts: HostFacts, goals: Goals) -> str:
    """The store host's own credential: in a fleet the first of its users (the fleet names every
    host by its inventory name and puts the store first: fleet.cache_goals_from_hostvars), else
    this host's short name."""
    if goals.ccache_fleet_role and goals.ccache_users:
        return goals.ccache_users[0].name
    return own_user_name(facts.hostname)


def _store_users(facts: HostFacts, goals: Goals) -> tuple[CacheUser, ...]:
    own = own_user(facts, goals)
    users: list[CacheUser] = []
    for u in goals.ccache_users:
        name = check_store_user(u.name, "--ccache-client")
        if any(x.name == name for x in users):
            raise UserError(f"--ccache-client {name}: given twice (one credential per host)")
        users.append(CacheUser(name, u.write or name == own, check_arg_path(u.secret_file, f"the secret file of {name}")))
    if not any(u.name == own for u in users):
        users.insert(0, CacheUser(own, True, local_secret_file(own)))
    return tuple(users)


def plan_store(
    facts: HostFacts, goals: Goals, size_bytes: int, story: str, inputs: Inputs, local_cache_bytes: int = 0
) -> CacheStorePlan:
    """The backend (asked, else Redis when it fits in RAM, else http on disk) and its limits."""
    wanted = goals.ccache_listen if goals.ccache_listen is not None else goals.listen
    asked = goals.ccache_allow or goals.allow
    if wanted is None:
        raise UserError("--ccache-server needs --listen ADDRESS: the one address the store binds to")
    ip = parse_address(wanted, "--listen")
    if asked:
        allow = parse_allow(asked, goals.allow_public, "--allow", "--allow-public")
    elif is_loopback(ip):
        allow = ("127.0.0.0/8",) if ip.version == 4 else ("::1/128",)
    else:
        raise UserError(f"--ccache-server --listen {wanted} needs --allow CIDR: the networks whose hosts may connect")
    listen = check_listen(wanted, allow, None, "--listen")
    reasons: dict[str, str] = {}
    redis_bytes = int(size_bytes * (1 + REDIS_OVERHEAD))
    redis_room = int(max(0, inputs.ram_spare_bytes) * REDIS_RAM_SHARE)
    redis_need = redis_bytes + REDIS_BASE_BYTES
    # the store's directory (/var/lib/kprov) is measured where the local cache is: they share that room
    disk = facts.disk("ccache")
    free = max(0, disk.free_bytes - local_cache_bytes) if disk else 0
    disk_room = int(free * STORE_DISK_SHARE) if disk else None
    redis_text = (
        f"Redis needs {human_bytes(redis_need)} of RAM ({human_bytes(size_bytes)} + {REDIS_OVERHEAD:.0%} per-key overhead + "
        f"{human_bytes(REDIS_BASE_BYTES)} base), {'within' if redis_need <= redis_room else 'more than'} the "
        f"{human_bytes(redis_room)} it may take ({REDIS_RAM_SHARE:.0%} of {inputs.ram_story})"
    )
    disk_text = (
        f"{STORE_DISK_SHARE:.0%} of the {human_bytes(free)} free on {disk.mount} beside the local cache is {human_bytes(disk_room)}"
        if disk else "free disk for the store unknown"
    )
    if goals.ccache_backend is not None:
        backend = check_cache_backend(goals.ccache_backend, "--ccache-backend")
        why = f"{backend}: as asked (--ccache-backend); {redis_text if backend == 'redis' else disk_text}"
        if backend == "redis" and redis_need > redis_room:
            why += "; the host's own builds may run short of memory"
        if backend == "http" and disk_room is not None and size_bytes > disk_room:
            raise UserError(
                f"--ccache-backend http: the store needs {human_bytes(size_bytes)} ({story}) but {disk_text}; "
                "give a smaller --builds-to-keep or free the disk"
            )
    elif redis_need <= redis_room:
        backend = "redis"
        why = f"redis: {redis_text}"
    elif disk_room is None or size_bytes <= disk_room:
        backend = "http"
        why = f"http (nginx WebDAV on disk): {redis_text}; {disk_text}"
    else:
        raise UserError(
            f"--ccache-server: the store needs {human_bytes(size_bytes)} ({story}): {redis_text}, and {disk_text}; "
            "give a smaller --builds-to-keep, or run the store on a host with more RAM or disk"
        )
    port = (
        check_int(goals.ccache_port, "--ccache-port", 1, 65535) if goals.ccache_port is not None
        else CACHE_DEFAULT_PORTS[backend]
    )
    max_size = redis_bytes if backend == "redis" else size_bytes
    reasons["backend"] = why
    reasons["max_size"] = (
        f"{human_bytes(max_size)}: {story}" + (f" + {REDIS_OVERHEAD:.0%} Redis overhead (maxmemory, allkeys-lru)"
                                       if backend == "redis" else " (ccache --trim-dir on a timer)")
    )
    reasons["max_object"] = (
        f"{human_bytes(STORE_MAX_OBJECT_BYTES)}: nginx's default body limit (1 MiB) refuses large kernel objects; never 0"
    )
    reasons["listen"] = (
        f"{listen}:{port}, allow {', '.join(allow)}"
        + ("; Redis has no address ACL: the bound address and one ACL user per host are the lock"
           if backend == "redis" else "; nginx allows those networks, then denies all")
    )
    reasons["clear_text"] = (
        "ccache speaks to Redis and http in clear text: passwords and objects cross the network unencrypted "
        "(tunnel through ssh -L, stunnel or WireGuard where the network is not trusted)"
    )
    users = _store_users(facts, goals)
    writers = [u.name for u in users if u.write]
    reasons["users"] = (
        f"{len(users)} credential(s), one per host; {', '.join(writers)} write, "
        f"{', '.join(u.name for u in users if not u.write) or 'nobody else'} read only"
    )
    return CacheStorePlan(
        backend=backend,
        listen=listen,
        port=port,
        allow=tuple(allow),
        max_size_bytes=max_size,
        max_object_bytes=STORE_MAX_OBJECT_BYTES,
        dir=STORE_DIR,
        users=users,
        reason=f"this host runs the compile-cache store: {why}",
        reasons=reasons,
    )


def plan_remote(goals: Goals, store: CacheStorePlan | None, own: str | None) -> CacheRemotePlan | None:
    if goals.ccache_remote is not None:
        r = goals.ccache_remote
        url = str(check_store_url(r.url, "--ccache-remote"))
        user = check_store_user(r.user, "--ccache-remote-user")
        secret_file = check_arg_path(r.secret_file, "--ccache-remote-secret")
        write, only = r.write, r.only
        why = f"uses the store {url} as user {user}"
    elif store is not None and own is not None:
        me = next(u for u in store.users if u.name == own)
        url = store_url(store.backend, store.listen, store.port)
        user, secret_file, write, only = me.name, me.secret_file, True, False
        why = f"uses its own store {url} as user {user}"
    else:
        return None
    worst = CONNECT_TIMEOUT_MS + OPERATION_TIMEOUT_MS
    reasons = {
        "level": (
            "a second level behind the local cache: a local hit never asks the store"
            + ("; remote only (--ccache-remote-only): no local cache is kept" if only else "")
        ),
        "write": "writes: a local miss compiles and uploads the result" if write else (
            "reads only (ccache read-only): a shared cache is a way into every builder's kernel, so only "
            "the hosts of the writers group (or --ccache-remote-write) upload"
        ),
        "timeouts": (
            f"connect {CONNECT_TIMEOUT_MS} ms, operation {OPERATION_TIMEOUT_MS} ms: a store that refuses costs a "
            f"refused connect (well under 1 ms) per unit; a hung one at most ~{worst} ms per unit (ccache drops a "
            "failed store for the rest of the unit: a unit against a stopped Redis took 1.18 s, measured); "
            "`kprov cache status` finds a hung store before a build does"
        ),
        "secret": (
            f"the password stays in {secret_file}; the role writes the URL with it only to {REMOTE_CONF} "
            "(root:build group 0640), which CCACHE_CONFIGPATH names"
        ),
    }
    return CacheRemotePlan(
        url=url,
        user=user,
        secret_file=secret_file,
        write=write,
        only=only,
        connect_timeout_ms=CONNECT_TIMEOUT_MS,
        operation_timeout_ms=OPERATION_TIMEOUT_MS,
        reason=f"{why}, {'writer' if write else 'reader'}",
        reasons=reasons,
    )
