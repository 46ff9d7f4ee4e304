"""The ccache decision: whether the build runs under ccache, where its cache lives, how large it
may grow, and who can write it.

From the installed ccache (its version: some cannot cache kernel builds), the distro's packages,
the goals, the cache directory's filesystem and the footprint of one build (measured on this tree
by ``kprov calibrate``, else the table figure for the target), times the builds to keep.
Returns the local :class:`CcachePlan`; the shared cache decision
(:mod:`provision.planner.shared_cache`) then adds the store and the settings that let hits cross
hosts, from :func:`cache_inputs`.
"""

from __future__ import annotations

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import (
    CalibrationProfile,
    HostFacts,
)
from provision.model.goals import Goals
from provision.model.plan import (
    CcachePlan,
    JobsPlan,
    PackageSet,
)
from provision.planner.cache_store import Inputs
from provision.planner.common import ChosenConfig, MemoryModel, PlanNotes, in_range, target_arch
from provision.planner.distcc import versioned_driver
from provision.planner.memory import estimate_tag
from provision.planner.shared_cache import source_root, tree_base_dir
from provision.rules.names import (
    check_owned_dir,
    check_user_name,
    parse_version,
)
from provision.units import MIB, human_bytes


def throwaway_runner(facts: HostFacts) -> str:
    """Why ccache is off on a throw-away CI runner ("" when it is not one): a container with
    CI=true whose cache directory is on the container's own filesystem starts every build cold."""
    disk = facts.disk("ccache")
    if not (facts.in_container and facts.ci) or disk is None:
        return ""
    if disk.mount != "/" and disk.fstype not in cal.EPHEMERAL_FSTYPES:
        return ""  # a volume or bind mount of its own: the cache outlives the container
    return (
        f"off: a throw-away CI runner (a container, CI=true) with the cache directory {disk.path} on the container's "
        f"own filesystem ({disk.fstype or 'its root'} at {disk.mount}): every build starts with a cold cache, "
        f"~{cal.CCACHE_COLD_SLOWDOWN:g}x slower than without ccache (measured); mount a persistent volume there "
        "and kprov plans ccache on"
    )


