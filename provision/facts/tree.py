"""A kernel tree's facts: its version (Makefile), the ``.config`` options a plan depends on, the
minimum tool versions of ``Documentation/process/changes.rst``, and the running kernel's own
config (``/proc/config.gz`` or ``/boot/config-*``), each read with a size bound.
"""

from __future__ import annotations

import os
import platform
import re
import zlib
from pathlib import Path

from provision.errors import UserError
from provision.facts.files import absolute_path, read_bounded
from provision.model.facts import (
    RunningKernelFacts,
    TreeFacts,
)
from provision.units import MIB

#: .config options the planner looks at (exact names, or prefixes ending in ``*``).
CONFIG_KEYS = (
    "DEBUG_INFO*",
    "RANDSTRUCT*",  # the layout seed must be hashed for a shared cache (provision/planner/shared_cache.py)
    "GCC_PLUGIN_RANDSTRUCT",
    "LTO*",
    "GCC_PLUGINS",
    "MODULES",
    "MODULE_SIG*",
    "CC_IS_CLANG",
    "CC_IS_GCC",
    "SYSTEM_TRUSTED_KEYS",
    "SYSTEM_REVOCATION_KEYS",
    "RUST",
    "KALLSYMS_ALL",
    "KASAN*",
    "UBSAN*",
    "KCOV*",
    "GCOV*",
    "X86_KERNEL_IBT",
    "NOINSTR_VALIDATION",
    "CC_VERSION_TEXT",
    "PAHOLE_VERSION",
    "LD_IS_LLD",
    "HAS_LTO_CLANG",
)


#: Program names in changes.rst's "Current Minimal Requirements" table -> kprov tool names.
CHANGES_PROGRAMS = {
    "gnu c": "gcc",
    "clang/llvm": "clang",
    "rust": "rustc",
    "bindgen": "bindgen",
    "gnu make": "make",
    "bash": "bash",
    "binutils": "ld",
    "flex": "flex",
    "bison": "bison",
    "pahole": "pahole",
    "openssl & libcrypto": "openssl",
    "bc": "bc",
    "python": "python3",
    "gnu tar": "tar",
    "kmod": "kmod",
    "perl": "perl",
    "cpio": "cpio",
    "gdb": "gdb",
}


def parse_makefile_version(text: str) -> str | None:
    """``VERSION = 6`` / ``PATCHLEVEL = 1`` / ``SUBLEVEL = 0`` -> ``"6.1.0"``; None if not a kernel's."""
    values = {}
    for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL"):
        m = re.search(rf"^{key}\s*=\s*(\d+)\s*$", text, re.MULTILINE)
        if m:
            values[key] = m.group(1)
    if "VERSION" not in values or "PATCHLEVEL" not in values:
        return None
    return f"{values['VERSION']}.{values['PATCHLEVEL']}.{values.get('SUBLEVEL', '0')}"


def _wanted(name: str) -> bool:
    for key in CONFIG_KEYS:
        if key.endswith("*") and name.startswith(key[:-1]) or name == key:
            return True
    return False


def parse_kconfig(text: str) -> tuple[dict[str, str], int]:
    """A .config -> (the options of :data:`CONFIG_KEYS` without ``CONFIG_``, number of ``=m``).

    Values: ``y``/``m``, strings unquoted, and ``n`` for ``# CONFIG_X is not set``.
    """
    config: dict[str, str] = {}
    modules = 0
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"^CONFIG_(\w+)=(.*)$", line)
        if m:
            name, value = m.group(1), m.group(2)
            if value == "m":
                modules += 1
            if _wanted(name):
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                config[name] = value
            continue
        m = re.match(r"^# CONFIG_(\w+) is not set$", line)
        if m and _wanted(m.group(1)):
            config[m.group(1)] = "n"
    return config, modules


