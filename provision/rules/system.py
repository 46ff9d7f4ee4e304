"""Rules for what kprov writes into system files: zram's percent, compressor and priority, the four
swap-on-zram sysctls within their kernel ranges, and the build environment (a fixed list of
variable names, each value in its own character set, for a file every login shell sources).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from provision import calibration as cal
from provision.errors import UserError, shown
from provision.rules.addresses import where_value
from provision.rules.distcc import check_distcc_hosts
from provision.rules.names import NAME_VALUE, check_int, check_kernel_arch, check_path

_ZRAM_ALGORITHM = re.compile(r"[a-z0-9][a-z0-9-]{0,31}", re.ASCII)


def check_zram_percent(value: Any, where: str) -> int:
    """The zram device size in percent of RAM: one range for the CLI, the planner and the role."""
    return check_int(value, where, cal.ZRAM_MIN_PERCENT, cal.ZRAM_MAX_PERCENT, "a device over 2 x RAM is pointless")


def check_zram_algorithm(value: Any, where: str) -> str:
    """A compressor name as the kernel spells them (lz4, lzo-rle, zstd, 842)."""
    if not isinstance(value, str) or not _ZRAM_ALGORITHM.fullmatch(value):
        raise UserError(f"{where_value(where, value)} is not a zram compressor name (expected e.g. lz4, lzo-rle, zstd)")
    return value


def check_zram_priority(value: Any, where: str) -> int:
    """Swap priority: -1 (the kernel picks) up to 32767, swapon's range."""
    return check_int(value, where, -1, 32767)


#: The sysctls kprov plans for swap on zram (REFERENCE §3) and the values each may take: the
#: kernel's own bounds where it has them (swappiness 0..200 from Linux 5.8, watermark_scale_factor
#: 1..3000, page-cluster 0..31); watermark_boost_factor has none, so 0 (off) up to its default 15000.
SYSCTL_RANGES: dict[str, tuple[int, int]] = {
    "vm.swappiness": (0, 200),
    "vm.watermark_boost_factor": (0, 15000),
    "vm.watermark_scale_factor": (1, 3000),
    "vm.page-cluster": (0, 31),
}


def check_sysctls(values: Any, where: str) -> dict[str, str]:
    """Sysctl settings: keys from :data:`SYSCTL_RANGES` only, values whole numbers in range."""
    if not isinstance(values, Mapping):
        raise UserError(f"{where_value(where, values)}: expected a mapping of sysctl names to numbers")
    out: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(key, str) or key not in SYSCTL_RANGES:
            raise UserError(
                f"{where}: sysctl {shown(key)} is not one kprov sets (only {', '.join(SYSCTL_RANGES)})"
            )
        low, high = SYSCTL_RANGES[key]
        out[key] = str(check_int(value, f"{where} {key}", low, high))
    return out


_MAKEFLAGS = re.compile(r"[A-Za-z0-9 .=+-]{1,200}", re.ASCII)


_TIMESTAMP = re.compile(r"[A-Za-z0-9 :+.,-]{1,64}", re.ASCII)


_COMMAND = re.compile(r"[A-Za-z0-9._+/-]{1,255}", re.ASCII)


_MAKE_ARGS = re.compile(r"[A-Za-z0-9._+/= '-]{0,4096}", re.ASCII)


_MAKE_VALUE = re.compile(r"[A-Za-z0-9._+/ -]{0,255}", re.ASCII)


#: The make variables kprov passes on the command line (planner._make_vars).
MAKE_VARS = ("O", "ARCH", "CROSS_COMPILE", "LLVM", "CC")


def _env_pattern(pattern: re.Pattern[str], what: str):
    def check(value: Any, where: str) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise UserError(f"{where_value(where, value)}: expected {what}")
        return value

    return check


def _env_hosts(value: Any, where: str) -> str:
    if not isinstance(value, str) or "" in value.split(" "):
        raise UserError(f"{where_value(where, value)}: expected distcc host specs separated by single spaces")
    check_distcc_hosts(value.split(" "), cal.DISTCC_MAX_LIMIT, where)
    return value


