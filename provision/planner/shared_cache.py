"""The shared cache decision: the store this host runs, the store it uses, and the ccache
settings that let hits cross hosts (or the reasons they cannot).

Pure rules (no I/O), called by the planner: it hands them the host's facts, the goals, the local
:class:`CcachePlan` and the figures it already has (:class:`Inputs`: the local cache's footprint
per build, the RAM its own build needs). The store's backend, size and users come from
:mod:`provision.planner.cache_store`. The secrets are files whose paths travel in the goals; their
content never reaches this module, a plan, a log or a role variable other than by path
(provision.cache_status reads and writes them).

A store keeps ``builds_to_keep`` x the ccache bytes of one build x the number of toolchains its
clients use (each toolchain fills the cache with objects of its own). Redis keeps everything in
RAM: it is chosen when that, with Redis's own overhead, fits beside what the host's own build
needs; otherwise nginx WebDAV keeps the objects on disk. :func:`plan_shared_cache` returns the
:class:`CcachePlan` with the store and the client settings; :func:`env` what the build
environment adds for a remote store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import HostFacts
from provision.model.goals import Goals
from provision.model.plan import CcachePlan
from provision.planner.cache_store import (
    LOCAL_SECRETS_DIR,
    REDIS_OVERHEAD,
    REMOTE_CONF,
    Inputs,
    local_secret_file,
    own_user,
    own_user_name,
    plan_remote,
    plan_store,
)
from provision.planner.common import PlanNotes
from provision.rules.names import check_path, check_source_root, parse_version, path_under
from provision.units import human_bytes

#: The names other modules use from here: the shared cache's own and those of the store it plans
#: (provision.planner.cache_store), which the CLI, the fleet planner and the tests take from here.
__all__ = [
    "COMPILER_CHECK_COST",
    "LOCAL_SECRETS_DIR",
    "RANDSTRUCT_OPTIONS",
    "RANDSTRUCT_SEED",
    "SOURCE_ROOT",
    "REDIS_OVERHEAD",
    "REMOTE_CONF",
    "REMOTE_STORAGE_SINCE",
    "Inputs",
    "common_parent",
    "env",
    "env_for_tree",
    "local_secret_file",
    "own_user_name",
    "plan_shared_cache",
    "prefix_map",
    "source_root",
    "toolchain_key",
    "tree_base_dir",
    "tree_sharing",
]

DOC = cal.DOC


COMPILER_CHECK_COST = cal._k(
    "CACHE_COMPILER_CHECK_COST_MS",
    {"mtime": 0.0, "content": 5.0, "%compiler% -v": 4.0},
    f"measured: {DOC} §13 warm ccache hits of one unit here, 200 calls each: mtime ~15 ms, content "
    "+5-6 ms, %compiler% -v +1-7 ms (a fork of the driver)",
)


#: ccache 4.4 renamed secondary_storage to remote_storage (and added its attributes).
REMOTE_STORAGE_SINCE = (4, 4, 0)


#: Config options that turn on randomised struct layout (scripts/Makefile.randstruct in 6.1).
RANDSTRUCT_OPTIONS = ("RANDSTRUCT_FULL", "RANDSTRUCT_PERFORMANCE", "GCC_PLUGIN_RANDSTRUCT")


#: The seed kbuild writes: clang reads it with -frandomize-layout-seed-file=, gcc's plugin compiles it in.
RANDSTRUCT_SEED = "scripts/basic/randstruct.seed"


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


#: Where a host's users keep their kernel trees unless told (--source-root): below their home
#: directories. ccache's base_dir for every user (its manual: "a parent of your project
#: directories"; never / and never one user's home, which would cover that user's trees only).
SOURCE_ROOT = "/home"


def source_root(goals: Goals) -> str:
    """The host-wide base_dir: ``--source-root`` (``source_root`` of kbuild_host_goals), else /home."""
    return check_source_root(goals.source_root or SOURCE_ROOT, "--source-root")


def _base_dir(ccache: CcachePlan, goals: Goals) -> str:
    if ccache.base_dir and ccache.base_dir != "/":
        return ccache.base_dir
    return source_root(goals)


def tree_base_dir(tree: str | None) -> str | None:
    """The base_dir for one tree (``kprov env --tree``, ``kprov build``): its parent, or the tree
    itself when that is ``/``. ccache makes every absolute path below base_dir relative to the
    compiler's working directory, which kbuild sets to ``O=``; with O= out of tree, only the source
    tree's paths are absolute (``-I``, the source file, ``-include``), so the tree's parent covers
    them, and the hash is the same for any base_dir that does."""
    if not tree:
        return None
    return common_parent(tree) or tree.rstrip("/") or None


def tree_sharing(ccache: CcachePlan, tree: str | None) -> list[str]:
    """Which paths share hits in a cache every user and tree of the host share, one line each."""
    base = ccache.base_dir
    if not ccache.enabled or ccache.hash_dir or not base:
        return []
    lines = [
        f"trees under {base} share hits (ccache's base_dir {base} for every user); a tree elsewhere needs "
        "`kprov env --tree DIR` (or `kprov build --tree DIR`), which sets CCACHE_BASEDIR for it",
        "a unit hits another tree's object when O= lies the same way from both trees: kprov's default O= is "
        "beside the tree (DIR-build), so trees of the same directory name share",
    ]
    if tree:
        lines.append(
            f"this plan's tree {tree} is under {base}" if path_under(tree, base)
            else f"this plan's tree {tree} is not under {base}: `kprov env --tree` and `kprov build` set "
            f"CCACHE_BASEDIR={ccache.tree_base_dir} for it"
        )
    return lines


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


def plan_shared_cache(facts: HostFacts, goals: Goals, ccache: CcachePlan, inputs: Inputs, notes: PlanNotes) -> CcachePlan:
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
            notes.warn(f"CONFIG_{randstruct} with no known build directory: ccache cannot hash its seed; give --build-dir")
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
        own = own_user(facts, goals)
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
        base_dir = _base_dir(ccache, goals)
        reasons["sharing"] = (
            reasons.get("sharing", f"hash_dir false and base_dir {base_dir or 'none'}: paths below it are hashed relative")
            + "; the debug info maps the base away (KCFLAGS=-fdebug-prefix-map=BASE/=, for every user: with "
            "hash_dir false ccache hashes the option's name but not its paths, measured, so every build must carry "
            "it or none; unlike -ffile-prefix-map it leaves __FILE__ as the kernel sets it)"
        )
        sharing.append(
            "hits cross hosts only between builders whose autoconf.h is the same: "
            + ", ".join(_toolchain_lines(facts, inputs.compiler))
        )
        sharing.append(
            "and the same path from O= to the source tree (kprov's default O=: DIR-build beside the tree), the "
            "same config, the same KBUILD_BUILD_* (planned fixed)"
        )
        if randstruct:
            sharing.append(f"CONFIG_{randstruct}: only builders that share the seed file share hits")
        sharing.extend(goals.ccache_fleet_notes)
    done = dataclasses.replace(
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
        tree_base_dir=ccache.tree_base_dir or (tree_base_dir(inputs.tree) if remote is not None else None),
    )
    return dataclasses.replace(done, sharing=(*tree_sharing(done, inputs.tree), *done.sharing))


def prefix_map(base: str) -> str:
    """KCFLAGS for a shared cache: the debug info names paths below ``base`` relative to it."""
    return f"-fdebug-prefix-map={base.rstrip('/')}/="


def env(ccache: CcachePlan) -> dict[str, str]:
    """What ``kprov env`` and ``kprov build`` add for a shared cache: the base_dir of this plan's
    tree (the host-wide one without a tree) with its debug-info prefix map, and for a remote store
    the config file's path (never the secret)."""
    out: dict[str, str] = {}
    if ccache.enabled and not ccache.hash_dir and ccache.base_dir:
        base = ccache.tree_base_dir or ccache.base_dir
        out["CCACHE_BASEDIR"] = base
        out["KCFLAGS"] = prefix_map(base)
    if ccache.enabled and ccache.remote is not None:
        out["CCACHE_CONFIGPATH"] = REMOTE_CONF
    return out


def env_for_tree(ccache: CcachePlan, tree: str) -> dict[str, str]:
    """:func:`env` for the tree a build runs in (``kprov build`` in the current directory, which
    the plan may not have been told)."""
    return env(dataclasses.replace(ccache, tree_base_dir=tree_base_dir(tree) or ccache.tree_base_dir))
