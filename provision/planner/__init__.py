"""HostFacts + Goals -> Plan: every number with the reason it has.

This module is pure: it reads nothing and runs nothing (tests/test_purity.py enforces its imports),
so the CLI, the fleet planner and the role's filter plugin all get the same plan from the same
facts. Every constant comes from :mod:`provision.calibration`, which names its source.

The order of decisions follows their dependencies:

1. config choices (target, compiler, debug info, LTO, sanitizers): from the .config the target
   really produces when kprov evaluated it in a scratch ``O=`` (a :class:`TreeEvaluation` from
   provision.kconfig), else from the tree's .config, else from the table of what each target
   produces per architecture and kernel version;
2. the build directory (``O=`` on tmpfs takes RAM) and the memory model by phase: the parallel
   compile phase needs ``base + N x per-job`` within the budget; the serial phases (vmlinux link,
   objtool over vmlinux.o, BTF, LTO link) each need their own peak, within the budget plus swap;
3. zram: when memory (not CPUs) limits ``-j``, when a serial phase does not fit, or on a small host;
   its capacity is counted (conservatively) at its measured compression ratio;
4. ``-j`` from the compile phase only (a serial phase that does not fit gets zram, swap or config
   advice, never a lower ``-j``); ``-l`` only when asked; ccache; distcc;
5. the make command line, the environment ``kprov env`` exports, time estimates, the packages.

Figures come from a calibration profile of this tree (``kprov calibrate``) when one matches the
evaluated config and compiler, else from :mod:`provision.calibration`; every reason says which.

Why ``CC`` goes on the make command line and never in the environment: the kernel's top Makefile
assigns ``CC = $(CROSS_COMPILE)gcc`` (or clang with ``LLVM=1``), and a Makefile assignment beats an
environment variable, while a command-line variable beats both. ``kprov env`` therefore exports the
make variables as ``KPROV_MAKE_ARGS`` (use ``eval make $KPROV_MAKE_ARGS ...``) and exports only the
variables the kernel or the tools really read from the environment (``MAKEFLAGS``,
``KBUILD_BUILD_*``, ``KBUILD_OUTPUT``, ``CCACHE_*``, ``DISTCC_HOSTS``).
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass, field

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import (
    CalibrationProfile,
    CompilerFacts,
    DiskFacts,
    HostFacts,
    KconfigFacts,
    KconfigRequest,
    TreeEvaluation,
)
from provision.model.goals import Goals, HostEntry, check_host_entries
from provision.model.plan import (
    CcachePlan,
    ConfigPlan,
    DistccPlan,
    EstimatePlan,
    JobsPlan,
    PackageCatalog,
    PackageSet,
    PhasePlan,
    Plan,
    PlanHost,
    ZramPlan,
)
from provision.model.schema import COMPILERS, DEBUG_INFO, LTO, TARGETS
from provision.planner.build_dir import plan_build_dir, check_disk, on_tmpfs
from provision.planner.ccache import cache_inputs, plan_ccache
from provision.planner.common import check_goals, PlanNotes, usable_cpus
from provision.planner.config import check_versions, choose_config, finish_config
from provision.planner.distcc import plan_distcc
from provision.planner.jobs import plan_jobs, serial_shortfall
from provision.planner.make_line import build_env
from provision.planner.memory import existing_zram_gain, plan_memory
from provision.planner.packages import plan_packages
from provision.planner.phases import plan_estimate, plan_phases
from provision.planner.shared_cache import plan_shared_cache
from provision.planner.zram import plan_zram
from provision.rules.addresses import (
    address_in,
    check_listen,
    loopback_for,
    parse_allow,
    parse_ip,
)
from provision.rules.distcc import check_distcc_hosts
from provision.rules.names import (
    check_kernel_arch,
    check_owned_dir,
    check_packages,
    check_path,
    check_size_bytes,
    check_user_name,
    parse_version,
    version_below,
)
from provision.rules.system import (
    check_sysctls,
    check_zram_algorithm,
    check_zram_percent,
)
from provision.units import GIB, MIB, human_bytes


def plan(
    facts: HostFacts, goals: Goals, catalog: PackageCatalog, tree_eval: TreeEvaluation | None = None
) -> Plan:
    """Plan a kernel build host. Raises UserError for goals no plan can honour.

    ``tree_eval`` carries what provision.kconfig and provision.calibrate learnt about the tree:
    the .config the planned target really produces and a matching calibration profile.
    """
    check_goals(goals)
    notes = PlanNotes()
    pkgs = catalog.for_family(facts.distro.family)
    cpus = usable_cpus(facts)
    cfg = choose_config(facts, goals, notes, tree_eval)
    check_versions(facts, cfg.compiler, cfg.debug_info, notes)
    profile = tree_eval.profile if tree_eval is not None else None
    dir_reasons: dict[str, str] = {}
    build_dir, build_disk = plan_build_dir(facts, goals, cfg, notes, dir_reasons)
    tmpfs = int(cal.build_output_gib(cfg.target_class, cfg.debug_info) * GIB) if build_dir and on_tmpfs(build_disk) else 0
    if tmpfs:
        notes.warn(
            f"the build directory is on {build_disk.fstype} ({build_disk.mount}): its ~{human_bytes(tmpfs)} of build output "
            "takes RAM, counted out of the memory budget"
        )
    mem, thin_jobs = plan_memory(facts, cfg, cpus, profile, tmpfs)
    if thin_jobs:
        cfg.reasons["lto"] += (
            f" (ld.lld runs one ThinLTO backend per CPU, ~{cal.THINLTO_PER_BACKEND_MIB} MiB each: {thin_jobs} fit "
            f"here, so if the link runs out of memory add --thinlto-jobs={thin_jobs} to the linker flags)"
        )
    zram, gain = plan_zram(facts, goals, pkgs, mem, cpus, notes, serial_shortfall(facts, cfg, mem, cpus))
    if not zram.enabled and goals.zram is not False:
        gain = existing_zram_gain(facts, mem)
    if gain:
        # docs/calibration.md §3: with swap on zram the kernel moves idle pages of the jobs out to
        # make room for the page cache, so a cap's page-cache headroom is the build's too (224 and
        # 192 MiB caps: -j2 fastest, -j3 killed once the need passed the cap + zram)
        gain += mem.headroom
    jobs = plan_jobs(facts, goals, cfg, mem, gain, notes)
    ccache = plan_ccache(facts, goals, cfg, pkgs, notes, profile)
    ccache = plan_shared_cache(facts, goals, ccache, cache_inputs(facts, cfg, mem, jobs, profile, build_dir), notes.warn)
    distcc, extra = plan_distcc(facts, goals, cfg, mem, gain, jobs, ccache, notes)
    check_disk(facts, cfg, build_dir, build_disk, ccache, notes, dir_reasons)
    config = finish_config(facts, goals, cfg, jobs, ccache, distcc, extra, build_dir, dir_reasons, notes)
    j = distcc.total_jobs if distcc.client else jobs.value
    estimate, seconds = plan_estimate(facts, cfg, mem, j, profile, thin_jobs)
    phases = plan_phases(facts, cfg, mem, jobs.value, gain, zram, seconds, notes)
    packages = plan_packages(facts, pkgs, cfg, zram, ccache, distcc, notes)
    host = PlanHost(
        hostname=facts.hostname,
        arch=facts.arch,
        usable_cpus=cpus,
        memory_bytes=facts.memory.effective_bytes,
        distro=facts.distro.id,
        family=facts.distro.family,
        virtualization=facts.virtualization,
        zram_compressors=tuple(facts.zram.compressors),
    )
    return Plan(
        host=host,
        jobs=jobs,
        zram=zram,
        ccache=ccache,
        distcc=distcc,
        config=config,
        packages=packages,
        env=build_env(config, jobs, ccache, distcc),
        warnings=tuple(notes.warnings),
        overrides=tuple(notes.overrides),
        phases=phases,
        estimate=estimate,
    )
