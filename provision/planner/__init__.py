"""HostFacts + Goals -> Plan: every number with the reason it has.

The planner owns every decision of a plan: the config, the build directory, the memory model,
zram, ``-j``, ccache and the shared compile cache, distcc, the make line, the packages, the build
phases and the time estimate. :func:`plan` below is the order of those decisions; each has its
own module, takes the facts, the goals and the earlier decisions, and returns its part of the
plan with its reasons. A decision changes nothing it is handed except the one collector of
warnings and overrides, :class:`~provision.planner.common.PlanNotes`.

The planner is pure: it reads nothing and runs nothing, so the CLI, the fleet planner and the
role's filter plugin all get the same plan from the same facts. It imports only the model, the
rules, :mod:`provision.calibration`, :mod:`provision.units`, :mod:`provision.errors` and
:mod:`provision.paths`: nothing that does I/O (tests/test_purity.py and the import-linter
contracts in pyproject.toml check that). Every constant comes from :mod:`provision.calibration`,
which names its source; figures come from a calibration profile of this tree (``kprov
calibrate``) when one matches the evaluated config and compiler, and every reason says which.

The order follows the dependencies:

1. the config (target, compiler, debug info, LTO, sanitizers): from the .config the target really
   produces when provision.tree.kconfig evaluated it in a scratch ``O=`` (a
   :class:`TreeEvaluation`), else from the tree's .config, else from the table of what each
   target produces per architecture and kernel version;
2. the build directory (``O=`` on tmpfs takes RAM) and the memory model by phase: the parallel
   compile phase needs ``base + N x per-job`` within the budget; the serial phases (vmlinux link,
   objtool over vmlinux.o, BTF, LTO link) each need their own peak, within the budget plus swap;
3. zram: when memory (not CPUs) limits ``-j``, when a serial phase does not fit, or on a small host;
   its capacity is counted (conservatively) at its measured compression ratio;
4. ``-j`` from the compile phase, lowered when a serial phase beside the modfinal jobs (the
   vmlinux link, BTF) does not fit and a lower ``-j`` costs less time than zram; a phase no ``-j``
   makes fit gets zram, swap or config advice; ``-l`` only when asked; ccache and the shared
   cache; distcc;
5. the make command line, the time estimate and the phases, the packages, the environment
   ``kprov env`` exports, and the part of it every user's login shell gets (host_env).

Why ``CC`` goes on the make command line and never in the environment: the kernel's top Makefile
assigns ``CC = $(CROSS_COMPILE)gcc`` (or clang with ``LLVM=1``), and a Makefile assignment beats an
environment variable, while a command-line variable beats both. ``kprov env`` therefore exports the
make variables as ``KPROV_MAKE_ARGS`` (use ``eval make $KPROV_MAKE_ARGS ...``) and exports only the
variables the kernel or the tools really read from the environment (``MAKEFLAGS``,
``KBUILD_BUILD_*``, ``KBUILD_OUTPUT``, ``CCACHE_*``, ``DISTCC_HOSTS``).
"""

from __future__ import annotations

from provision.model.facts import HostFacts, TreeEvaluation
from provision.model.goals import Goals
from provision.model.plan import PackageCatalog, Plan, PlanHost
from provision.planner.build_dir import check_disk, plan_build_dir
from provision.planner.ccache import cache_inputs, plan_ccache
from provision.planner.common import PlanNotes, check_goals, usable_cpus
from provision.planner.config import check_versions, choose_config
from provision.planner.distcc import plan_distcc
from provision.planner.host_env import host_env
from provision.planner.jobs import plan_jobs
from provision.planner.make_line import build_env, make_inputs, plan_config
from provision.planner.memory import plan_memory, serial_shortfall, thinlto_note
from provision.planner.packages import plan_packages
from provision.planner.phases import plan_estimate, plan_phases
from provision.planner.shared_cache import plan_shared_cache
from provision.planner.zram import plan_zram


def plan(
    facts: HostFacts, goals: Goals, catalog: PackageCatalog, tree_eval: TreeEvaluation | None = None
) -> Plan:
    """Plan a kernel build host. Raises UserError for goals no plan can honour.

    ``tree_eval`` carries what provision.tree.kconfig and provision.tree.calibrate learnt about the
    tree: the .config the planned target really produces and a matching calibration profile.
    """
    check_goals(goals)
    notes = PlanNotes()
    pkgs = catalog.for_family(facts.distro.family)
    cpus = usable_cpus(facts)
    profile = tree_eval.profile if tree_eval is not None else None
    cfg = choose_config(facts, goals, tree_eval, notes)
    notes.warn_all(check_versions(facts, cfg.compiler, cfg.debug_info))
    build = plan_build_dir(facts, goals, cfg, notes)
    mem = plan_memory(facts, cfg, cpus, profile, build.tmpfs_bytes)
    cfg = cfg.with_reason("lto", thinlto_note(mem))
    zram, gain = plan_zram(facts, goals, pkgs, mem, cpus, serial_shortfall(facts, cfg, mem, cpus), notes)
    jobs = plan_jobs(facts, goals, cfg, mem, gain, notes, zram, profile)
    ccache = plan_ccache(facts, goals, cfg, pkgs, profile, notes)
    ccache = plan_shared_cache(facts, goals, ccache, cache_inputs(facts, cfg, mem, jobs, profile, build.path), notes)
    distcc, distcc_commands = plan_distcc(facts, goals, cfg, mem, gain, jobs, ccache, notes)
    build = check_disk(facts, cfg, build, ccache, notes)
    make = make_inputs(facts, goals, cfg, build.path, jobs, ccache, distcc)
    config = plan_config(cfg, build, make, distcc_commands, notes)
    estimate, seconds = plan_estimate(
        facts, cfg, mem, make.jobs, profile, distributed=distcc.client, ccache=ccache.enabled
    )
    phases = plan_phases(facts, cfg, mem, jobs.value, gain, zram, seconds, notes)
    packages = plan_packages(facts, pkgs, cfg, zram, ccache, distcc, notes, make)
    env = build_env(config, jobs, ccache, distcc)
    return Plan(
        host=_host(facts, cpus),
        jobs=jobs,
        zram=zram,
        ccache=ccache,
        distcc=distcc,
        config=config,
        packages=packages,
        env=env,
        host_env=host_env(env, ccache),
        warnings=tuple(notes.warnings),
        overrides=tuple(notes.overrides),
        phases=phases,
        estimate=estimate,
    )


def _host(facts: HostFacts, cpus: int) -> PlanHost:
    """The host the plan is for, as the plan reports it."""
    return PlanHost(
        hostname=facts.hostname,
        arch=facts.arch,
        usable_cpus=cpus,
        memory_bytes=facts.memory.effective_bytes,
        distro=facts.distro.id,
        family=facts.distro.family,
        virtualization=facts.virtualization,
        zram_compressors=tuple(facts.zram.compressors),
    )
