"""The shared compile cache: which backend a store gets and its size, what a client's ccache
writes, and where hits can and cannot cross hosts.

Pure rules (no I/O), called by the planner: it hands them the host's facts, the goals and the
figures it already has (the local cache's footprint per build, the RAM its own build needs). The
secrets are files whose paths travel in the goals; their content never reaches this module, a
plan, a log or a role variable other than by path (provision.cache_status reads and writes them).

A store keeps ``builds_to_keep`` x the ccache bytes of one build x the number of toolchains its
clients use (each toolchain fills the cache with objects of its own). Redis keeps everything in
RAM: it is chosen when that, with Redis's own overhead, fits beside what the host's own build
needs; otherwise nginx WebDAV keeps the objects on disk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import HostFacts
from provision.model.goals import CacheUser, Goals
from provision.model.plan import CacheRemotePlan, CacheStorePlan, CcachePlan
from provision.rules.addresses import (
    check_listen,
    is_loopback,
    parse_address,
    parse_allow,
)
from provision.rules.names import check_int, check_path, parse_version
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


COMPILER_CHECK_COST = cal._k(
    "CACHE_COMPILER_CHECK_COST_MS",
    {"mtime": 0.0, "content": 5.0, "%compiler% -v": 4.0},
    f"measured: {DOC} §13 warm ccache hits of one unit here, 200 calls each: mtime ~15 ms, content "
    "+5-6 ms, %compiler% -v +1-7 ms (a fork of the driver)",
)


#: ccache 4.4 renamed secondary_storage to remote_storage (and added its attributes).
REMOTE_STORAGE_SINCE = (4, 4, 0)


#: Where a store host keeps its users' secrets (``kprov apply --ccache-server``); dir 0700.
LOCAL_SECRETS_DIR = "/etc/kprov/ccache-store/secrets"


#: The client's config file with the URL and its password (root:build group 0640).
REMOTE_CONF = "/etc/kprov/ccache-remote.conf"


#: The http store's WebDAV root.
STORE_DIR = "/var/lib/kprov/ccache-store"


#: Config options that turn on randomised struct layout (scripts/Makefile.randstruct in 6.1).
RANDSTRUCT_OPTIONS = ("RANDSTRUCT_FULL", "RANDSTRUCT_PERFORMANCE", "GCC_PLUGIN_RANDSTRUCT")


#: The seed kbuild writes: clang reads it with -frandomize-layout-seed-file=, gcc's plugin compiles it in.
RANDSTRUCT_SEED = "scripts/basic/randstruct.seed"


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


def _own_user(facts: HostFacts, goals: Goals) -> str:
    """The store host's own credential: in a fleet the first of its users (the fleet names every
    host by its inventory name and puts the store first: fleet.cache_goals_from_hostvars), else
    this host's short name."""
    if goals.ccache_fleet_role and goals.ccache_users:
        return goals.ccache_users[0].name
    return own_user_name(facts.hostname)


def _store_users(facts: HostFacts, goals: Goals) -> tuple[CacheUser, ...]:
    own = _own_user(facts, goals)
    users: list[CacheUser] = []
    for u in goals.ccache_users:
        name = check_store_user(u.name, "--ccache-client")
        if any(x.name == name for x in users):
            raise UserError(f"--ccache-client {name}: given twice (one credential per host)")
        users.append(CacheUser(name, u.write or name == own, check_path(u.secret_file, f"the secret file of {name}")))
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
        secret_file = check_path(r.secret_file, "--ccache-remote-secret")
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


def _randstruct(config: Mapping[str, str]) -> str | None:
    return next((o for o in RANDSTRUCT_OPTIONS if config.get(o) == "y"), None)


def common_parent(*paths: str | None) -> str | None:
    """ccache's base_dir for a shared cache: the parent of the first of ``paths`` (the tree, then
    the build directory) that has one other than ``/`` (base_dir ``/`` would make every path
    relative to the root: no common part that hosts could share)."""
    for path in paths:
        if path:
            parent = path.rstrip("/").rsplit("/", 1)[0]
            if parent and parent != "/":
                return parent
    return None


