"""The plan: what the planner decides for one host (HostFacts + Goals -> Plan), each part with its
reasons, and ``Plan.to_role_vars()``, the kbuild_host role's variables; the package catalog the
planner picks a host's packages from.

Everything here is a frozen dataclass with ``to_dict()``/``from_dict()`` (``provision.model.schema``).
This module does no I/O and imports nothing that does: the planner depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provision.model.facts import KconfigFacts
from provision.model.goals import CacheUser, HostEntry
from provision.model.schema import PLAN_SCHEMA, Serialisable
from provision.paths import SHARED_CCACHE_DIR
from provision.units import ccache_size_string


@dataclass(frozen=True)
class PlanHost(Serialisable):
    hostname: str
    arch: str
    usable_cpus: int
    memory_bytes: int  # effective: min(MemTotal, cgroup limit)
    distro: str
    family: str
    virtualization: str
    zram_compressors: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobsPlan(Serialisable):
    value: int  # make -j
    load: float | None  # make -l; None: not set (the default)
    reason: str
    limited_by: str  # "cpus", "memory", "override", "distcc"
    per_job_bytes: int = 0
    budget_bytes: int = 0  # RAM budget plus the zram counted for the compile phase
    link_peak_bytes: int = 0  # the largest serial phase's own peak (beside the build's base)
    overridden: bool = False
    base_bytes: int = 0  # make, shells and kbuild scripts, independent of -j
    average_job_bytes: int = 0  # each job beyond the first adds this on average (per_job_bytes: one at its p99)
    load_reason: str = ""


@dataclass(frozen=True)
class PhasePlan(Serialisable):
    """One phase of the build: the parallel compile, or a serial step (link, objtool, BTF, LTO)."""

    name: str
    peak_bytes: int  # what the phase needs at its peak, the build's base included
    fits: str  # "ram", "swap" (fits with the planned zram / the swap), "short"
    seconds: float  # estimated wall time
    reason: str


@dataclass(frozen=True)
class EstimatePlan(Serialisable):
    """How long the planned build takes, from CPU-seconds over the jobs plus the serial phases."""

    seconds: float
    cpu_seconds: float
    reason: str
    measured: tuple[str, ...] = ()  # figures measured on this tree (a calibration profile)
    estimated: tuple[str, ...] = ()  # figures from the table (estimate: run kprov calibrate)


@dataclass(frozen=True)
class ZramPlan(Serialisable):
    enabled: bool
    reason: str
    algorithm: str | None = None
    percent: int | None = None
    priority: int = 100
    size_bytes: int = 0
    tool: str = "zram-tools"  # "zram-tools" (Debian family) or "zram-generator"
    sysctls: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # per field
    overridden: tuple[str, ...] = ()


@dataclass(frozen=True)
class CacheStorePlan(Serialisable):
    """The compile-cache store this host runs (role variable ``kbuild_host_ccache_store``)."""

    backend: str  # redis | http
    listen: str
    port: int
    allow: tuple[str, ...]
    max_size_bytes: int  # redis maxmemory / the http store's trim size
    max_object_bytes: int  # nginx client_max_body_size
    dir: str  # http: the WebDAV root
    users: tuple[CacheUser, ...]
    reason: str = ""
    reasons: dict[str, str] = field(default_factory=dict)

    def to_role_var(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "listen": self.listen,
            "port": self.port,
            "allow": list(self.allow),
            "max_size_bytes": self.max_size_bytes,
            "max_object_bytes": self.max_object_bytes,
            "dir": self.dir,
            "users": [{"name": u.name, "write": u.write, "secret_file": u.secret_file} for u in self.users],
        }


@dataclass(frozen=True)
class CacheRemotePlan(Serialisable):
    """The store this host's ccache uses behind its local cache (``kbuild_host_ccache_remote``)."""

    url: str  # no userinfo: the secret stays in its file
    user: str
    secret_file: str
    write: bool
    only: bool
    connect_timeout_ms: int
    operation_timeout_ms: int
    reason: str = ""
    reasons: dict[str, str] = field(default_factory=dict)

    def to_role_var(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "user": self.user,
            "secret_file": self.secret_file,
            "write": self.write,
            "only": self.only,
            "connect_timeout_ms": self.connect_timeout_ms,
            "operation_timeout_ms": self.operation_timeout_ms,
        }


@dataclass(frozen=True)
class CcachePlan(Serialisable):
    enabled: bool
    reason: str
    max_size_bytes: int = 0
    dir: str = SHARED_CCACHE_DIR
    compression: bool = True
    sloppiness: tuple[str, ...] = ()
    hash_dir: bool = True
    base_dir: str | None = None  # ccache.conf's, for every user: the common parent of the host's trees
    reasons: dict[str, str] = field(default_factory=dict)
    overridden: tuple[str, ...] = ()
    private: bool = False  # no shared directory: every user keeps ccache's own default
    group_add: tuple[str, ...] = ()  # users the apply adds to the cache's group
    compiler: str = ""  # a shared cache: the versioned driver every sharing host names in CC
    store: CacheStorePlan | None = None  # this host runs the fleet's compile-cache store
    remote: CacheRemotePlan | None = None  # this host uses a store behind its local cache
    compiler_check: str = "mtime"
    extra_files: tuple[str, ...] = ()  # extra_files_to_hash (absolute paths)
    sharing: tuple[str, ...] = ()  # where hits can and cannot cross hosts, one line each
    fleet_role: str = ""  # fleet: store, writer, reader, or "excluded: why"
    tree_base_dir: str | None = None  # the base_dir `kprov env`/`kprov build` set for this plan's tree