def _env_make_args(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _MAKE_ARGS.fullmatch(value):
        raise UserError(f"{where_value(where, value)}: expected make variables such as LLVM=1 CC='ccache gcc'")
    try:
        words = shlex.split(value)
    except ValueError:
        raise UserError(f"{where_value(where, value)}: unbalanced quotes") from None
    for word in words:
        name, eq, arg = word.partition("=")
        if not eq or name not in MAKE_VARS or not _MAKE_VALUE.fullmatch(arg):
            raise UserError(
                f"{where}: {shown(word)} is not one of the make variables kprov passes ({', '.join(MAKE_VARS)}) "
                "with a plain value"
            )
    return value


#: The variables kprov exports (planner._env, ``kprov env``, /etc/profile.d/kprov-kbuild.sh), each
#: with the check of its value. Anything else (LD_PRELOAD, PATH, ...) is refused.
BUILDENV_CHECKS = {
    "MAKEFLAGS": _env_pattern(_MAKEFLAGS, "make flags such as '-j8 -l8' (letters, digits, space . = + -)"),
    "KBUILD_BUILD_TIMESTAMP": _env_pattern(_TIMESTAMP, "a date such as '1970-01-01 00:00:00 UTC'"),
    "KBUILD_BUILD_USER": _env_pattern(NAME_VALUE, "a name of A-Z a-z 0-9 . _ -"),
    "KBUILD_BUILD_HOST": _env_pattern(NAME_VALUE, "a name of A-Z a-z 0-9 . _ -"),
    "KBUILD_BUILD_VERSION": _env_pattern(NAME_VALUE, "a version of A-Z a-z 0-9 . _ -"),
    "KBUILD_OUTPUT": check_path,
    "CCACHE_DIR": check_path,
    "CCACHE_BASEDIR": check_path,
    "CCACHE_NOHASHDIR": _env_pattern(re.compile(r"true|1", re.ASCII), "true"),
    "CCACHE_PREFIX": _env_pattern(_COMMAND, "a command name or path such as distcc"),
    "CCACHE_CONFIGPATH": check_path,
    "KCFLAGS": _env_pattern(
        re.compile(r"-fdebug-prefix-map=/[A-Za-z0-9._+@/-]*=", re.ASCII), "-fdebug-prefix-map=/ABSOLUTE/PATH/="
    ),
    "DISTCC_HOSTS": _env_hosts,
    "KPROV_MAKE_ARGS": _env_make_args,
    # -j for kernel builds only: no make reads it (provision.planner.host_env)
    "KPROV_MAKEFLAGS": _env_pattern(_MAKEFLAGS, "make flags such as '-j8 -l8' (letters, digits, space . = + -)"),
    # a cross build (--arch): kbuild reads these from the environment too
    "ARCH": check_kernel_arch,
    "CROSS_COMPILE": _env_pattern(re.compile(r"[a-z0-9_]+(?:-[a-z0-9_]+)*-", re.ASCII), "a prefix such as aarch64-linux-gnu-"),
    "LLVM": _env_pattern(re.compile(r"1", re.ASCII), "1"),
}


def check_buildenv(env: Any, where: str = "build environment") -> dict[str, str]:
    """The exported build environment: names from :data:`BUILDENV_CHECKS`, each value checked."""
    if not isinstance(env, Mapping):
        raise UserError(f"{where_value(where, env)}: expected a mapping of variable names to values")
    out: dict[str, str] = {}
    for name, value in env.items():
        check = BUILDENV_CHECKS.get(name) if isinstance(name, str) else None
        if check is None:
            raise UserError(
                f"{where}: {shown(name)} is not a variable kprov exports (only {', '.join(BUILDENV_CHECKS)})"
            )
        # YAML reads `true` and `1` as a boolean and a number; the shell sees their text.
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        out[name] = check(value, f"{where} {name}")
    return out
