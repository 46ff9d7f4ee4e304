"""The config decision: which target makes the .config, which compiler builds it, and the debug
info, LTO and sanitizers the build will have.

From the goals and the facts (the tree's .config, the installed toolchain, the running kernel's
config) and, when provision.tree.kconfig evaluated the tree in a scratch ``O=``, the .config the
target really produces (a :class:`TreeEvaluation`); else from the table of what each target
produces per architecture and kernel version. :func:`choose_config` returns a
:class:`ChosenConfig`: the choices with a reason for each, the advice, and the scripts/config
arguments that turn what the target produces into what the plan builds.

:func:`config_request` and :func:`config_commands` tell provision.tree.kconfig what to evaluate,
from the same choices.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import (
    HostFacts,
    KconfigFacts,
    KconfigRequest,
    TreeEvaluation,
)
from provision.model.goals import Goals
from provision.planner.common import (
    ChosenConfig,
    KconfigTraits,
    PlanNotes,
    check_goals,
    kernel_version_of,
    native_arch,
    target_arch,
)
from provision.planner.make_line import MakeInputs, plan_make_vars
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

_TINYCONFIG_ADVICE = "for a quick compile test use --target tinyconfig (about 30 s of CPU)"


@dataclass(frozen=True)
class Choice:
    """One config choice with its reason, and the advice and warnings that come with it."""

    value: str
    reason: str
    advice: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Changes:
    """What the plan changes in the .config the target produces: the scripts/config arguments,
    the LTO and debug info they give, and the reasons (lto, debug_info, trusted_keys)."""

    commands: tuple[str, ...]
    lto: str
    debug_info: str
    reasons: dict[str, str]


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


def _choose_target(facts: HostFacts, goals: Goals) -> Choice:
    tree = facts.tree
    if goals.target:
        warnings = ()
        if goals.target == "localmodconfig" and not (tree and tree.has_config):
            gap = _running_kernel_gap(facts)
            if gap:
                warnings = (f"--target localmodconfig: {gap}; make localmodconfig cannot work here",)
            elif facts.in_container:
                warnings = ("--target localmodconfig in a container tailors the config to the host's loaded modules",)
        return Choice(goals.target, f"{goals.target}: as asked", warnings=warnings)
    if tree and tree.has_config:
        return Choice(
            "olddefconfig",
            "olddefconfig: the tree has a .config; olddefconfig keeps it and answers new options with their defaults",
        )
    if goals.for_this_machine and not facts.in_container:
        gap = _running_kernel_gap(facts)
        running = facts.running_kernel
        if gap is None:
            return Choice(
                "localmodconfig",
                f"localmodconfig: the kernel is for this machine, so keep only the {running.loaded_modules} "
                f"modules loaded now (/proc/modules), starting from the running kernel's config "
                f"({running.config_path}); about 10-20 min on 8 cores instead of 30-60 for a whole distro config",
            )
        advice = []
        if running is not None and running.config_path:
            read = f"zcat {running.config_path}" if running.config_path.endswith(".gz") else f"cat {running.config_path}"
            advice.append(
                f"to start from the running kernel's config instead: {read} > BUILD_DIR/.config, then "
                "kprov plan --tree TREE --build-dir BUILD_DIR plans olddefconfig from it"
            )
        advice.append(_TINYCONFIG_ADVICE)
        return Choice("defconfig", f"defconfig: {gap}; defconfig is the architecture's tested baseline", tuple(advice))
    why = (
        "a container sees its host's loaded modules, so localmodconfig would trim for the wrong machine"
        if goals.for_this_machine
        else "the kernel is for another machine, whose modules this host cannot see"
    )
    return Choice("defconfig", f"defconfig: {why}; defconfig is the architecture's tested baseline", (_TINYCONFIG_ADVICE,))


def _target_class(target: str, facts: HostFacts, kconfig: KconfigFacts | None = None, arch: str | None = None) -> str:
    klass = cal.arch_class(target, arch) or cal.TARGET_CLASS[target]  # arm64 defconfig is costed as itself
    tree = facts.tree
    modules = kconfig.modules if kconfig is not None else (tree.modules if tree and tree.has_config else 0)
    if target == "olddefconfig" and modules >= cal.DISTRO_CONFIG_MIN_MODULES:
        return "distro"
    return klass


def _choose_compiler(facts: HostFacts, goals: Goals) -> Choice:
    tools = facts.toolchain
    have_gcc, have_clang = bool(tools.get("gcc")), bool(tools.get("clang"))
    lto = goals.lto if goals.lto != "auto" else "none"
    if goals.compiler != "auto":
        if lto != "none" and goals.compiler == "gcc":
            raise UserError(
                f"--lto {lto} needs clang: the kernel supports LTO only with clang (use --compiler clang)"
            )
        chosen, reason = goals.compiler, f"{goals.compiler}: as asked"
    elif lto != "none":
        chosen, reason = "clang", f"clang: --lto {lto} needs clang (the kernel's LTO is clang-only)"
    elif facts.tree and facts.tree.config.get("CC_IS_CLANG") == "y" and have_clang:
        chosen, reason = "clang", "clang: the tree's .config was made with clang"
    elif have_gcc:
        chosen, reason = "gcc", f"gcc {tools['gcc']}: installed, the kernel's default compiler"
    elif have_clang:
        chosen, reason = "clang", f"clang {tools['clang']}: installed (no gcc found)"
    elif not tools:
        # facts without tool versions (Ansible setup facts without kprov's probe): unknown, not absent
        return Choice("gcc", "gcc: the facts carry no tool versions; gcc is the kernel's default compiler")
    else:
        return Choice(
            "gcc",
            "gcc: no compiler found; the build packages install gcc",
            warnings=("no C compiler found (gcc or clang): `kprov apply` installs gcc with the build packages",),
        )
    if not tools.get(chosen):
        return Choice(chosen, reason, warnings=(f"{chosen} is not installed: `kprov apply` installs it with the plan's packages",))
    return Choice(chosen, reason)


def check_versions(facts: HostFacts, compiler: str, debug_info: str) -> tuple[str, ...]:
    """A warning for each installed tool below the tree's minimum (or the compiler's, without a tree)."""
    tree = facts.tree
    minimums = dict(tree.min_versions) if tree else {}
    where = "this tree's minimum" if tree else "the minimum of Linux 6.1 (no --tree given)"
    if not tree:
        minimums[compiler] = cal.COMPILER_MIN_DEFAULT[compiler]
    warnings: list[str] = []
    for tool, minimum in sorted(minimums.items()):
        have = facts.toolchain.get(tool)
        if tool in ("gcc", "clang") and tool != compiler:
            continue
        if have and version_below(have, minimum):
            warnings.append(f"{tool} {have} is below {where} {minimum}")
    if debug_info == "btf":
        pahole = facts.toolchain.get("pahole")
        minimum = (tree.min_versions.get("pahole") if tree else None) or cal.PAHOLE_MIN_BTF
        if not pahole:
            warnings.append("BTF debug info needs pahole (dwarves), which is not installed: `kprov apply` installs it")
        elif version_below(pahole, minimum):
            warnings.append(f"pahole {pahole} is below {minimum}, the minimum for BTF")
    return tuple(warnings)


def _changes(goals: Goals, target: str, compiler: str, base: KconfigTraits) -> Changes:
    """The scripts/config arguments that turn what ``target`` produces into what the plan builds,
    with the planned LTO and debug info."""
    commands: list[str] = []
    reasons: dict[str, str] = {}
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
        reasons["lto"] = f"{lto}: as asked"
        if lto != base.lto:
            commands += lto_commands(lto)
    if goals.debug_info == "auto":
        debug = base.debug_info
        reasons["debug_info"] = f"{debug}: {base.why}"
    else:
        debug = goals.debug_info
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
    return Changes(tuple(commands), lto, debug, reasons)


def _refused_lto(lto: str, base: KconfigTraits, target: str) -> str:
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


def choose_config(facts: HostFacts, goals: Goals, tree_eval: TreeEvaluation | None, notes: PlanNotes) -> ChosenConfig:
    """Target, compiler, debug info, LTO and sanitizers, each with its reason."""
    chosen = _choose_target(facts, goals)
    notes.warn_all(chosen.warnings)
    target = chosen.value
    if goals.target:
        notes.forced("target")
    if goals.compiler != "auto":
        notes.forced("compiler")
    cc = _choose_compiler(facts, goals)
    notes.warn_all(cc.warnings)
    compiler = cc.value
    kconfig, unused = usable_kconfig(tree_eval, target)
    if unused:
        notes.warn(unused)
    klass = _target_class(target, facts, kconfig, target_arch(facts, goals))
    base = base_traits(target, facts, kconfig, target_arch(facts, goals))
    changes = _changes(goals, target, compiler, base)
    if goals.lto != "auto":
        notes.forced("lto")
    if goals.debug_info != "auto":
        notes.forced("debug_info")
    reasons = {"target": chosen.reason, "compiler": cc.reason, **changes.reasons}
    cost = cal.arch_cost_story(klass)
    if cost:
        reasons["cost"] = cost
    lto, debug = changes.lto, changes.debug_info

    final = kconfig
    if kconfig is not None and kconfig.source == "evaluated" and changes.commands != kconfig.script_args:
        notes.warn("the Kconfig evaluation applied other changes than this plan: its result is not used")
        final = None
    elif kconfig is not None and kconfig.source == "tree" and changes.commands:
        final = None  # the tree's .config as it is, before the plan's changes: predict the result
    flags = base.flags if debug == base.debug_info else ()
    if final is not None:
        # what Kconfig really made of the target and the plan's changes
        for option in final.refused:
            if "LTO" in option and lto != "none":
                notes.warn(_refused_lto(lto, base, target))
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
            notes.warn(_refused_lto(lto, base, target))
            reasons["lto"] += "; Kconfig refuses it with this config, so the plan is for LTO none"
            lto = "none"
        sanitizers, objtool, modules, source = base.sanitizers, base.objtool, base.modules, base.source
        if source == "table":
            reasons["kconfig"] = (
                "table: what the target produces per arch and kernel version (docs/calibration.md §9); "
                + ("give --tree to evaluate the tree's real .config" if facts.tree is None else "not evaluated here")
            )
    if tree_eval is not None:
        notes.warn_all(tree_eval.notes)

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
        advice=chosen.advice,
        commands=changes.commands,
        flags=tuple(flags),
        sanitizers=tuple(sanitizers),
        objtool=bool(objtool),
        modules=modules,
        version=kernel_version_of(facts, kconfig),
        source=source,
        kconfig=final,
        debug_asked=goals.debug_info != "auto",
        **_depends(tree_eval),
    )


def _depends(tree_eval: TreeEvaluation | None) -> dict:
    """The Kconfig dependencies advice is checked against: the tree's own, else the 6.1 table."""
    if tree_eval is not None and tree_eval.depends:
        return {"depends": dict(tree_eval.depends), "depends_source": f"the tree's {cal.KCONFIG_DEPENDS_FILE}"}
    return {"depends": dict(cal.KCONFIG_DEPENDS), "depends_source": "lib/Kconfig.debug of Linux 6.1 (docs/calibration.md §15)"}


def _request_parts(facts: HostFacts, goals: Goals) -> tuple[str, str, dict[str, str]]:
    """Target, compiler and the Kconfig-deciding make variables, the same for every pass."""
    target = _choose_target(facts, goals).value
    compiler = _choose_compiler(facts, goals).value
    make = MakeInputs(
        compiler=compiler, arch=goals.arch, native_arch=native_arch(facts), machine=facts.arch, family=facts.distro.family
    )
    make_vars, _reasons = plan_make_vars(make, PlanNotes())
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
    return _changes(goals, target, compiler, kconfig_traits(base, "evaluated")).commands
