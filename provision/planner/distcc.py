"""The distcc decision: the server half (distccd: who may connect, the address it binds to, its
jobs) and the client half (DISTCC_HOSTS, the total ``-j`` of a distributed build, the compiler
name handed to the servers).

From the goals (--distcc-server, --allow, --listen, --distcc-hosts, the farm's exclusions), the
host's address and toolchain facts, the memory model (a server's jobs and the client's remote
jobs in flight must fit the budget) and the usable CPUs (the client preprocesses every job).
Returns the :class:`DistccPlan` and the scripts/config arguments distcc needs (GCC plugins off).
"""

from __future__ import annotations

import math

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import (
    CompilerFacts,
    HostFacts,
)
from provision.model.goals import Goals, HostEntry, check_host_entries
from provision.model.plan import (
    CcachePlan,
    DistccPlan,
    JobsPlan,
)
from provision.planner.common import ChosenConfig, MemoryModel, PlanNotes, count_noun, cross_build, usable_cpus
from provision.rules.addresses import (
    address_in,
    check_listen,
    loopback_for,
    parse_allow,
    parse_ip,
)
from provision.rules.distcc import check_distcc_hosts
from provision.rules.names import (
    check_packages,
)
from provision.units import MIB, human_bytes


def _host_entries(goals: Goals) -> tuple[HostEntry, ...]:
    return check_host_entries(goals.host_entries)


