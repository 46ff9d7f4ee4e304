"""The .config a planned target really produces: Kconfig evaluated in a scratch ``O=`` directory.

A config target's name says little about what it builds: ``allmodconfig`` has no debug info since
5.18 and blocks clang LTO (GCOV_KERNEL, KASAN), arm64's defconfig has reduced DWARF, and whether a
``scripts/config --enable`` survives ``olddefconfig`` depends on the tree, the compiler and the
tools. So with ``--tree`` kprov runs the planned target in a scratch build directory (a few
seconds), applies the plan's ``scripts/config`` changes, runs ``olddefconfig``, and describes what
came out (:class:`~provision.model.KconfigFacts`). The pure planner plans from that.

This is I/O and sits beside :mod:`provision.facts`; the planner never imports it. The scratch
directory is kept under ``~/.cache/kprov/kconfig`` (Kconfig's host programs are built once) and
used under a lock, one run at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from provision.errors import EnvironmentProblem, UserError
from provision.facts.files import read_bounded
from provision.facts.tree import parse_kconfig
from provision.model.facts import (
    HostFacts,
    KconfigFacts,
    KconfigRequest,
    TreeEvaluation,
    TreeFacts,
)
from provision.model.goals import Goals
from provision.planner.config import config_commands, config_request
from provision.rules.kconfig import traits_of_config
from provision.tree.profiles import find_profile

#: Seconds one make run of a config target may take (allmodconfig takes ~5 s here).
MAKE_TIMEOUT_S = 300


#: Variables of the caller's environment that would change what make does in the scratch
#: directory: the plan's make line is what decides ARCH, CROSS_COMPILE, LLVM and O=.
_DROPPED_ENV = (
    "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "GNUMAKEFLAGS", "KBUILD_OUTPUT", "ARCH", "SUBARCH", "CROSS_COMPILE",
    "LLVM", "LLVM_IAS", "CC", "LD", "KCONFIG_CONFIG", "KCONFIG_ALLCONFIG", "KBUILD_EXTMOD", "KBUILD_VERBOSE",
)


_HEADER = re.compile(r"^# Linux/(\S+) (\S+) Kernel Configuration$", re.MULTILINE)


class KconfigError(EnvironmentProblem):
    """The scratch evaluation could not run (no make, a failing target): plan from the table."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kprov" / "kconfig"


def scratch_dir(tree: str, make_vars: dict[str, str], root: Path | None = None) -> Path:
    """One scratch build directory per tree and make variables."""
    key = tree + "\0" + "\0".join(f"{k}={v}" for k, v in sorted(make_vars.items()))
    return (root or cache_root()) / hashlib.sha256(key.encode()).hexdigest()[:16]