def _base_dir(ccache: CcachePlan, inputs: Inputs) -> str | None:
    if ccache.base_dir and ccache.base_dir != "/":
        return ccache.base_dir
    return common_parent(inputs.tree, inputs.build_dir)


def _toolchain_lines(facts: HostFacts, compiler: str) -> list[str]:
    """What this host's autoconf.h records: hits cross only to hosts that record the same."""
    tf = getattr(facts, "toolchain_facts", None)
    parts: list[str] = []
    cc = tf.compiler(compiler) if tf is not None else None
    if cc is not None and cc.version_text:
        parts.append(f"CONFIG_CC_VERSION_TEXT {cc.version_text!r}")
    elif facts.toolchain.get(compiler):
        parts.append(f"{compiler} {facts.toolchain[compiler]} (the exact distro revision decides)")
    if tf is not None:
        for label, key in (("as", "assembler"), ("ld", "linker"), ("pahole", "pahole")):
            value = getattr(tf, key, None)
            parts.append(f"{label} {value!r}" if value else f"no {label}")
    else:
        ld, pahole = facts.toolchain.get("ld"), facts.toolchain.get("pahole")
        parts.append(f"binutils {ld}" if ld else "binutils unknown")
        parts.append(f"pahole {pahole}" if pahole else "no pahole")
    parts.append(f"target {facts.arch}")
    return parts


def toolchain_key(facts: HostFacts, compiler: str = "gcc") -> tuple[str, ...]:
    """What a host's kernel builds record, from its plain facts (arch, compiler, binutils, pahole):
    hosts with another key share no hits."""
    tf = facts.toolchain_facts
    cc = tf.compiler(compiler) if tf is not None else None
    version = cc.version_text if cc is not None else facts.toolchain.get(compiler)
    ld = tf.linker if tf is not None else facts.toolchain.get("ld")
    pahole = tf.pahole if tf is not None else facts.toolchain.get("pahole")
    return (facts.arch, f"{compiler} {version or 'absent'}", f"ld {ld or 'absent'}", f"pahole {pahole or 'absent'}")