def plan_distcc(
    facts: HostFacts,
    goals: Goals,
    cfg: ChosenConfig,
    mem: MemoryModel,
    gain: int,
    jobs: JobsPlan,
    ccache: CcachePlan,
    notes: PlanNotes,
) -> tuple[DistccPlan, tuple[str, ...]]:
    """Server and client halves; returns the plan and extra scripts/config arguments."""
    cpus = usable_cpus(facts)
    entries = _host_entries(goals)
    reasons: dict[str, str] = {}
    commands: list[str] = []
    server = bool(goals.distcc_server)
    client = bool(goals.distcc_hosts)
    allow: tuple[str, ...] = ()
    listen = None
    server_jobs = 0
    if server:
        if not goals.allow:
            raise UserError("distcc server needs at least one --allow CIDR")
        allow = parse_allow(goals.allow, goals.allow_public)
        reasons["allow"] = f"{' '.join(allow)}: only these may connect (anyone who can connect can run commands)"
        if goals.allow_public:
            notes.forced("allow_public")
        default = parse_ip(facts.default_ipv4, "the facts' default_ipv4") if facts.default_ipv4 else None
        if goals.listen is not None:
            listen = check_listen(goals.listen, allow)
            reasons["listen"] = f"{listen}: as asked"
        elif default and address_in(default, allow):
            listen = check_listen(default, allow, where="the facts' default_ipv4")
            reasons["listen"] = f"{listen}: this host's default-route address, inside the allowed networks"
        else:
            listen = loopback_for(allow)
            reasons["listen"] = (
                f"{listen}: the host's address is unknown or outside the allowed networks, so distccd binds "
                "only to loopback; give --listen ADDRESS for the farm network"
            )
            if not address_in(listen, allow):
                notes.warn(f"distccd listens on {listen} only: no allowed client can reach it (give --listen)")
        mem_slots = mem.fit(gain)
        server_jobs = max(1, min(cpus + cal.DISTCCD_EXTRA_JOBS, mem_slots))
        limit = "memory" if mem_slots < cpus + cal.DISTCCD_EXTRA_JOBS else "CPUs"
        reasons["server_jobs"] = (
            f"{server_jobs}: distccd's default of usable CPUs + {cal.DISTCCD_EXTRA_JOBS} ({cpus} + "
            f"{cal.DISTCCD_EXTRA_JOBS}), bounded by memory ({count_noun(mem_slots, 'job')} of {human_bytes(mem.per_job)}); "
            f"limited by {limit}"
        )

    hosts: tuple[str, ...] = ()
    total = 0
    if client:
        parsed = check_distcc_hosts(goals.distcc_hosts, cal.DISTCC_MAX_LIMIT)
        remote_hosts = [h for h in parsed if not h.is_local]
        local_given = next((h for h in parsed if h.is_local), None)
        remote = sum(h.limit or cal.DISTCC_DEFAULT_LIMIT for h in remote_hosts)
        feed = math.floor(cpus / cal.PREPROCESS_CPU_SHARE)
        fed = min(remote, feed)
        if local_given:
            local = local_given.limit or cal.DISTCC_LOCALHOST_LIMIT
            reasons["localhost"] = f"localhost/{local}: as asked"
        else:
            spare = math.floor(cpus - fed * cal.PREPROCESS_CPU_SHARE)
            local = max(1, min(jobs.value, spare))
            reasons["localhost"] = (
                f"localhost/{local}: {cpus} usable CPUs less ~{fed * cal.PREPROCESS_CPU_SHARE:g} CPUs for "
                f"preprocessing {fed} remote jobs (~{cal.PREPROCESS_CPU_SHARE:.0%} of a compile each), "
                f"at least 1, at most the local -j {jobs.value}"
            )
        # remote jobs are in flight during the compile phase, never beside the serial link
        room = mem.ram_budget + gain - mem.base - local * mem.per_job
        mem_remote = max(0, math.floor(room / (cal.DISTCC_CLIENT_JOB_MIB * MIB)))
        used_remote = min(fed, mem_remote)
        total = local + used_remote
        specs = [h.spec(cal.DISTCC_DEFAULT_LIMIT) for h in remote_hosts]
        specs.append(local_given.spec(cal.DISTCC_LOCALHOST_LIMIT) if local_given else f"localhost/{local}")
        hosts = tuple(specs)
        caps = []
        if remote > feed:
            caps.append(
                f"capped from {remote} remote slots: this client's {cpus} CPUs preprocess every job and can "
                f"feed ~{feed}"
            )
        if used_remote < fed:
            caps.append(f"capped by client memory ({count_noun(mem_remote, 'job')} of ~{cal.DISTCC_CLIENT_JOB_MIB} MiB in flight)")
        reasons["total_jobs"] = (
            f"-j{total} for a distributed build: {used_remote} remote slots "
            f"({' + '.join(h.spec(cal.DISTCC_DEFAULT_LIMIT) for h in remote_hosts) or 'none'}) + localhost/{local}"
            + (f"; {'; '.join(caps)}" if caps else "")
        )
        reasons["hosts"] = "remote servers first and localhost last, so distcc fills remote slots before local ones"
        if ccache.enabled:
            reasons["ccache"] = "ccache runs first and hands misses to distcc (CCACHE_PREFIX=distcc)"
        if not remote_hosts:
            notes.warn("--distcc-hosts lists no remote host: the build stays local")
    compiler = ""
    if client:
        compiler, why = _distcc_compiler(facts, goals, cfg, notes)
        if why:
            reasons["compiler"] = why
    if goals.distcc_excluded:
        excluded = goals.distcc_excluded
        reasons["excluded"] = "; ".join(excluded) + (
            " - a server with another compiler fails the unit or, worse, returns an object of its own compiler"
        )
        if not client:
            notes.warn(
                "distcc: no server of the farm compiles what this host compiles, so builds stay local "
                f"(excluded: {'; '.join(excluded)})"
            )
    server_packages: tuple[str, ...] = ()
    if server:
        server_packages = tuple(dict.fromkeys(check_packages(goals.distcc_server_packages, "goals.distcc_server_packages")))
        reasons.update(_distcc_links(facts, server_packages))
    if (server or client) and cfg.compiler == "gcc":
        commands.append("--disable GCC_PLUGINS")
        reasons["gcc_plugins"] = (
            "CONFIG_GCC_PLUGINS=n: distcc refuses -fplugin= and compiles such units locally (kernels >= 5.2); "
            "or build with --compiler clang"
        )
    if server and client:
        why = "server and client"
    elif server:
        why = f"server: distccd for {' '.join(allow)}"
    elif client:
        why = f"client of {len(hosts) - 1} distcc server(s)"
    elif goals.distcc_excluded:
        why = f"no server of the farm compiles what this host compiles ({len(goals.distcc_excluded)} excluded)"
    else:
        why = "not asked (--distcc-server / --distcc-hosts)"
    plan = DistccPlan(
        enabled=server or client,
        reason=("on: " if server or client else "off: ") + why,
        server=server,
        allow=allow,
        allow_public=bool(goals.allow_public and server),
        listen=listen,
        server_jobs=server_jobs,
        client=client,
        hosts=hosts,
        total_jobs=total,
        host_entries=entries,
        reasons=reasons,
        compiler=compiler,
        excluded=tuple(goals.distcc_excluded),
        server_packages=server_packages,
    )
    return plan, tuple(commands)