def make_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env["LC_ALL"] = "C"
    env["CCACHE_DISABLE"] = "1"
    return env


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".kprov-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def run(argv: list[str], env: dict[str, str], timeout: float = MAKE_TIMEOUT_S) -> float:
    """Run ``argv`` quietly; returns its wall seconds. A failure is a KconfigError naming the
    command and the last line it printed."""
    if shutil.which(argv[0], path=env.get("PATH")) is None and not os.path.isabs(argv[0]):
        raise KconfigError(f"{argv[0]} is not installed: cannot evaluate the config")
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        raise KconfigError(f"{shown_command(argv)} took longer than {timeout:.0f} s") from None
    except OSError as exc:
        raise KconfigError(f"{shown_command(argv)}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stdout.decode(errors="replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise KconfigError(f"{shown_command(argv)} failed: {last[:300]}")
    return time.monotonic() - start


def shown_command(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def make_argv(tree: str, build_dir: str, make_vars: dict[str, str], *targets: str) -> list[str]:
    return ["make", "-s", "-C", tree, f"O={build_dir}", *(f"{k}={v}" for k, v in make_vars.items()), *targets]


def config_options(text: str) -> dict[str, str]:
    """Every set option of a .config, without ``CONFIG_`` and with strings unquoted."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^CONFIG_(\w+)=(.*)$", line.strip())
        if m:
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            options[m.group(1)] = value
    return options


def config_hash(text: str) -> str:
    """sha256 of the sorted set options: what a calibration profile is keyed by."""
    lines = sorted(line.strip() for line in text.splitlines() if line.startswith("CONFIG_"))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def describe(
    text: str,
    target: str,
    *,
    source: str = "evaluated",
    commands: tuple[str, ...] = (),
    seconds: float = 0.0,
    script_args: tuple[str, ...] = (),
    base: KconfigFacts | None = None,
) -> KconfigFacts:
    """A .config's text as KconfigFacts, with the options of ``script_args`` that Kconfig refused."""
    subset, modules = parse_kconfig(text)
    options = config_options(text)
    traits = traits_of_config(subset)
    header = _HEADER.search(text)
    builtins = sum(1 for v in options.values() if v == "y")
    return KconfigFacts(
        target=target,
        arch=header.group(1) if header else "",
        kernel_version=header.group(2) if header else "",
        debug_info=traits["debug"],
        lto=traits["lto"],
        debug_flags=traits["flags"],
        sanitizers=traits["sanitizers"],
        objtool_vmlinux=traits["objtool"],
        modules=modules,
        builtins=builtins,
        compiler=options.get("CC_VERSION_TEXT", ""),
        config_hash=config_hash(text),
        commands=commands,
        seconds=round(seconds, 2),
        refused=refused(script_args, options),
        source=source,
        config=subset,
        script_args=script_args,
        base=base,
    )


#: Options whose --enable is judged by what the plan checks itself (the debug-info kind): a
#: kernel before 5.18 has no DEBUG_INFO_NONE, and the choice's default entry varies.
_JUDGED_BY_KIND = ("DEBUG_INFO_NONE", "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT")


def refused(script_args: tuple[str, ...], options: dict[str, str]) -> tuple[str, ...]:
    """The options ``scripts/config --enable X`` asked for that the final .config does not set."""
    out = []
    for arg in script_args:
        words = arg.split()
        enable = len(words) == 2 and words[0] == "--enable" and words[1] not in _JUDGED_BY_KIND
        if enable and options.get(words[1]) not in ("y", "m"):
            out.append(words[1])
    return tuple(out)


def read_config_file(path: Path, what: str) -> str:
    return read_bounded(path, what).decode("utf-8", errors="replace")


def evaluate(
    tree: TreeFacts,
    request: KconfigRequest,
    commands_for: Callable[[KconfigFacts], tuple[str, ...]],
    say: Callable[[str], None] | None = None,
    root: Path | None = None,
) -> KconfigFacts:
    """Run the request's target in a scratch O=, apply ``commands_for(base)`` with scripts/config,
    run olddefconfig, and describe the result (with the base .config inside it)."""
    directory = scratch_dir(tree.path, request.make_vars, root)
    env = make_env()
    with locked(directory):
        dot_config = directory / ".config"
        for stale in (dot_config, directory / ".config.old"):
            stale.unlink(missing_ok=True)
        if request.seed_config:
            shutil.copyfile(request.seed_config, dot_config)
        first = make_argv(tree.path, str(directory), request.make_vars, request.target)
        if say:
            say(f"evaluating Kconfig: {shown_command(first)}")
        seconds = run(first, env)
        base_text = read_config_file(dot_config, f"{request.target}'s .config")
        ran = [shown_command(first)]
        base = describe(base_text, request.target, commands=tuple(ran), seconds=seconds)
        args = tuple(commands_for(base))
        if not args:
            return describe(
                base_text, request.target, commands=tuple(ran), seconds=seconds, script_args=(), base=base
            )
        script = [str(Path(tree.path) / "scripts" / "config"), "--file", str(dot_config)]
        for arg in args:
            script += shlex.split(arg)
        if say:
            say(f"evaluating Kconfig: scripts/config {' '.join(args)}; make olddefconfig")
        seconds += run(script, env)
        final_make = make_argv(tree.path, str(directory), request.make_vars, "olddefconfig")
        seconds += run(final_make, env)
        ran += [shown_command(["scripts/config", *script[1:]]), shown_command(final_make)]
        text = read_config_file(dot_config, f"{request.target}'s .config")
        return describe(text, request.target, commands=tuple(ran), seconds=seconds, script_args=args, base=base)


def read_tree_config(tree: TreeFacts, target: str, build_dir: str | None = None) -> KconfigFacts | None:
    """The tree's own .config, as it is (a tree configured in place cannot be evaluated in O=)."""
    path = Path(build_dir or tree.path) / ".config"
    if not path.is_file():
        return None
    return describe(read_config_file(path, f"--tree {path}"), target, source="tree")


def tree_evaluation(
    facts: HostFacts, goals: Goals, say: Callable[[str], None] | None = None, root: Path | None = None
) -> TreeEvaluation | None:
    """Everything kprov learns about ``facts.tree`` beyond its facts: the evaluated Kconfig of the
    planned target and a calibration profile that matches it. Failures become notes, never errors:
    the plan then comes from the table and says so."""

    tree = facts.tree
    if tree is None:
        return None
    notes: list[str] = []
    request = config_request(facts, goals)
    kconfig = None
    if request.evaluable:
        try:
            kconfig = evaluate(tree, request, lambda base: config_commands(facts, goals, base), say, root)
        except (KconfigError, UserError, OSError) as exc:
            message = exc.message if isinstance(exc, (KconfigError, UserError)) else str(exc)
            notes.append(f"could not evaluate the config in a scratch O= ({message}): planned from the table")
    elif request.target == "olddefconfig":
        kconfig = read_tree_config(tree, request.target, goals.build_dir)
        notes.append(f"not evaluated: {request.why_not}; planned from its .config as it is")
    else:
        notes.append(f"not evaluated: {request.why_not}; planned from the table")
    profile = None
    if kconfig is not None:
        profile, profile_notes = find_profile(kconfig, tree.path)
        notes += profile_notes
    return TreeEvaluation(kconfig=kconfig, profile=profile, notes=tuple(notes))