def plan_shared_cache(facts: HostFacts, goals: Goals, ccache: CcachePlan, inputs: Inputs, warn: Callable[[str], None]) -> CcachePlan:
    """``ccache`` with the store this host runs, the store it uses, and the client settings that
    let hits cross hosts (or the reasons they cannot)."""
    wanted = goals.ccache_server or goals.ccache_remote is not None
    version = parse_version(facts.toolchain.get("ccache"))
    unable = None
    if not ccache.enabled:
        unable = f"ccache is {ccache.reason}"
    elif wanted and version is not None and version < REMOTE_STORAGE_SINCE:
        unable = f"ccache {facts.toolchain.get('ccache')} has no remote storage (4.4 or later)"
    if unable is not None and wanted:
        if goals.ccache_fleet_role and not goals.ccache_server:
            # one fleet member that cannot take part leaves the cache to the others
            return dataclasses.replace(ccache, fleet_role=f"excluded: {unable}")
        raise UserError(f"--ccache-server/--ccache-remote: {unable}")
    if not ccache.enabled:
        return ccache
    reasons = dict(ccache.reasons)
    extra_files: list[str] = []
    sharing: list[str] = []
    randstruct = _randstruct(inputs.config)
    if randstruct:
        root = inputs.build_dir or inputs.tree
        if root:
            seed = check_path(f"{root.rstrip('/')}/{RANDSTRUCT_SEED}", "the RANDSTRUCT seed")
            extra_files.append(seed)
            how = ("clang reads it with -frandomize-layout-seed-file=, hashed by path only" if inputs.compiler == "clang"
                   else "gcc's randstruct plugin compiles it in")
            reasons["extra_files"] = (
                f"{seed}: CONFIG_{randstruct} lays structs out from this seed ({how}); hashing it keeps "
                "objects of another seed out"
            )
        else:
            warn(f"CONFIG_{randstruct} with no known build directory: ccache cannot hash its seed; give --build-dir")
    compiler_check = "mtime"
    cost = COMPILER_CHECK_COST
    reasons["compiler_check"] = (
        f"mtime: ccache hashes the compiler driver's size and mtime; dpkg keeps a package's mtimes, so hosts "
        f"with the same compiler package match. content costs ~{cost['content']:g} ms and %compiler% -v "
        f"~{cost['%compiler% -v']:g} ms more per call (a fork) on a ~15 ms hit"
    )
    store = remote = None
    fleet_role = goals.ccache_fleet_role
    own = None
    if goals.ccache_server:
        own = _own_user(facts, goals)
        keep = goals.builds_to_keep
        kinds = max(1, goals.ccache_toolchains)
        size = max(int(inputs.footprint_bytes * keep * kinds * cal.CCACHE_HEADROOM), cal.CCACHE_MIN_BYTES)
        story = (
            f"~{human_bytes(inputs.footprint_bytes)} per build ({inputs.footprint_source}) x {keep} builds to keep x "
            f"{kinds} toolchain(s){'' if goals.ccache_toolchains > 1 or fleet_role else ' (only this host known)'} "
            f"x {cal.CCACHE_HEADROOM:g} headroom"
        )
        store = plan_store(facts, goals, size, story, inputs, ccache.max_size_bytes)
    remote = plan_remote(goals, store, own)
    sloppiness = ccache.sloppiness
    hash_dir, base_dir = ccache.hash_dir, ccache.base_dir
    if remote is not None:
        if "locale" not in sloppiness:
            sloppiness = (*sloppiness, "locale")
        reasons["sloppiness"] = (
            reasons.get("sloppiness", "") + "; locale: ccache otherwise hashes LANG/LC_*, and builders differ"
        ).lstrip("; ")
        hash_dir = False
        base_dir = _base_dir(ccache, inputs)
        if base_dir is None:
            sharing.append(
                "no base_dir (the tree's parent is / or unknown): absolute source paths are hashed, so hits cross "
                "only between builders with the same absolute paths"
            )
        reasons["sharing"] = (
            f"hash_dir false and base_dir {base_dir or 'none'}: paths below it are hashed relative; the "
            "debug info maps it away (KCFLAGS=-fdebug-prefix-map=BASE/=: with hash_dir false ccache leaves the map "
            "out of the hash, measured; unlike -ffile-prefix-map it leaves __FILE__ as the kernel sets it)"
        )
        sharing.append(
            "hits cross hosts only between builders whose autoconf.h is the same: "
            + ", ".join(_toolchain_lines(facts, inputs.compiler))
        )
        sharing.append(
            "and the same relative path from base_dir to the source tree and to O=, the same config, "
            "the same KBUILD_BUILD_* (planned fixed)"
        )
        if randstruct:
            sharing.append(f"CONFIG_{randstruct}: only builders that share the seed file share hits")
        sharing.extend(goals.ccache_fleet_notes)
    return dataclasses.replace(
        ccache,
        store=store,
        remote=remote,
        sloppiness=sloppiness,
        hash_dir=hash_dir,
        base_dir=base_dir,
        compiler_check=compiler_check,
        extra_files=tuple(extra_files),
        sharing=tuple(sharing),
        fleet_role=fleet_role,
        reasons=reasons,
    )


def env(ccache: CcachePlan) -> dict[str, str]:
    """What the build environment adds for a remote store: the config file's path (never the
    secret) and the debug-info prefix map."""
    out: dict[str, str] = {}
    if ccache.enabled and ccache.remote is not None:
        out["CCACHE_CONFIGPATH"] = REMOTE_CONF
        if ccache.base_dir:
            out["KCFLAGS"] = f"-fdebug-prefix-map={ccache.base_dir.rstrip('/')}/="
    return out
