"""TODO."""

from __future__ import annotations

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import (
    HostFacts,
    KconfigFacts,
    KconfigRequest,
    TreeEvaluation,
)
from provision.model.goals import Goals
from provision.model.plan import (
    CcachePlan,
    ConfigPlan,
    DistccPlan,
    JobsPlan,
)
from provision.planner.build_dir import native_arch, target_arch
from provision.planner.common import (
    check_goals,
    ChosenConfig,
    kernel_version_of,
    PlanNotes,
    quote_make,
    KconfigTraits,
)
from provision.planner.make_line import plan_make_line, plan_make_vars
from provision.planner.traits import (
    base_traits,
    debug_commands,
    evaluated_text,
    kconfig_traits,
    lto_commands,
    usable_kconfig,
)
from provision.rules.names import (
    version_below,
)


def _running_kernel_gap(facts: HostFacts) -> str | None:
    """Why localmodconfig cannot work on this host (None when it can)."""
    running = facts.running_kernel
    if running is None:
        return (
            "the facts do not say whether this host has its running kernel's config and /proc/modules, "
            "which localmodconfig needs"
        )
    missing = []
    if not running.config_path:
        missing.append(f"the running kernel's config (no /proc/config.gz, no /boot/config-{facts.kernel_release or '<release>'})")
    if not running.modules_list:
        missing.append("its loaded-module list (no /proc/modules: a kernel without module support)")
    if missing:
        return f"localmodconfig needs {' and '.join(missing)}"
    return None


def _choose_target(facts: HostFacts, goals: Goals, reasons: dict, advice: list, notes: PlanNotes) -> str:
    tree = facts.tree
    if goals.target:
        reasons["target"] = f"{goals.target}: as asked"
        if goals.target == "localmodconfig" and not (tree and tree.has_config):
            gap = _running_kernel_gap(facts)
            if gap:
                notes.warn(f"--target localmodconfig: {gap}; make localmodconfig cannot work here")
            elif facts.in_container:
                notes.warn("--target localmodconfig in a container tailors the config to the host's loaded modules")
        return goals.target
    if tree and tree.has_config:
        reasons["target"] = (
            "olddefconfig: the tree has a .config; olddefconfig keeps it and answers new options "
            "with their defaults"
        )
        return "olddefconfig"
    if goals.for_this_machine and not facts.in_container:
        gap = _running_kernel_gap(facts)
        if gap is None:
            running = facts.running_kernel
            reasons["target"] = (
                f"localmodconfig: the kernel is for this machine, so keep only the {running.loaded_modules} "
                f"modules loaded now (/proc/modules), starting from the running kernel's config "
                f"({running.config_path}); about 10-20 min on 8 cores instead of 30-60 for a whole distro config"
            )
            return "localmodconfig"
        reasons["target"] = f"defconfig: {gap}; defconfig is the architecture's tested baseline"
        running = facts.running_kernel
        if running is not None and running.config_path:
            read = f"zcat {running.config_path}" if running.config_path.endswith(".gz") else f"cat {running.config_path}"
            advice.append(
                f"to start from the running kernel's config instead: {read} > BUILD_DIR/.config, then "
                "kprov plan --tree TREE --build-dir BUILD_DIR plans olddefconfig from it"
            )
        advice.append("for a quick compile test use --target tinyconfig (about 30 s of CPU)")
        return "defconfig"
    why = (
        "a container sees its host's loaded modules, so localmodconfig would trim for the wrong machine"
        if goals.for_this_machine
        else "the kernel is for another machine, whose modules this host cannot see"
    )
    reasons["target"] = f"defconfig: {why}; defconfig is the architecture's tested baseline"
    advice.append("for a quick compile test use --target tinyconfig (about 30 s of CPU)")
    return "defconfig"


def _target_class(target: str, facts: HostFacts, kconfig: KconfigFacts | None = None) -> str:
    klass = cal.TARGET_CLASS[target]
    tree = facts.tree
    modules = kconfig.modules if kconfig is not None else (tree.modules if tree and tree.has_config else 0)
    if target == "olddefconfig" and modules >= cal.DISTRO_CONFIG_MIN_MODULES:
        return "distro"
    return klass