def plan_ccache(
    facts: HostFacts,
    goals: Goals,
    cfg: ChosenConfig,
    pkgs: PackageSet | None,
    profile: CalibrationProfile | None,
    notes: PlanNotes,
) -> CcachePlan:
    """ccache on when it is installed or installable and works for kernel builds (or as asked),
    with its directory, size, sloppiness and, for a shared cache, its base_dir."""
    installed = facts.toolchain.get("ccache")
    installable = bool(pkgs and pkgs.ccache)
    version = parse_version(installed)
    broken = in_range(version, cal.CCACHE_BROKEN_VERSIONS)
    group_add = tuple(dict.fromkeys(check_user_name(u, "--ccache-group-add") for u in goals.ccache_group_add))
    if goals.ccache_private:
        if goals.ccache_dir is not None:
            raise UserError(f"--ccache-private and --ccache-dir {goals.ccache_dir} contradict each other: give one")
        if group_add:
            raise UserError(
                f"--ccache-private and --ccache-group-add {group_add[0]} contradict each other: a private cache has no group"
            )
        # the planning user's own default (root's, for an apply): the role creates no directory
        home = facts.disk("home")
        directory = f"{home.path.rstrip('/')}/.cache/ccache" if home and home.path.startswith("/") else PRIVATE_CCACHE_DIR
    elif goals.ccache_dir is not None:
        directory = check_owned_dir(goals.ccache_dir, "--ccache-dir")
    elif facts.disk("ccache"):
        directory = check_owned_dir(facts.disk("ccache").path, "the facts' ccache directory")
    else:
        directory = CcachePlan.dir
    overridden: list[str] = []
    if goals.ccache is not None:
        overridden.append("ccache")
        notes.forced("ccache")
    if goals.ccache_size_bytes is not None:
        overridden.append("ccache_size")
        notes.forced("ccache_size")
    low, high = (".".join(map(str, b)) for b in cal.CCACHE_BROKEN_VERSIONS)
    if broken:
        notes.warn(f"ccache {installed} cannot cache kernel builds (versions {low}-{high}; fixed in 4.7.3)")

    def off(reason: str) -> CcachePlan:
        return CcachePlan(
            enabled=False, reason=reason, dir=directory, overridden=tuple(overridden), private=goals.ccache_private
        )

    if goals.ccache is False:
        return off("off: overridden (--no-ccache)")
    if goals.ccache is None:
        runner = throwaway_runner(facts)
        if runner:
            return off(runner)
        if broken:
            return off(f"off: ccache {installed} cannot cache kernel builds ({low}-{high}); upgrade to 4.7.3 or later")
        if not installed and not installable:
            return off(f"off: ccache is not installed and kprov has no package for distro '{facts.distro.id}'")
    reason = "on: overridden (--ccache)" if goals.ccache else (
        f"on: ccache {installed} is installed" if installed else "on: `kprov apply` installs ccache"
    )
    reason += f"; a warm cache rebuilds ~{cal.CCACHE_WARM_SPEEDUP:g}x faster (measured)"

    reasons: dict[str, str] = {}
    if profile is not None and profile.object_bytes_total:
        footprint = profile.object_bytes_total * cal.CCACHE_BYTES_PER_OBJECT_BYTE
        footprint_source = (
            f"measured on this tree: ~{human_bytes(profile.object_bytes_total)} of objects x "
            f"{cal.CCACHE_BYTES_PER_OBJECT_BYTE:g} cache bytes per object byte"
        )
    else:
        footprint = cal.ccache_footprint_mib(cfg.target_class, cfg.debug_info) * MIB
        footprint_source = f"table figure; {estimate_tag(facts)}"
    wanted = max(int(footprint * goals.builds_to_keep * cal.CCACHE_HEADROOM), cal.CCACHE_MIN_BYTES)
    # a private cache lives in each user's home
    disk = facts.disk("home") if goals.ccache_private else facts.disk("ccache")
    share = int(disk.free_bytes * cal.CCACHE_DISK_SHARE) if disk else None
    where = f"{cal.CCACHE_DISK_SHARE:.0%} of {human_bytes(disk.free_bytes)} free on {disk.mount}" if disk else ""
    if goals.ccache_size_bytes is not None:
        size = goals.ccache_size_bytes
        reasons["max_size"] = f"{human_bytes(size)}: as asked"
        if share is not None and size > share:
            notes.warn(f"--ccache-size {human_bytes(size)} is more than {where} ({human_bytes(share)})")
    else:
        debug = f", debug info {cfg.debug_info}" if cfg.debug_info != "none" else ""
        story = (
            f"{cfg.target} ({cfg.target_class}{debug}) fills ~{human_bytes(footprint)} per build x {goals.builds_to_keep} "
            f"builds to keep x {cal.CCACHE_HEADROOM:g} headroom, at least {human_bytes(cal.CCACHE_MIN_BYTES)} "
            f"({footprint_source})"
        )
        if share is not None and share < cal.CCACHE_MIN_BYTES:
            # ccache reads max_size 0 as "no limit": a full disk must never become an unbounded cache.
            shortage = (
                f"{where} is {human_bytes(share)}, below the {human_bytes(cal.CCACHE_MIN_BYTES)} a cache needs to be worth having "
                f"({cfg.target} fills ~{human_bytes(footprint)} per build)"
            )
            if goals.ccache:
                raise UserError(
                    f"--ccache: {shortage}; give --ccache-dir on a filesystem with room, or --ccache-size"
                )
            return off(f"off: {shortage}; give --ccache-dir on a filesystem with room")
        if share is not None and wanted > share:
            size = share
            reasons["max_size"] = f"{human_bytes(size)}: capped at {where} ({story} = {human_bytes(wanted)})"
        else:
            size = wanted
            tail = f"; within {where}" if share is not None else "; free disk on the cache's filesystem unknown"
            reasons["max_size"] = f"{human_bytes(size)}: {story}{tail}"
    sloppiness = tuple(cal.CCACHE_SLOPPINESS)
    reasons["sloppiness"] = (
        f"{','.join(sloppiness)}: the kernel builds with -Werror=date-time, so no unit uses __DATE__/__TIME__; "
        "hits survive a changing SOURCE_DATE_EPOCH"
    )
    reasons["compression"] = "on: ccache's default (zstd), about halves the cache for a little CPU"
    reasons["timestamp"] = (
        "KBUILD_BUILD_TIMESTAMP is fixed in the build environment: without it every build misses the cache"
    )
    hash_dir, base_dir, tree_base = True, None, None
    shared_driver = ""
    if not goals.ccache_private:
        # One cache for every user and every tree of the host (and, with a store, of the fleet).
        hash_dir = False
        base_dir = source_root(goals)
        tree_base = tree_base_dir(facts.tree.path if facts.tree else None)
        if "locale" not in sloppiness:
            sloppiness = (*sloppiness, "locale")
        reasons["sloppiness"] += "; locale: ccache otherwise hashes LANG/LC_*, and users and builders differ"
        where = "as asked (--source-root)" if goals.source_root else (
            "the parent of this host's users' home directories, where they keep their trees (the default; "
            "--source-root DIR names another)"
        )
        reasons["sharing"] = (
            f"one cache for every user and tree: ccache's configuration sets hash_dir false (the build directory "
            f"is not hashed) and base_dir {base_dir}, {where}: absolute paths below it are hashed relative to O=, so "
            "trees below it share hits; `kprov env --tree DIR` and `kprov build` set CCACHE_BASEDIR for a tree "
            "elsewhere"
        )
    if goals.ccache_shared or goals.ccache_server or goals.ccache_remote is not None:
        own = versioned_driver(facts, goals, cfg)
        if own is not None and own.driver:
            shared_driver = own.driver
            reasons["compiler"] = (
                f"CC names {own.driver}: every unit's autoconf.h records the compiler's version line with its "
                "name (CONFIG_CC_VERSION_TEXT), so hosts that share a cache name it the same way, the versioned "
                "driver distcc clients use"
            )
    writers = _ccache_writers(facts, goals, directory, group_add)
    reasons["writers"] = writers
    reason += "; " + writers.split(":", 1)[0]
    if version is not None and cfg.compiler == "gcc" and target_arch(facts, goals) == "arm64":
        if in_range(version, cal.CCACHE_ARM64_UNCACHED_VERSIONS):
            notes.warn(f"ccache {installed} does not cache arm64 units that pass -Wa,-march (fixed in 4.7.3)")
    notes.warn(
        f"a cold ccache build is ~{cal.CCACHE_COLD_SLOWDOWN:g}x slower than a plain one: the cache pays off "
        "only when you rebuild the same kernel version"
    )
    return CcachePlan(
        enabled=True,
        reason=reason,
        max_size_bytes=int(size),
        dir=directory,
        compression=True,
        sloppiness=sloppiness,
        hash_dir=hash_dir,
        base_dir=base_dir,
        tree_base_dir=tree_base,
        reasons=reasons,
        overridden=tuple(overridden),
        private=goals.ccache_private,
        group_add=group_add,
        compiler=shared_driver,
    )


