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

Kbuild is the tree's code: it runs through :mod:`provision.tree.sandbox`, as the user
:mod:`provision.tree.ownership` says the tree belongs to (kprov as root runs another user's tree as
that user, with its scratch ``O=`` that user's own), in a process group killed when it ends, and
under one deadline for all three steps (``KPROV_TREE_DEADLINE_S``, default 300 s). A tree kprov
will not run (two owners, writable by others) is refused with one line, not noted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import stat
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
from provision import calibration as cal
from provision.rules.kconfig import kconfig_depends, traits_of_config
from provision.tree import ownership, sandbox
from provision.tree.profiles import find_profile

#: Seconds an evaluation may take, all its make runs together (allmodconfig takes ~5 s here);
#: ``KPROV_TREE_DEADLINE_S`` sets another.
MAKE_TIMEOUT_S = sandbox.DEFAULT_DEADLINE_S


#: Variables of the caller's environment that would change what make does in the scratch
#: directory: the plan's make line is what decides ARCH, CROSS_COMPILE, LLVM and O=.
_DROPPED_ENV = (
    "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "GNUMAKEFLAGS", "KBUILD_OUTPUT", "ARCH", "SUBARCH", "CROSS_COMPILE",
    "LLVM", "LLVM_IAS", "CC", "LD", "KCONFIG_CONFIG", "KCONFIG_ALLCONFIG", "KBUILD_EXTMOD", "KBUILD_VERBOSE",
)


#: The largest .config kprov reads back (allmodconfig's is ~300 KiB).
MAX_CONFIG_BYTES = 16 << 20

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
def locked(directory: Path, lock: Path | None = None) -> Iterator[None]:
    """``directory`` used by one kprov at a time (the lock file is ``lock``, else inside it)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock or directory / ".kprov-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def run(
    argv: list[str],
    env: dict[str, str],
    timeout: float = MAKE_TIMEOUT_S,
    runner: sandbox.RunAs | None = None,
    deadline: sandbox.Deadline | None = None,
) -> float:
    """Run ``argv`` quietly as ``runner`` (kprov itself by default), within ``deadline`` (else
    ``timeout`` seconds); returns its wall seconds. A failure is a KconfigError naming the command
    and the last line it printed; nothing it started is left running."""
    if shutil.which(argv[0], path=env.get("PATH")) is None and not os.path.isabs(argv[0]):
        raise KconfigError(f"{argv[0]} is not installed: cannot evaluate the config")
    deadline = deadline or sandbox.Deadline(timeout)
    try:
        done = sandbox.run(argv, runner or sandbox.as_self(), env, deadline.at)
    except OSError as exc:
        raise KconfigError(f"{shown_command(argv)}: {exc.strerror or exc}") from None
    if done.timed_out:
        raise KconfigError(
            f"{shown_command(argv)} was stopped: evaluating the config took longer than {deadline.seconds:g} s "
            f"({sandbox.DEADLINE_ENV})"
        )
    if done.status != 0:
        last = done.tail[-1].strip() if done.tail else f"exit status {done.status}"
        raise KconfigError(f"{shown_command(argv)} failed: {last[:300]}")
    return done.seconds


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


def read_seed(path: str, runner: sandbox.RunAs) -> bytes:
    """The .config to start from (a build dir's), which kprov copies to where the tree's code
    reads it: opened without following a link, a regular file, and only when root or the user the
    tree's code runs as owns it (kprov as root must not hand that user a file it could not read).
    Anything else is refused with one line before anything runs."""
    what = f"the .config to start from ({path})"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise sandbox.Refused(f"{what}: not used ({reason})") from None
    except ValueError:
        raise sandbox.Refused(f"{what}: not a valid path") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise sandbox.Refused(f"{what}: not a regular file")
        if info.st_uid not in (0, runner.uid):
            raise sandbox.Refused(
                f"{what}: belongs to uid {info.st_uid}, not to root or {runner.shown()} who runs the tree's code"
            )
        if info.st_uid != runner.uid and info.st_nlink != 1:
            raise sandbox.Refused(f"{what}: a file of root's with {info.st_nlink} links: not used")
        if info.st_size > MAX_CONFIG_BYTES:
            raise sandbox.Refused(f"{what}: larger than {MAX_CONFIG_BYTES >> 20} MiB, not a file kprov reads")
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, MAX_CONFIG_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_CONFIG_BYTES:
                raise sandbox.Refused(f"{what}: larger than {MAX_CONFIG_BYTES >> 20} MiB, not a file kprov reads")
        return b"".join(chunks)
    except OSError as exc:
        raise sandbox.Refused(f"{what}: cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def evaluate(
    tree: TreeFacts,
    request: KconfigRequest,
    commands_for: Callable[[KconfigFacts], tuple[str, ...]],
    say: Callable[[str], None] | None = None,
    root: Path | None = None,
) -> KconfigFacts:
    """Run the request's target in a scratch O=, apply ``commands_for(base)`` with scripts/config,
    run olddefconfig, and describe the result (with the base .config inside it)."""
    return evaluate_text(tree, request, commands_for, say, root)[0]


def _scratch(tree: TreeFacts, request: KconfigRequest, runner: sandbox.RunAs, root: Path | None) -> tuple[Path, Path | None]:
    """The scratch O= and its lock file: kprov's own, or for a tree run as its owner one of that
    owner's (locked from root's directory above it, which the owner cannot touch)."""
    if not runner.drops:
        return scratch_dir(tree.path, request.make_vars, root), None
    name = scratch_dir(tree.path, request.make_vars, Path("/")).name
    directory = ownership.owned_dir(runner, "kconfig", name)
    return directory, directory.parent / f".{name}.lock"


def evaluate_text(
    tree: TreeFacts,
    request: KconfigRequest,
    commands_for: Callable[[KconfigFacts], tuple[str, ...]],
    say: Callable[[str], None] | None = None,
    root: Path | None = None,
) -> tuple[KconfigFacts, str]:
    """:func:`evaluate`, and the text of the final .config."""
    runner, source = ownership.tree_runner(tree.path)
    seed = read_seed(request.seed_config, runner) if request.seed_config else None  # before anything is written
    deadline = sandbox.Deadline()
    directory, lock = _scratch(tree, request, runner, root)
    env = make_env()
    as_whom = f" as {runner.shown()}, the tree's owner" if runner.drops else ""
    what = f"{request.target}'s .config"
    with locked(directory, lock):
        for stale in (".config", ".config.old"):
            ownership.remove_below(directory, stale)
        if seed is not None:
            ownership.write_below(directory, ".config", seed, runner)
        first = make_argv(source, str(directory), request.make_vars, request.target)
        if say:
            say(f"evaluating Kconfig{as_whom}: {shown_command(first)}")
        seconds = run(first, env, runner=runner, deadline=deadline)
        base_text = _read_config(directory, what, runner)
        ran = [shown_command(first)]
        base = describe(base_text, request.target, commands=tuple(ran), seconds=seconds)
        args = tuple(commands_for(base))
        if not args:
            facts = describe(
                base_text, request.target, commands=tuple(ran), seconds=seconds, script_args=(), base=base
            )
            return facts, base_text
        dot_config = directory / ".config"
        script = [str(Path(source) / "scripts" / "config"), "--file", str(dot_config)]
        for arg in args:
            script += shlex.split(arg)
        if say:
            say(f"evaluating Kconfig{as_whom}: scripts/config {' '.join(args)}; make olddefconfig")
        seconds += run(script, env, runner=runner, deadline=deadline)
        final_make = make_argv(source, str(directory), request.make_vars, "olddefconfig")
        seconds += run(final_make, env, runner=runner, deadline=deadline)
        ran += [shown_command(["scripts/config", *script[1:]]), shown_command(final_make)]
        text = _read_config(directory, what, runner)
        facts = describe(text, request.target, commands=tuple(ran), seconds=seconds, script_args=args, base=base)
        return facts, text


def _read_config(directory: Path, what: str, runner: sandbox.RunAs) -> str:
    """The scratch's .config, written by the tree's make: a regular file of the user it ran as,
    read without following a link."""
    data = ownership.read_below(directory, ".config", what, owner=runner.uid, limit=MAX_CONFIG_BYTES)
    if data is None:
        raise KconfigError(f"{what} was not written")
    return data.decode("utf-8", errors="replace")


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
        except sandbox.Refused:
            raise  # not a failure to note: kprov will not run this tree's code at all
        except (KconfigError, sandbox.CannotRun, UserError, OSError) as exc:
            message = exc.message if isinstance(exc, (KconfigError, sandbox.CannotRun, UserError)) else str(exc)
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
    return TreeEvaluation(kconfig=kconfig, profile=profile, notes=tuple(notes), depends=tree_depends(tree.path))


def tree_depends(tree: str) -> dict[str, str]:
    """What the tree's own Kconfig says the debug-info options the plan may advise depend on
    (empty when the file cannot be read: the plan then checks against the 6.1 table)."""
    path = Path(tree) / cal.KCONFIG_DEPENDS_FILE
    if path.is_symlink():
        return {}
    try:
        text = read_config_file(path, f"--tree {path}")
    except (OSError, UserError, EnvironmentProblem):
        return {}
    return kconfig_depends(text, tuple(cal.KCONFIG_DEPENDS))