def _choose_compiler(facts: HostFacts, goals: Goals, lto: str, notes: PlanNotes, reasons: dict) -> str:
    tools = facts.toolchain
    have_gcc, have_clang = bool(tools.get("gcc")), bool(tools.get("clang"))
    if goals.compiler != "auto":
        notes.forced("compiler")
        if lto != "none" and goals.compiler == "gcc":
            raise UserError(
                f"--lto {lto} needs clang: the kernel supports LTO only with clang (use --compiler clang)"
            )
        reasons["compiler"] = f"{goals.compiler}: as asked"
        chosen = goals.compiler
    elif lto != "none":
        reasons["compiler"] = f"clang: --lto {lto} needs clang (the kernel's LTO is clang-only)"
        chosen = "clang"
    elif facts.tree and facts.tree.config.get("CC_IS_CLANG") == "y" and have_clang:
        reasons["compiler"] = "clang: the tree's .config was made with clang"
        chosen = "clang"
    elif have_gcc:
        reasons["compiler"] = f"gcc {tools['gcc']}: installed, the kernel's default compiler"
        chosen = "gcc"
    elif have_clang:
        reasons["compiler"] = f"clang {tools['clang']}: installed (no gcc found)"
        chosen = "clang"
    elif not tools:
        # facts without tool versions (Ansible setup facts without kprov's probe): unknown, not absent
        reasons["compiler"] = "gcc: the facts carry no tool versions; gcc is the kernel's default compiler"
        return "gcc"
    else:
        reasons["compiler"] = "gcc: no compiler found; the build packages install gcc"
        notes.warn("no C compiler found (gcc or clang): `kprov apply` installs gcc with the build packages")
        return "gcc"
    if not tools.get(chosen):
        notes.warn(f"{chosen} is not installed: `kprov apply` installs it with the plan's packages")
    return chosen


def check_versions(facts: HostFacts, compiler: str, debug_info: str, notes: PlanNotes) -> None:
    """Warn about each installed tool below the tree's minimum (or the compiler's, without a tree)."""
    tree = facts.tree
    minimums = dict(tree.min_versions) if tree else {}
    where = "this tree's minimum" if tree else "the minimum of Linux 6.1 (no --tree given)"
    if not tree:
        minimums[compiler] = cal.COMPILER_MIN_DEFAULT[compiler]
    for tool, minimum in sorted(minimums.items()):
        have = facts.toolchain.get(tool)
        if tool in ("gcc", "clang") and tool != compiler:
            continue
        if have and version_below(have, minimum):
            notes.warn(f"{tool} {have} is below {where} {minimum}")
    if debug_info == "btf":
        pahole = facts.toolchain.get("pahole")
        minimum = (tree.min_versions.get("pahole") if tree else None) or cal.PAHOLE_MIN_BTF
        if not pahole:
            notes.warn("BTF debug info needs pahole (dwarves), which is not installed: `kprov apply` installs it")
        elif version_below(pahole, minimum):
            notes.warn(f"pahole {pahole} is below {minimum}, the minimum for BTF")


def _changes(
    facts: HostFacts, goals: Goals, target: str, compiler: str, base: KconfigTraits, reasons: dict, notes: PlanNotes
) -> tuple[list[str], str, str]:
    """The scripts/config arguments that turn what ``target`` produces into what the plan builds;
    returns them with the planned LTO and debug info."""
    commands: list[str] = []
    if goals.lto == "auto":
        lto = base.lto if compiler == "clang" else "none"
        if lto == "none":
            reasons["lto"] = "none: LTO adds a long, memory-hungry serial link and needs clang; ask for it with --lto"
            if base.lto != "none":
                reasons["lto"] += f" (the config has {base.lto} LTO, which gcc cannot build: olddefconfig drops it)"
        else:
            reasons["lto"] = f"{lto}: the config has it ({base.why})"
    else:
        lto = goals.lto
        notes.forced("lto")
        reasons["lto"] = f"{lto}: as asked"
        if lto != base.lto:
            commands += lto_commands(lto)
    if goals.debug_info == "auto":
        debug = base.debug_info
        reasons["debug_info"] = f"{debug}: {base.why}"
    else:
        debug = goals.debug_info
        notes.forced("debug_info")
        reasons["debug_info"] = f"{debug}: as asked ({base.why})"
    if debug != base.debug_info:
        commands += debug_commands(debug)
    if target in ("olddefconfig", "localmodconfig") and base.trusted_keys:
        where = {"running": "the running kernel's config", "tree": "the tree's .config"}.get(base.source, "the config")
        commands += [f"--set-str {o} ''" for o in cal.TRUSTED_KEY_OPTIONS]
        reasons["trusted_keys"] = (
            f"{where} names certificate files ({', '.join(base.trusted_keys)}) that are not in the source tree: "
            "empty SYSTEM_TRUSTED_KEYS/SYSTEM_REVOCATION_KEYS, else the build stops in certs/"
        )
    return commands, lto, debug