@dataclass(frozen=True)
class DistccPlan(Serialisable):
    enabled: bool
    reason: str
    server: bool = False
    allow: tuple[str, ...] = ()
    allow_public: bool = False  # the user explicitly allowed public ranges
    listen: str | None = None
    server_jobs: int = 0
    client: bool = False
    hosts: tuple[str, ...] = ()  # DISTCC_HOSTS entries, e.g. "build2/8", "localhost/2"
    total_jobs: int = 0  # -j for a distributed build
    host_entries: tuple[HostEntry, ...] = ()  # /etc/hosts lines (marked block)
    reasons: dict[str, str] = field(default_factory=dict)
    compiler: str = ""  # the compiler name a client hands distcc (a versioned triplet driver)
    excluded: tuple[str, ...] = ()  # farm servers left out of DISTCC_HOSTS, each "NAME: why"
    server_packages: tuple[str, ...] = ()  # compilers a server installs for its clients


@dataclass(frozen=True)
class ConfigPlan(Serialisable):
    target: str
    compiler: str  # gcc or clang
    debug_info: str  # none, dwarf, btf
    lto: str  # none, thin, full
    build_dir: str | None
    make_command: str
    make_vars: dict[str, str] = field(default_factory=dict)  # LLVM=1, CC="ccache gcc", O=...
    kbuild_env: dict[str, str] = field(default_factory=dict)  # KBUILD_BUILD_* for reproducibility
    config_commands: tuple[str, ...] = ()  # scripts/config ... lines
    reasons: dict[str, str] = field(default_factory=dict)
    advice: tuple[str, ...] = ()
    # where the config facts come from: "evaluated" (scratch O=), "tree" (its .config), "table"
    source: str = "table"
    kconfig: KconfigFacts | None = None
    sanitizers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan(Serialisable):
    SCHEMA = PLAN_SCHEMA

    host: PlanHost
    jobs: JobsPlan
    zram: ZramPlan
    ccache: CcachePlan
    distcc: DistccPlan
    config: ConfigPlan
    packages: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # what `kprov env` exports (this tree, this build)
    warnings: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()  # names of values the user forced
    schema: int = PLAN_SCHEMA
    phases: tuple[PhasePlan, ...] = ()
    estimate: EstimatePlan | None = None
    # what /etc/profile.d/kprov-kbuild.sh exports to every user's login shell: only what holds for
    # every user and every tree (provision.planner.host_env)
    host_env: dict[str, str] = field(default_factory=dict)

    def to_role_vars(self) -> dict[str, Any]:
        """The ``kbuild_host_*`` variables the role takes (see its meta/argument_specs.yml)."""
        z, c, d = self.zram, self.ccache, self.distcc
        return {
            "kbuild_host_packages_enabled": True,
            "kbuild_host_packages": list(self.packages),
            "kbuild_host_zram_enabled": z.enabled,
            "kbuild_host_zram_algorithm": z.algorithm or "lz4",
            "kbuild_host_zram_percent": z.percent or 50,
            "kbuild_host_zram_priority": z.priority,
            "kbuild_host_zram_sysctls": dict(z.sysctls),
            "kbuild_host_ccache_enabled": c.enabled,
            "kbuild_host_ccache_max_size": ccache_size_string(c.max_size_bytes),
            "kbuild_host_ccache_dir": c.dir,
            "kbuild_host_ccache_compression": c.compression,
            "kbuild_host_ccache_sloppiness": list(c.sloppiness),
            "kbuild_host_ccache_hash_dir": c.hash_dir,
            "kbuild_host_ccache_base_dir": c.base_dir or "",
            "kbuild_host_ccache_store": c.store.to_role_var() if c.enabled and c.store else {},
            "kbuild_host_ccache_remote": c.remote.to_role_var() if c.enabled and c.remote else {},
            "kbuild_host_ccache_compiler_check": c.compiler_check,
            "kbuild_host_ccache_extra_files": list(c.extra_files),
            "kbuild_host_ccache_group_members": list(c.group_add),
            "kbuild_host_ccache_private": c.private,
            "kbuild_host_distcc_enabled": d.enabled,
            "kbuild_host_distcc_server": d.server,
            "kbuild_host_distcc_allow": list(d.allow),
            "kbuild_host_distcc_allow_public": d.allow_public,
            "kbuild_host_distcc_listen": d.listen or "",
            "kbuild_host_distcc_jobs": d.server_jobs,
            "kbuild_host_distcc_client": d.client,
            "kbuild_host_distcc_hosts": list(d.hosts),
            "kbuild_host_hosts_enabled": bool(d.host_entries),
            "kbuild_host_hosts_entries": [
                {"address": e.address, "names": list(e.names)} for e in d.host_entries
            ],
            "kbuild_host_buildenv_enabled": True,
            "kbuild_host_buildenv": dict(self.host_env),
            "kbuild_host_plan": self.to_dict(),
        }


@dataclass(frozen=True)
class PackageSet(Serialisable):
    """One distro family's packages, as the role's vars/<os_family>.yml lists them."""

    build: tuple[str, ...] = ()
    zram: tuple[str, ...] = ()
    ccache: tuple[str, ...] = ()
    distcc: tuple[str, ...] = ()
    clang: tuple[str, ...] = ()
    zram_tool: str = "none"  # zram-tools, zram-generator, zram-init, none
    redis: tuple[str, ...] = ()  # a compile cache store on Redis
    nginx: tuple[str, ...] = ()  # a compile cache store on nginx WebDAV
    cron: tuple[str, ...] = ()  # the WebDAV store's trim where systemd does not run (no timers)


@dataclass(frozen=True)
class PackageCatalog(Serialisable):
    """family (one of FAMILIES) -> PackageSet. Loaded by provision.facts.catalog, passed to the planner."""

    families: dict[str, PackageSet] = field(default_factory=dict)

    def for_family(self, family: str) -> PackageSet | None:
        return self.families.get(family)