#: What ``--ccache-private`` leaves each user: ccache 4's own default cache directory.
PRIVATE_CCACHE_DIR = "~/.cache/ccache"


#: The group that shares the cache directory (the role's kbuild_host_ccache_group default).
CCACHE_GROUP = "kbuild"


def _ccache_writers(facts: HostFacts, goals: Goals, directory: str, group_add: tuple[str, ...]) -> str:
    """Who can write the cache, and what that means: a shared cache is shared trust."""
    if goals.ccache_private:
        return (
            f"private caches: no shared directory and no group; each user keeps ccache's default "
            f"({PRIVATE_CCACHE_DIR}), written only by that user (and root), so no user's objects reach "
            "another's build or root's (root's builds use root's own cache)"
        )
    members = facts.ccache_group_members
    if members is None:
        listed = f"group {CCACHE_GROUP} does not exist yet, so no members" if facts.source == "local" else (
            f"group {CCACHE_GROUP}'s members are not known from these facts"
        )
    elif members:
        listed = f"members now: {', '.join(members)}"
    else:
        listed = "no members now"
    added = (
        f"; kprov adds {', '.join(group_add)} to it (--ccache-group-add)" if group_add
        else "; kprov adds nobody to it unless asked (--ccache-group-add USER), or use --ccache-private"
    )
    return (
        f"shared cache written by root and the members of group {CCACHE_GROUP} ({listed}){added}: "
        f"{directory} is {CCACHE_GROUP}-writable, so each of them can plant objects that the others' builds "
        "and root's then link"
    )


def cache_inputs(
    facts: HostFacts, cfg: ChosenConfig, mem: MemoryModel, jobs: JobsPlan, profile: CalibrationProfile | None, build_dir: str | None
) -> Inputs:
    """What the shared-cache rules need from this plan: one build's cache bytes (as the local cache
    is sized) and the RAM the host's own build leaves at its planned -j."""
    if profile is not None and profile.object_bytes_total:
        footprint = profile.object_bytes_total * cal.CCACHE_BYTES_PER_OBJECT_BYTE
        source = "measured on this tree"
    else:
        footprint = cal.ccache_footprint_mib(cfg.target_class, cfg.debug_info) * MIB
        source = f"table figure for {cfg.target}"
    own = max([mem.need(jobs.value)] + [mem.serial_need(s, jobs.value, cfg.modules) for s in mem.serial])
    config = cfg.kconfig.config if cfg.kconfig else (facts.tree.config if facts.tree else {})
    return Inputs(
        footprint_bytes=int(footprint),
        footprint_source=source,
        ram_spare_bytes=mem.ram_budget - own,
        ram_story=f"the {human_bytes(max(0, mem.ram_budget - own))} left of a {human_bytes(mem.ram_budget)} budget by the build at -j{jobs.value}",
        compiler=cfg.compiler,
        config=config,
        build_dir=build_dir,
        tree=facts.tree.path if facts.tree else None,
    )