def _refused_lto(lto: str, base: KconfigTraits, compiler: str, target: str) -> str:
    blocked = f"; {target} sets {', '.join(base.lto_blocked)}" if base.lto_blocked else ""
    fix = (
        f"; to get LTO: scripts/config {' '.join('--disable ' + o for o in base.lto_blocked)} before olddefconfig"
        if base.lto_blocked
        else ""
    )
    return (
        f"--lto {lto}: Kconfig refuses clang LTO with this config (HAS_LTO_CLANG needs clang, ld.lld and the "
        f"LLVM tools, and neither GCOV_KERNEL nor KASAN{blocked}): the plan is for no LTO{fix}"
    )


def choose_config(facts: HostFacts, goals: Goals, notes: PlanNotes, tree_eval: TreeEvaluation | None) -> ChosenConfig:
    reasons: dict[str, str] = {}
    advice: list[str] = []
    target = _choose_target(facts, goals, reasons, advice, notes)
    if goals.target:
        notes.forced("target")
    compiler = _choose_compiler(facts, goals, goals.lto if goals.lto != "auto" else "none", notes, reasons)
    kconfig = usable_kconfig(tree_eval, target, notes)
    klass = _target_class(target, facts, kconfig)
    base = base_traits(target, facts, goals, kconfig, target_arch(facts, goals))
    commands, lto, debug = _changes(facts, goals, target, compiler, base, reasons, notes)

    final = kconfig
    if kconfig is not None and kconfig.source == "evaluated" and tuple(commands) != kconfig.script_args:
        notes.warn("the Kconfig evaluation applied other changes than this plan: its result is not used")
        final = None
    elif kconfig is not None and kconfig.source == "tree" and commands:
        final = None  # the tree's .config as it is, before the plan's changes: predict the result
    flags = base.flags if debug == base.debug_info else ()
    if final is not None:
        # what Kconfig really made of the target and the plan's changes
        for option in final.refused:
            if "LTO" in option and lto != "none":
                notes.warn(_refused_lto(lto, base, compiler, target))
            else:
                notes.warn(f"Kconfig refuses {option} with this config: the make line cannot produce it")
        if final.debug_info != debug:
            notes.warn(f"debug info {debug} was planned, but Kconfig gives {final.debug_info} with this config")
        if final.lto != lto:
            reasons["lto"] += f"; Kconfig gives LTO {final.lto} with this config, so the plan is for that"
        lto, debug, flags = final.lto, final.debug_info, final.debug_flags
        sanitizers, objtool, modules = final.sanitizers, final.objtool_vmlinux, final.modules
        source = final.source
        shown = " + ".join(final.commands) if final.commands else "its .config"
        took = f" ({final.seconds:.1f} s)" if final.source == "evaluated" else ""
        reasons["kconfig"] = (
            f"{'evaluated in a scratch O=' if final.source == 'evaluated' else 'read from the tree'}: {shown}{took} -> "
            f"{evaluated_text(final)}; config hash {final.config_hash[:12]}"
        )
    else:
        if lto != "none" and (base.lto_blocked or compiler != "clang"):
            notes.warn(_refused_lto(lto, base, compiler, target))
            reasons["lto"] += "; Kconfig refuses it with this config, so the plan is for LTO none"
            lto = "none"
        sanitizers, objtool, modules, source = base.sanitizers, base.objtool, base.modules, base.source
        if source == "table":
            reasons["kconfig"] = (
                "table: what the target produces per arch and kernel version (docs/calibration.md §9); "
                + ("give --tree to evaluate the tree's real .config" if facts.tree is None else "not evaluated here")
            )
    if tree_eval is not None:
        for note in tree_eval.notes:
            notes.warn(note)

    if klass in ("allmod", "allyes"):
        out = cal.build_output_gib(klass, debug)
        minutes = cal.build_cpu_seconds(klass, compiler, debug) / 60
        notes.warn(
            f"{target} is huge: ~{out:.0f} GiB of build output and ~{minutes:.0f} CPU-minutes "
            "(a whole-tree compile test, not a kernel to boot)"
        )
    return ChosenConfig(
        target=target,
        target_class=klass,
        compiler=compiler,
        debug_info=debug,
        lto=lto,
        reasons=reasons,
        advice=tuple(advice),
        commands=tuple(commands),
        flags=tuple(flags),
        sanitizers=tuple(sanitizers),
        objtool=bool(objtool),
        modules=modules,
        version=kernel_version_of(facts, kconfig),
        source=source,
        kconfig=final,
    )


