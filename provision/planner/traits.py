"""TODO."""

from __future__ import annotations

import dataclasses

from provision import calibration as cal
from provision.model.facts import (
    HostFacts,
    KconfigFacts,
    TreeEvaluation,
)
from provision.model.goals import Goals
from provision.planner.common import SANITIZERS, kernel_version_of, PlanNotes, KconfigTraits


def _config_debug(config: dict[str, str]) -> str:
    if config.get("DEBUG_INFO_NONE") == "y":
        return "none"
    if config.get("DEBUG_INFO_BTF") == "y":
        return "btf"
    if config.get("DEBUG_INFO") == "y" or any(
        config.get(k) == "y"
        for k in ("DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "DEBUG_INFO_DWARF4", "DEBUG_INFO_DWARF5")
    ):
        return "dwarf"
    return "none"


def _config_lto(config: dict[str, str]) -> str:
    if config.get("LTO_CLANG_FULL") == "y":
        return "full"
    if config.get("LTO_CLANG_THIN") == "y":
        return "thin"
    return "none"


def config_traits(config: dict[str, str]) -> dict:
    """What a .config (options without ``CONFIG_``, ``n`` for not set) holds that a plan depends on:
    debug info kind and flags, LTO, sanitizers, objtool over vmlinux.o, what blocks LTO, the
    certificate options that name files. provision.kconfig describes evaluated configs with it."""
    flags = [f for f in ("DWARF4", "DWARF5", "REDUCED", "SPLIT", "BTF_MODULES") if config.get(f"DEBUG_INFO_{f}") == "y"]
    if any(config.get(k) == "y" for k in ("DEBUG_INFO_COMPRESSED", "DEBUG_INFO_COMPRESSED_ZLIB", "DEBUG_INFO_COMPRESSED_ZSTD")):
        flags.append("COMPRESSED")
    debug = _config_debug(config)
    blocked = [o for o in ("GCOV_KERNEL", "KASAN") if config.get(o) == "y"]
    if "KASAN" in blocked and config.get("KASAN_HW_TAGS") == "y":
        blocked.remove("KASAN")  # arch/Kconfig: HAS_LTO_CLANG depends on !KASAN || KASAN_HW_TAGS
    return {
        "debug": debug,
        "flags": tuple(flags) if debug != "none" else (),
        "lto": _config_lto(config),
        "sanitizers": tuple(o for o in SANITIZERS if config.get(o) == "y"),
        "objtool": config.get("X86_KERNEL_IBT") == "y" or config.get("NOINSTR_VALIDATION") == "y",
        "lto_blocked": tuple(blocked),
        "trusted_keys": tuple(o for o in cal.TRUSTED_KEY_OPTIONS if config.get(o) not in (None, "", "n")),
    }


def _traits(config: dict[str, str], modules: int | None, why: str, source: str) -> KconfigTraits:
    t = config_traits(config)
    return KconfigTraits(
        debug_info=t["debug"], why=why, flags=t["flags"], lto=t["lto"], sanitizers=t["sanitizers"],
        objtool=t["objtool"], lto_blocked=t["lto_blocked"], modules=modules, trusted_keys=t["trusted_keys"],
        source=source,
    )


def kconfig_traits(k: KconfigFacts, why: str) -> KconfigTraits:
    return KconfigTraits(
        debug_info=k.debug_info, why=why, flags=k.debug_flags, lto=k.lto, sanitizers=k.sanitizers,
        objtool=k.objtool_vmlinux, lto_blocked=config_traits(k.config)["lto_blocked"], modules=k.modules,
        trusted_keys=config_traits(k.config)["trusted_keys"], source=k.source,
    )


def evaluated_text(k: KconfigFacts) -> str:
    debug = k.debug_info + (f" ({', '.join(k.debug_flags)})" if k.debug_flags else "")
    san = f", {', '.join(k.sanitizers)}" if k.sanitizers else ""
    return (
        f"debug info {debug}, LTO {k.lto}{san}, {k.modules} modules, "
        f"{k.arch or 'unknown arch'} {k.kernel_version}".rstrip()
    )


def base_traits(target: str, facts: HostFacts, goals: Goals, kconfig: KconfigFacts | None, arch: str | None) -> KconfigTraits:
    """What ``target`` produces before any change kprov makes, and where that is known from."""
    tree = facts.tree
    if kconfig is not None and kconfig.base is not None:
        b = kconfig.base
        return kconfig_traits(b, f"make {target} gives {evaluated_text(b)} (evaluated on this tree)")
    if kconfig is not None and kconfig.source == "tree":
        return kconfig_traits(kconfig, f"the tree's own .config has {evaluated_text(kconfig)}")
    if target == "olddefconfig" and tree and tree.has_config:
        t = _traits(tree.config, tree.modules, "", "tree")
        return dataclasses.replace(t, why=f"the tree's .config has debug info {t.debug_info}")
    if target == "localmodconfig":
        if tree and tree.has_config:
            t = _traits(tree.config, tree.modules, "", "tree")
            return dataclasses.replace(t, why=f"localmodconfig starts from the build's .config, which has debug info {t.debug_info}")
        running = facts.running_kernel
        if running is not None and running.config_path:
            t = _traits(running.config, None, "", "running")
            return dataclasses.replace(
                t, why=f"localmodconfig starts from the running kernel's config ({running.config_path}), which has debug info {t.debug_info}"
            )
        return KconfigTraits(debug_info="none", why="localmodconfig: no running-kernel config to start from is known")
    version = kernel_version_of(facts, None)
    row, key = cal.config_traits(target, arch, version)
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
        source="table",
    )


def usable_kconfig(tree_eval: TreeEvaluation | None, target: str, notes: PlanNotes) -> KconfigFacts | None:
    """The evaluated Kconfig when it was evaluated for this target, else None (said so)."""
    k = tree_eval.kconfig if tree_eval is not None else None
    if k is None:
        return None
    if k.source == "evaluated" and k.target != target:
        notes.warn(f"the Kconfig evaluation was for {k.target}, not {target}: planned from the table instead")
        return None
    return k


def debug_commands(debug: str) -> list[str]:
    if debug == "none":
        return [f"--disable {o}" for o in cal.DEBUG_INFO_OFF_OPTIONS] + ["--enable DEBUG_INFO_NONE"]
    commands = ["--disable DEBUG_INFO_NONE", "--enable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT"]
    return commands + (["--enable DEBUG_INFO_BTF"] if debug == "btf" else ["--disable DEBUG_INFO_BTF"])


def lto_commands(lto: str) -> list[str]:
    if lto == "thin":
        return ["--disable LTO_NONE", "--disable LTO_CLANG_FULL", "--enable LTO_CLANG_THIN"]
    if lto == "full":
        return ["--disable LTO_NONE", "--disable LTO_CLANG_THIN", "--enable LTO_CLANG_FULL"]
    return ["--disable LTO_CLANG_THIN", "--disable LTO_CLANG_FULL", "--enable LTO_NONE"]






