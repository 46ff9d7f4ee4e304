"""What a kernel .config says about the build that a plan depends on.

:func:`traits_of_config` reads a parsed .config (option names without ``CONFIG_``, ``n`` for an
option that is not set): the kind of debug info and its variants, LTO, the sanitizers, whether
objtool runs over the whole vmlinux.o, the options that keep Kconfig from offering clang LTO and
the certificate options that name files. It reads no file: provision.tree.kconfig describes the
configs it evaluated with it, and the planner the .config of a tree or of the running kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision import calibration as cal

#: Instrumentation that makes every compile job heavier (GCOV_KERNEL alone instruments nothing:
#: GCOV_PROFILE_ALL does).
HEAVY_SANITIZERS = ("KASAN", "KCSAN", "KMSAN", "UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL", "GCOV_PROFILE_ALL")


#: The instrumentation options a plan reports, in this order.
SANITIZERS = HEAVY_SANITIZERS[:3] + ("UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL", "GCOV_KERNEL", "GCOV_PROFILE_ALL")


def _config_debug(config: Mapping[str, str]) -> str:
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


def _config_lto(config: Mapping[str, str]) -> str:
    if config.get("LTO_CLANG_FULL") == "y":
        return "full"
    if config.get("LTO_CLANG_THIN") == "y":
        return "thin"
    return "none"


def traits_of_config(config: Mapping[str, str]) -> dict[str, Any]:
    """What a .config holds that a plan depends on, by key: ``debug`` (none, dwarf, btf), its
    ``flags`` (DWARF4, DWARF5, REDUCED, SPLIT, BTF_MODULES, COMPRESSED), ``lto`` (none, thin,
    full), ``sanitizers``, ``objtool`` (objtool runs over the whole vmlinux.o), ``lto_blocked``
    (options set that keep Kconfig from offering clang LTO) and ``trusted_keys`` (certificate
    options that name files)."""
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
