"""The make line decision: the make command that configures and builds the kernel, the make
variables on it, and the environment ``kprov env`` exports.

From the chosen config, the build directory and what the jobs, ccache and distcc decisions
planned, gathered in :class:`MakeInputs`. ``CC`` goes on the make command line and never in the
environment: the kernel's top Makefile assigns ``CC`` itself, and a command-line variable beats
a Makefile assignment. :func:`plan_config` returns the :class:`ConfigPlan` (the config choices
with the make command and the scripts/config commands); :func:`build_env` the environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision import calibration as cal
from provision.model.facts import (
    HostFacts,
)
from provision.model.goals import Goals
from provision.model.plan import (
    CcachePlan,
    ConfigPlan,
    DistccPlan,
    JobsPlan,
)
from provision.planner import shared_cache as cache_rules
from provision.planner.build_dir import BuildDir
from provision.planner.common import ChosenConfig, PlanNotes, load_str, native_arch, quote_make


@dataclass(frozen=True)
class MakeInputs:
    """What the make line is made of: the planned compiler and architecture, the tree and ``O=``,
    the compiler wrappers in front of the compiler, and ``-j``/``-l``."""

    compiler: str  # gcc or clang
    arch: str | None  # the asked --arch (kernel ARCH)
    native_arch: str | None  # the kernel ARCH of this host
    machine: str  # this host's machine name, for the reason of a cross build
    family: str = ""  # the distro family, whose cross toolchain names the CROSS_COMPILE prefix
    tree: str | None = None
    build_dir: str | None = None  # O=
    ccache: bool = False
    distcc_client: bool = False
    driver: str = ""  # the versioned compiler name handed to distcc servers or named for a shared cache
    jobs: int = 0  # -j: the distcc total for a distcc client
    load: float | None = None  # -l

    @property
    def cross(self) -> bool:
        return bool(self.arch) and self.arch != self.native_arch


def make_inputs(
    facts: HostFacts, goals: Goals, cfg: ChosenConfig, build_dir: str | None, jobs: JobsPlan, ccache: CcachePlan,
    distcc: DistccPlan,
) -> MakeInputs:
    """The make line's inputs from the earlier decisions."""
    return MakeInputs(
        compiler=cfg.compiler,
        arch=goals.arch,
        native_arch=native_arch(facts),
        machine=facts.arch,
        family=facts.distro.family,
        tree=facts.tree.path if facts.tree else None,
        build_dir=build_dir,
        ccache=ccache.enabled,
        distcc_client=distcc.client,
        driver=distcc.compiler or (ccache.compiler if ccache.enabled else ""),
        jobs=distcc.total_jobs if distcc.client else jobs.value,
        load=jobs.load,
    )


def _cc_value(compiler: str, cross: str, ccache: bool, distcc_client: bool, driver: str = "") -> str | None:
    name = driver or (compiler if compiler == "clang" else f"{cross}gcc")
    if ccache:
        return f"ccache {name}"
    if distcc_client:
        return f"distcc {name}"
    return None


def plan_make_vars(make: MakeInputs, notes: PlanNotes) -> tuple[dict[str, str], dict[str, str]]:
    """The make variables (O, ARCH, CROSS_COMPILE, LLVM, CC) and their reasons (arch)."""
    make_vars: dict[str, str] = {}
    reasons: dict[str, str] = {}
    if make.build_dir:
        make_vars["O"] = make.build_dir
    cross = ""
    if make.cross:
        make_vars["ARCH"] = make.arch
        if make.compiler == "gcc":
            cross = cal.cross_prefix(make.family, make.arch)
            if cross:
                make_vars["CROSS_COMPILE"] = cross
            else:
                notes.warn(f"no known cross-compiler prefix for ARCH={make.arch}: set CROSS_COMPILE yourself")
            reasons["arch"] = (
                f"ARCH={make.arch}" + (f" CROSS_COMPILE={cross}" if cross else "") + f": cross build from {make.machine} "
                "with the GNU cross toolchain (docs/calibration.md §17)"
            )
        else:
            reasons["arch"] = (
                f"ARCH={make.arch} LLVM=1: cross build from {make.machine}; clang and the LLVM tools target every "
                "architecture themselves, so no CROSS_COMPILE and no cross gcc packages (docs/calibration.md §17)"
            )
    if make.compiler == "clang":
        make_vars["LLVM"] = "1"
    cc = _cc_value(make.compiler, cross, make.ccache, make.distcc_client, make.driver)
    if cc:
        make_vars["CC"] = cc
    return make_vars, reasons


