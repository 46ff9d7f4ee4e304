"""What a kernel .config says about the build that a plan depends on.

:func:`traits_of_config` reads a parsed .config (option names without ``CONFIG_``, ``n`` for an
option that is not set): the kind of debug info and its variants, LTO, the sanitizers, whether
objtool runs over the whole vmlinux.o, the options that keep Kconfig from offering clang LTO and
the certificate options that name files. It reads no file: provision.tree.kconfig describes the
configs it evaluated with it, and the planner the .config of a tree or of the running kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def kconfig_depends(text: str, options: tuple[str, ...]) -> dict[str, str]:
    """The ``depends on`` of each of ``options`` in a Kconfig file's text, joined with ``&&``, with
    the conditions of the ``if`` blocks around it: what Kconfig requires before it keeps the
    option set. Options the text does not define are left out."""
    found: dict[str, list[str]] = {}
    blocks: list[str] = []
    current: str | None = None
    in_help = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        top = not raw[:1].isspace()  # block keywords start a line; attributes and help are indented
        if in_help and not top:
            continue
        in_help = False
        word = line.split()[0]
        if not top:
            if line in ("help", "---help---"):
                in_help = True
            elif current is not None and line.startswith("depends on "):
                found[current].append(line[len("depends on "):].strip())
            continue
        if word == "if":
            blocks.append(line[2:].strip())
            current = None
        elif word == "endif":
            if blocks:
                blocks.pop()
            current = None
        elif word in ("config", "menuconfig"):
            name = line.split()[1] if len(line.split()) > 1 else ""
            current = name if name in options else None
            if current is not None:
                found[current] = list(blocks)
        else:  # choice, menu, comment, source, ...
            current = None
    return {name: " && ".join(f"({c})" for c in conds) if conds else "y" for name, conds in found.items()}


def _tokens(expr: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if c.isspace():
            i += 1
        elif expr.startswith("$(", i):  # a macro ($(cc-option,...)): its value is the toolchain's
            depth, j = 0, i
            while j < len(expr):
                depth += expr[j] == "("
                depth -= expr[j] == ")"
                j += 1
                if depth == 0:
                    break
            out.append("?")
            i = j
        elif expr.startswith(("&&", "||", ">=", "<=", "!="), i):
            out.append(expr[i:i + 2])
            i += 2
        elif c in "!()=<>":
            out.append(c)
            i += 1
        else:
            j = i
            while j < len(expr) and (expr[j].isalnum() or expr[j] in "_-\"'"):
                j += 1
            out.append(expr[i:j] or c)
            i = max(j, i + 1)
    return out


def depends_hold(expr: str, known: Mapping[str, bool]) -> bool | None:
    """Whether a Kconfig dependency expression holds with the options in ``known`` (True: set),
    three-valued: None when it turns on what ``known`` does not say (another option, a toolchain
    macro, a version comparison). Tristates count as set when y or m."""
    tokens = _tokens(expr)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def primary() -> bool | None:
        tok = take() if peek() is not None else "?"
        if tok == "!":
            v = primary()
            return None if v is None else not v
        if tok == "(":
            v = disjunction()
            if peek() == ")":
                take()
            return v
        if peek() in ("=", "!=", ">=", "<=", "<", ">"):  # a comparison: not decided here
            take()
            if peek() is not None:
                take()
            return None
        if tok == "y":
            return True
        if tok == "n":
            return False
        return known.get(tok)

    def chain(op: str, operand: Callable[[], bool | None], decides: bool) -> bool | None:
        """Operands joined by ``op`` in Kleene's logic: ``decides`` (False for &&, True for ||)
        on either side decides it, else an unknown operand leaves it unknown."""
        v = operand()
        while peek() == op:
            take()
            w = operand()
            v = decides if decides in (v, w) else (None if None in (v, w) else not decides)
        return v

    def conjunction() -> bool | None:
        return chain("&&", primary, False)

    def disjunction() -> bool | None:
        return chain("||", conjunction, True)

    return disjunction()