def parse_min_versions(text: str) -> dict[str, str]:
    """The "Current Minimal Requirements" table of ``Documentation/process/changes.rst``.

    Returns kprov tool name -> minimal version, for the programs of :data:`CHANGES_PROGRAMS`.
    Rows are split on runs of two or more blanks (some rows use tabs, so columns do not line up).
    """
    start = text.find("Current Minimal Requirements")
    if start < 0:
        return {}
    lines = text[start:].splitlines()
    result: dict[str, str] = {}
    rules = 0
    for line in lines:
        if re.match(r"^=+(\s+=+)+\s*$", line):
            rules += 1
            if rules == 3:  # top rule, rule under the header, closing rule
                break
            continue
        if rules < 2 or not line.strip():
            continue
        cells = re.split(r"\s{2,}|\t+", line.strip())
        if len(cells) < 2:
            continue
        program = re.sub(r"\\?\s*\[#\w+\]_", "", cells[0])  # Sphinx footnote marks
        program = re.sub(r"\(optional\)", "", program, flags=re.I).strip().lower()
        tool = CHANGES_PROGRAMS.get(program)
        version = re.sub(r"\.x$", "", cells[1].strip())
        if tool and re.match(r"^\d+(\.\d+)*[a-z]?$", version):
            result[tool] = version
    return result


def _tree_file(path: Path, switch: str) -> str | None:
    """A file of the tree or build dir as text, None when it does not exist; a FIFO, a device, a
    link to ``/dev/zero`` or a file beyond :data:`MAX_FILE_BYTES` is refused, never read."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        pass  # read_bounded names the problem
    except ValueError:
        raise UserError(f"{switch} {path}: not a valid path") from None
    return read_bounded(path, f"{switch} {path}").decode("utf-8", errors="replace")


def tree_facts(tree: str | os.PathLike, build_dir: str | os.PathLike | None = None) -> TreeFacts:
    """Validate a kernel source tree and read its version, .config and minimum tool versions."""
    root = absolute_path(tree)
    makefile = _tree_file(root / "Makefile", "--tree")
    version = parse_makefile_version(makefile) if makefile is not None else None
    if version is None or not (root / "Kconfig").is_file() or not (root / "scripts").is_dir():
        raise UserError(
            f"--tree {tree}: not a Linux kernel source tree (no top-level Makefile with VERSION/PATCHLEVEL)"
        )
    config_dir = absolute_path(build_dir) if build_dir else root
    config, modules, has_config = {}, 0, False
    dot_config = _tree_file(config_dir / ".config", "--build-dir" if build_dir else "--tree")
    if dot_config is not None:
        config, modules = parse_kconfig(dot_config)
        has_config = True
    changes = _tree_file(root / "Documentation" / "process" / "changes.rst", "--tree")
    minimums = parse_min_versions(changes) if changes is not None else {}
    # kbuild refuses O= for a source directory that was configured or built in place
    clean = not (os.path.lexists(root / ".config") or os.path.lexists(root / "include" / "config"))
    return TreeFacts(
        path=str(root),
        kernel_version=version,
        has_config=has_config,
        config=config,
        modules=modules,
        min_versions=minimums,
        clean=clean,
    )


#: The most a running kernel's config may decompress to (a distro config is ~250 KiB).
MAX_KERNEL_CONFIG_BYTES = 4 * MIB


def _gunzip_bounded(data: bytes, what: str, limit: int = MAX_KERNEL_CONFIG_BYTES) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise UserError(f"{what}: not gzip data ({exc})") from None
    if len(out) > limit:
        raise UserError(f"{what}: decompresses to more than {limit // MIB} MiB, not a kernel config")
    return out


def running_kernel_facts(release: str | None = None, proc: str = "/proc", boot: str = "/boot") -> RunningKernelFacts:
    """Whether localmodconfig can work here: the running kernel's config (``/proc/config.gz``, else
    ``/boot/config-<release>``) and its loaded-module list (``/proc/modules``). A file that cannot be
    read counts as absent; what it holds is parsed like a tree's .config."""
    release = platform.release() if release is None else release
    config_path, text = None, None
    candidates = [(Path(proc) / "config.gz", True)]
    if release and "/" not in release:
        candidates.append((Path(boot) / f"config-{release}", False))
    for path, gz in candidates:
        if not path.is_file():
            continue
        try:
            raw = read_bounded(path, str(path))
            text = (_gunzip_bounded(raw, str(path)) if gz else raw).decode("utf-8", errors="replace")
        except UserError:
            continue
        config_path = str(path)
        break
    config, modules = parse_kconfig(text) if text is not None else ({}, 0)
    modules_file = Path(proc) / "modules"
    loaded = 0
    listed = modules_file.is_file()
    if listed:
        try:
            loaded = sum(1 for line in read_bounded(modules_file, str(modules_file)).splitlines() if line.strip())
        except UserError:
            listed = False
    return RunningKernelFacts(
        config_path=config_path, modules_list=listed, loaded_modules=loaded, config=config, modules=modules
    )