def plan_make_line(tree: str | None, make_vars: dict[str, str], jobs: int | None, load: float | None, goals_: list[str]) -> str:
    words = ["make"]
    if tree:
        words += ["-C", quote_make(tree)]
    if jobs:
        words.append(f"-j{jobs}")
    if load:
        words.append(f"-l{load_str(load)}")
    words += [f"{k}={quote_make(v)}" for k, v in make_vars.items()]
    words += goals_
    return " ".join(words)


def plan_config(
    cfg: ChosenConfig, build: BuildDir, make: MakeInputs, extra_commands: tuple[str, ...], notes: PlanNotes
) -> ConfigPlan:
    """The config part of the plan: the choices, the make command (with the scripts/config
    commands when the plan changes the .config; ``extra_commands`` come from distcc) and every
    reason of the config, the build directory and the make line."""
    make_vars, make_reasons = plan_make_vars(make, notes)
    reasons = {**cfg.reasons, **build.reasons, **make_reasons}
    tree, build_dir = make.tree, make.build_dir
    config_args = list(cfg.commands) + [c for c in extra_commands if c not in cfg.commands]
    prefix = "CCACHE_PREFIX=distcc " if make.distcc_client and make.ccache else ""
    config_commands: tuple[str, ...] = ()
    if config_args:
        script = f"{tree.rstrip('/')}/scripts/config" if tree else "scripts/config"
        dot_config = f"{build_dir.rstrip('/')}/.config" if build_dir else ".config"
        config_commands = (
            plan_make_line(tree, make_vars, None, None, [cfg.target]),
            f"{quote_make(script)} --file {quote_make(dot_config)} " + " ".join(config_args),
        )
        command = prefix + plan_make_line(tree, make_vars, make.jobs, make.load, ["olddefconfig", "all"])
    else:
        command = prefix + plan_make_line(tree, make_vars, make.jobs, make.load, [cfg.target, "all"])
    reasons["make"] = (
        "CC and LLVM go on the make command line: the kernel Makefile assigns CC itself, so an environment CC "
        "is ignored"
    )
    reasons["kbuild_env"] = (
        "fixed KBUILD_BUILD_TIMESTAMP/USER/HOST/VERSION: identical builds give identical objects, so ccache hits "
        "and shared caches work"
    )
    return ConfigPlan(
        target=cfg.target,
        compiler=cfg.compiler,
        debug_info=cfg.debug_info,
        lto=cfg.lto,
        build_dir=build_dir,
        make_command=command,
        make_vars=make_vars,
        kbuild_env=dict(cal.KBUILD_ENV),
        config_commands=config_commands,
        reasons=reasons,
        advice=cfg.advice,
        source=cfg.source,
        kconfig=cfg.kconfig,
        sanitizers=cfg.sanitizers,
    )


def build_env(cfg: ConfigPlan, jobs: JobsPlan, ccache: CcachePlan, distcc: DistccPlan) -> dict[str, str]:
    """What ``kprov env`` exports. ``KPROV_MAKE_ARGS`` holds the make variables (use it with eval)."""
    j = distcc.total_jobs if distcc.client else jobs.value
    env = {"MAKEFLAGS": f"-j{j}" + (f" -l{load_str(jobs.load)}" if jobs.load else "")}
    env.update(cfg.kbuild_env)
    if cfg.build_dir:
        env["KBUILD_OUTPUT"] = cfg.build_dir
    if ccache.enabled and not ccache.private:
        env["CCACHE_DIR"] = ccache.dir
        if not ccache.hash_dir:
            env["CCACHE_NOHASHDIR"] = "true"
        if ccache.base_dir:
            env["CCACHE_BASEDIR"] = ccache.base_dir
    if distcc.client:
        if ccache.enabled:
            env["CCACHE_PREFIX"] = "distcc"
        env["DISTCC_HOSTS"] = " ".join(distcc.hosts)
    env.update(cache_rules.env(ccache))
    if "ARCH" in cfg.make_vars:
        # a cross build: kbuild reads ARCH, CROSS_COMPILE and LLVM from the environment too, so a plain
        # make in this environment builds for that architecture (CC stays on the make line)
        env.update({k: cfg.make_vars[k] for k in ("ARCH", "CROSS_COMPILE", "LLVM") if k in cfg.make_vars})
    args = {k: v for k, v in cfg.make_vars.items() if k != "O"}
    env["KPROV_MAKE_ARGS"] = " ".join(f"{k}={quote_make(v)}" for k, v in args.items())
    return env
