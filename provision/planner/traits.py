"""Where the config decision starts: what the planned target's .config holds before kprov
changes anything, and the scripts/config arguments that change its debug info and LTO.

:func:`base_traits` answers from the best source there is: the .config the target gave when
provision.tree.kconfig evaluated it on this tree, the tree's own .config, the running kernel's
config (for localmodconfig), else the table of what each target produces per architecture and
kernel version (:func:`provision.calibration.config_traits_row`). It returns
:class:`KconfigTraits`, whose ``why`` says which source answered. A .config is read with
:func:`provision.rules.kconfig.traits_of_config`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from provision import calibration as cal
from provision.model.facts import (
    HostFacts,
    KconfigFacts,
    TreeEvaluation,
)
from provision.planner.common import KconfigTraits, kernel_version_of
from provision.rules.kconfig import traits_of_config


def _traits(config: Mapping[str, str], modules: int | None, source: str) -> KconfigTraits:
    t = traits_of_config(config)
    return KconfigTraits(
        debug_info=t["debug"], why="", flags=t["flags"], lto=t["lto"], sanitizers=t["sanitizers"],
        objtool=t["objtool"], lto_blocked=t["lto_blocked"], modules=modules, trusted_keys=t["trusted_keys"],
        source=source,
    )


def kconfig_traits(k: KconfigFacts, why: str) -> KconfigTraits:
    """The traits of a .config that provision.tree.kconfig evaluated or read from the tree."""
    t = traits_of_config(k.config)
    return KconfigTraits(
        debug_info=k.debug_info, why=why, flags=k.debug_flags, lto=k.lto, sanitizers=k.sanitizers,
        objtool=k.objtool_vmlinux, lto_blocked=t["lto_blocked"], modules=k.modules,
        trusted_keys=t["trusted_keys"], source=k.source,
    )


def evaluated_text(k: KconfigFacts) -> str:
    debug = k.debug_info + (f" ({', '.join(k.debug_flags)})" if k.debug_flags else "")
    san = f", {', '.join(k.sanitizers)}" if k.sanitizers else ""
    return (
        f"debug info {debug}, LTO {k.lto}{san}, {k.modules} modules, "
        f"{k.arch or 'unknown arch'} {k.kernel_version}".rstrip()
    )


def base_traits(target: str, facts: HostFacts, kconfig: KconfigFacts | None, arch: str | None) -> KconfigTraits:
    """What ``target`` produces before any change kprov makes, and where that is known from."""
    tree = facts.tree
    if kconfig is not None and kconfig.base is not None:
        b = kconfig.base
        return kconfig_traits(b, f"make {target} gives {evaluated_text(b)} (evaluated on this tree)")
    if kconfig is not None and kconfig.source == "tree":
        return kconfig_traits(kconfig, f"the tree's own .config has {evaluated_text(kconfig)}")
    if target == "olddefconfig" and tree and tree.has_config:
        t = _traits(tree.config, tree.modules, "tree")
        return dataclasses.replace(t, why=f"the tree's .config has debug info {t.debug_info}")
    if target == "localmodconfig":
        if tree and tree.has_config:
            t = _traits(tree.config, tree.modules, "tree")
            return dataclasses.replace(t, why=f"localmodconfig starts from the build's .config, which has debug info {t.debug_info}")
        running = facts.running_kernel
        if running is not None and running.config_path:
            t = _traits(running.config, None, "running")
            return dataclasses.replace(
                t, why=f"localmodconfig starts from the running kernel's config ({running.config_path}), which has debug info {t.debug_info}"
            )
        return KconfigTraits(debug_info="none", why="localmodconfig: no running-kernel config to start from is known")
    version = kernel_version_of(facts, None)
    row, key = cal.config_traits_row(target, arch, version)
    when = f"Linux {'.'.join(map(str, version))}" if version else "a current kernel (no --tree: version unknown)"
    debug = row.get("debug", "none")
    flags = tuple(row.get("flags", ()))
    desc = debug + (f" ({', '.join(flags)})" if flags else "")
    sanitizers = tuple(row.get("sanitizers", ()))
    extra = f", with {', '.join(sanitizers)}" if sanitizers else ""
    return KconfigTraits(
        debug_info=debug,
        why=f"{target} gives debug info {desc}{extra} on {arch or 'this arch'} for {when} (table row {key}; "
        f"{'no --tree to evaluate' if tree is None else 'not evaluated'})",
        flags=flags,
        sanitizers=sanitizers,
        objtool=bool(row.get("objtool")),
        lto_blocked=tuple(row.get("lto_blocked", ())),
        modules=row.get("modules"),
        source="table",
    )


def usable_kconfig(tree_eval: TreeEvaluation | None, target: str) -> tuple[KconfigFacts | None, str | None]:
    """The evaluated Kconfig when it was evaluated for this target, else None, with the warning
    that says why it is not used (None when there is nothing to say)."""
    k = tree_eval.kconfig if tree_eval is not None else None
    if k is None:
        return None, None
    if k.source == "evaluated" and k.target != target:
        return None, f"the Kconfig evaluation was for {k.target}, not {target}: planned from the table instead"
    return k, None


def debug_commands(debug: str) -> list[str]:
    """The scripts/config arguments that give the build ``debug`` info (none, dwarf, btf)."""
    if debug == "none":
        return [f"--disable {o}" for o in cal.DEBUG_INFO_OFF_OPTIONS] + ["--enable DEBUG_INFO_NONE"]
    commands = ["--disable DEBUG_INFO_NONE", "--enable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT"]
    return commands + (["--enable DEBUG_INFO_BTF"] if debug == "btf" else ["--disable DEBUG_INFO_BTF"])


def lto_commands(lto: str) -> list[str]:
    """The scripts/config arguments that give the build ``lto`` (none, thin, full)."""
    if lto == "thin":
        return ["--disable LTO_NONE", "--disable LTO_CLANG_FULL", "--enable LTO_CLANG_THIN"]
    if lto == "full":
        return ["--disable LTO_NONE", "--disable LTO_CLANG_THIN", "--enable LTO_CLANG_FULL"]
    return ["--disable LTO_CLANG_THIN", "--disable LTO_CLANG_FULL", "--enable LTO_NONE"]