def finish_config(
    facts: HostFacts,
    goals: Goals,
    cfg: ChosenConfig,
    jobs: JobsPlan,
    ccache: CcachePlan,
    distcc: DistccPlan,
    extra_commands: tuple[str, ...],
    build_dir: str | None,
    dir_reasons: dict[str, str],
    notes: PlanNotes,
) -> ConfigPlan:
    reasons = dict(cfg.reasons)
    reasons.update(dir_reasons)
    driver = distcc.compiler or (ccache.compiler if ccache.enabled else "")
    make_vars = plan_make_vars(facts, goals, cfg, build_dir, ccache.enabled, distcc.client, notes, reasons, driver)
    tree = facts.tree.path if facts.tree else None
    config_args = list(cfg.commands) + [c for c in extra_commands if c not in cfg.commands]
    j = distcc.total_jobs if distcc.client else jobs.value
    prefix = "CCACHE_PREFIX=distcc " if distcc.client and ccache.enabled else ""
    config_commands: tuple[str, ...] = ()
    if config_args:
        script = f"{tree.rstrip('/')}/scripts/config" if tree else "scripts/config"
        dot_config = f"{build_dir.rstrip('/')}/.config" if build_dir else ".config"
        config_commands = (
            plan_make_line(tree, make_vars, None, None, [cfg.target]),
            f"{quote_make(script)} --file {quote_make(dot_config)} " + " ".join(config_args),
        )
        command = prefix + plan_make_line(tree, make_vars, j, jobs.load, ["olddefconfig", "all"])
    else:
        command = prefix + plan_make_line(tree, make_vars, j, jobs.load, [cfg.target, "all"])
    reasons["make"] = (
        "CC and LLVM go on the make command line: the kernel Makefile assigns CC itself, so an environment CC "
        "is ignored"
    )
    kbuild_env = dict(cal.KBUILD_ENV)
    reasons["kbuild_env"] = (
        "fixed KBUILD_BUILD_TIMESTAMP/USER/HOST/VERSION: identical builds give identical objects, so ccache hits "
        "and shared caches work"
    )
    advice = list(cfg.advice)
    return ConfigPlan(
        target=cfg.target,
        compiler=cfg.compiler,
        debug_info=cfg.debug_info,
        lto=cfg.lto,
        build_dir=build_dir,
        make_command=command,
        make_vars=make_vars,
        kbuild_env=kbuild_env,
        config_commands=config_commands,
        reasons=reasons,
        advice=tuple(advice),
        source=cfg.source,
        kconfig=cfg.kconfig,
        sanitizers=cfg.sanitizers,
    )


def _request_parts(facts: HostFacts, goals: Goals) -> tuple[str, str, dict[str, str]]:
    """Target, compiler and the Kconfig-deciding make variables, the same for every pass."""
    notes = PlanNotes()
    target = _choose_target(facts, goals, {}, [], notes)
    compiler = _choose_compiler(facts, goals, goals.lto if goals.lto != "auto" else "none", notes, {})
    make_vars: dict[str, str] = {}
    native = native_arch(facts)
    if goals.arch and goals.arch != native:
        make_vars["ARCH"] = goals.arch
        if compiler == "gcc" and cal.CROSS_COMPILE_PREFIX.get(goals.arch):
            make_vars["CROSS_COMPILE"] = cal.CROSS_COMPILE_PREFIX[goals.arch]
    if compiler == "clang":
        make_vars["LLVM"] = "1"
    return target, compiler, make_vars


def config_request(facts: HostFacts, goals: Goals) -> KconfigRequest:
    """What provision.kconfig should evaluate for this plan: the planned target with the real
    build's ARCH/CROSS_COMPILE/LLVM (no ccache or distcc: they do not change Kconfig's answers)."""
    check_goals(goals)
    target, _compiler, make_vars = _request_parts(facts, goals)
    tree = facts.tree
    if tree is None:
        return KconfigRequest(target=target, make_vars=make_vars, evaluable=False, why_not="no --tree")
    if not tree.clean:
        return KconfigRequest(
            target=target,
            make_vars=make_vars,
            evaluable=False,
            why_not="the tree is configured in place (a .config or include/config in the source directory): "
            "kbuild refuses a scratch O= for it",
        )
    seed = None
    if target == "olddefconfig" and tree.has_config and goals.build_dir:
        seed = f"{goals.build_dir.rstrip('/')}/.config"
    elif target in ("olddefconfig", "localmodconfig") and tree.has_config:
        seed = f"{tree.path.rstrip('/')}/.config"
    return KconfigRequest(target=target, make_vars=make_vars, seed_config=seed)


def config_commands(facts: HostFacts, goals: Goals, base: KconfigFacts) -> tuple[str, ...]:
    """The scripts/config arguments the plan applies to ``base``, the .config the planned target
    gave in a scratch ``O=`` (provision.kconfig applies them and evaluates the result)."""
    target, compiler, _vars = _request_parts(facts, goals)
    traits = kconfig_traits(base, "evaluated")
    commands, _lto, _debug = _changes(facts, goals, target, compiler, traits, {}, PlanNotes())
    return tuple(commands)
