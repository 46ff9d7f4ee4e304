"""TODO."""

from __future__ import annotations

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
from provision.planner.build_dir import native_arch
from provision.planner.common import ChosenConfig, load_str, PlanNotes, quote_make


def _cc_value(compiler: str, cross: str, ccache: bool, distcc_client: bool, driver: str = "") -> str | None:
    name = driver or (compiler if compiler == "clang" else f"{cross}gcc")
    if ccache:
        return f"ccache {name}"
    if distcc_client:
        return f"distcc {name}"
    return None


def plan_make_vars(facts: HostFacts, goals: Goals, cfg: ChosenConfig, build_dir: str | None, ccache: bool, client: bool, notes: PlanNotes, reasons: dict, driver: str = "") -> dict[str, str]:
    make_vars: dict[str, str] = {}
    if build_dir:
        make_vars["O"] = build_dir
    native = native_arch(facts)
    cross = ""
    if goals.arch and goals.arch != native:
        make_vars["ARCH"] = goals.arch
        if cfg.compiler == "gcc":
            cross = cal.CROSS_COMPILE_PREFIX.get(goals.arch, "")
            if cross:
                make_vars["CROSS_COMPILE"] = cross
            else:
                notes.warn(f"no known cross-compiler prefix for ARCH={goals.arch}: set CROSS_COMPILE yourself")
        reasons["arch"] = f"ARCH={goals.arch}: cross build from {facts.arch}"
    if cfg.compiler == "clang":
        make_vars["LLVM"] = "1"
    cc = _cc_value(cfg.compiler, cross, ccache, client, driver)
    if cc:
        make_vars["CC"] = cc
    return make_vars


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
    args = {k: v for k, v in cfg.make_vars.items() if k != "O"}
    env["KPROV_MAKE_ARGS"] = " ".join(f"{k}={quote_make(v)}" for k, v in args.items())
    return env