def versioned_driver(facts: HostFacts, goals: Goals, cfg: ChosenConfig) -> CompilerFacts | None:
    """This host's planned compiler from its toolchain facts (None: unknown, or a cross build)."""
    if cross_build(facts, goals):
        return None
    tc = facts.toolchain_facts
    return tc.compiler(cfg.compiler) if tc else None


def _distcc_compiler(facts: HostFacts, goals: Goals, cfg: ChosenConfig, notes: PlanNotes) -> tuple[str, str | None]:
    """The compiler name a distcc client hands its servers, with its reason: the versioned triplet
    driver (``x86_64-linux-gnu-gcc-12``), which a server runs only when it has that very compiler;
    with a plain ``gcc`` an arm64 server compiles for arm64, and one with gcc 13 returns gcc 13
    objects. ``""`` (and no reason) leaves the plain name."""
    if cross_build(facts, goals):
        return "", None  # a cross build names its CROSS_COMPILE prefix already
    compiler = versioned_driver(facts, goals, cfg)
    if compiler is None:
        notes.warn(
            f"distcc: this host's {cfg.compiler} is not in its facts, so the servers get the plain name "
            f"'{cfg.compiler}' and compile with whatever {cfg.compiler} they have"
        )
        return "", None
    if compiler.driver is None:
        notes.warn(
            f"distcc: no versioned driver for {compiler.version_text} on this host, so the servers get the "
            f"plain name '{cfg.compiler}' and compile with whatever {cfg.compiler} they have"
        )
        return "", None
    return compiler.driver, (
        f"{compiler.driver}: the versioned triplet name of this host's {cfg.compiler} ({compiler.version_text}); a "
        "server runs it only if it has that compiler, never another version or target"
    )


def _distcc_links(facts: HostFacts, installs: tuple[str, ...]) -> dict[str, str]:
    """What distccd may run: only compilers with a link in /usr/lib/distcc (distcc >= 3.3). Returns
    the reasons for the server's compiler packages and its links."""
    tc = facts.toolchain_facts
    reasons: dict[str, str] = {}
    if installs:
        reasons["server_packages"] = (
            f"{' '.join(installs)}: the compiler(s) its clients use, from this release's packages, so it compiles "
            "exactly what they compile"
        )
    if tc is None:
        return reasons
    names = [c.driver for c in tc.compilers if c.driver]
    if tc.distcc_links is None:
        missing = names
    else:
        missing = [n for n in names if n not in tc.distcc_links]
    linked = [n for n in names if n not in missing]
    parts = []
    if linked:
        parts.append(f"{' '.join(linked)} linked in /usr/lib/distcc")
    if missing or installs:
        parts.append(
            f"{' '.join(missing + [f'the {p} driver' for p in installs]) } to be linked by update-distcc-symlinks "
            "(it links every installed gcc and clang)"
        )
    if parts:
        reasons["links"] = "distccd runs only compilers linked in /usr/lib/distcc: " + "; ".join(parts)
    return reasons
