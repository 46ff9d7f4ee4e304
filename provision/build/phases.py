"""Kbuild's step lines -> the build's phases and its compile units.

Kbuild's default output names every step (``  CC      kernel/fork.o``, ``  LD      vmlinux.o``,
``  OBJTOOL vmlinux.o``, ``  BTF     .btf.vmlinux.bin.o``, ``  LD [M]  fs/x.ko``); ``make -s``
silences them, and then only the config and the whole build are told apart. In 6.1 the vmlinux
link runs beside modfinal (docs/calibration.md §9), so a line belongs to the phase it names and
the time between two lines to the phase of the later one.
"""

from __future__ import annotations

import re

#: The phases in build order, as ``kprov build`` names them.
PHASES = ("config", "prepare", "compile", "vmlinux.o", "vmlinux link", "modfinal", "modules")

_STEP = re.compile(r"^  ([A-Z][A-Z0-9_]*(?: \[M\])?)\s+(\S.*)$")
_CONFIG = re.compile(r"^(#|\*|  (?:HOSTCC|YACC|LEX|HOSTLD)\s+scripts/kconfig/)|configuration written to")
_PREPARE_STEPS = {"HOSTCC", "HOSTLD", "HOSTCXX", "SYSHDR", "SYSTBL", "WRAP", "UPD", "GEN", "SYNC", "CHK",
                  "MKELF", "DESCEND", "INSTALL", "CALL", "POLICY", "TABLE", "XXD", "CP", "MKDIR", "EXPORTS"}
_LINK_STEPS = {"KSYMS", "BTF", "BTFIDS", "SORTTAB", "SYSMAP", "OBJCOPY", "BUILD", "VOFFSET", "ZOFFSET",
               "RELOCS", "MKPIGGY", "HOSTCC [M]", "LDS", "NM", "ZSTD", "GZIP", "LZMA", "XZKERN", "LZ4", "CPUSTR"}
_VMLINUX_O = re.compile(r"^(vmlinux\.o|vmlinux\.a|vmlinux\.symvers|\.vmlinux\.export\.o)$")


def classify(line: str, seen_compile: bool) -> tuple[str | None, bool]:
    """``(phase, is_compile_unit)`` of one line of make's output; ``(None, False)`` for a line
    that names no step (a warning, an error, make's own messages)."""
    text = line.rstrip("\n")
    match = _STEP.match(text)
    if match is None:
        if not seen_compile and _CONFIG.search(text):
            return "config", False
        return None, False
    step, target = match.group(1), match.group(2).strip()
    if step in ("CC [M]", "LD [M]", "BTF [M]", "OBJCOPY [M]", "SIGN [M]", "STRIP [M]"):
        if step == "CC [M]" and not target.endswith(".mod.o"):
            return "compile", True
        return "modfinal", False
    if step == "MODPOST":
        return ("vmlinux.o", False) if "vmlinux" in target else ("modfinal", False)
    if step in ("LD", "OBJTOOL", "AR"):
        if _VMLINUX_O.match(target):
            return "vmlinux.o", False
        if target == "vmlinux" or target.startswith(".tmp_vmlinux") or target.startswith("arch/") and "boot" in target:
            return "vmlinux link", False
        return ("compile" if seen_compile else "prepare"), False
    if step in ("CC", "AS"):
        if not seen_compile and (target.startswith("scripts/") or target.endswith(".s")):
            return "prepare", False
        if target.endswith(".o") or target.endswith(".s"):
            return "compile", True
        return "compile", False
    if step in _LINK_STEPS:
        return "vmlinux link", False
    if step in ("INSTALL", "DEPMOD", "SIGN", "STRIP") and seen_compile:
        return "modules", False
    if step in _PREPARE_STEPS:
        return ("prepare" if not seen_compile else "compile"), False
    return ("compile" if seen_compile else "prepare"), False


#: gcc's own words for a compiler killed by a signal (the OOM killer sends SIGKILL).
_KILLED = re.compile(r"(?:fatal error: )?Killed signal terminated program (\S+)")


def oom_line(line: str) -> str | None:
    """The program an OOM kill took, when ``line`` is gcc's report of one."""
    match = _KILLED.search(line)
    return match.group(1) if match else None
