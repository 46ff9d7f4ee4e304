"""Calibration's measuring tools: which units of a tree to sample (largest first, then a seeded
spread), make runs with one deadline, a compiler wrapper that records each job's peak memory,
and the link measured with a cgroup's peak.

Every make runs through :mod:`provision.tree.sandbox`: as the user the tree belongs to, in a
process group of its own that is killed when it ends, when its time is up, or when kprov stops or
dies. What kprov reads back from the directories that user writes (the .config, the compiler
wrapper's log, a previous build's .cmd files) is read without following a link.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from provision.errors import EnvironmentProblem, UserError
from provision.model.facts import KconfigFacts, LinkMeasurement
from provision.tree import kconfig, ownership, sandbox

_GOLDEN = (math.sqrt(5) - 1) / 2


_WRAPPER_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ccwrap COMPILER ARGS...: run the compiler; for a compile to a .o, append
   "maxrss_kib user_s sys_s wall_s status object" to $KPROV_CCWRAP_LOG (wait4 rusage covers the
   driver and the cc1/as it waited for). Anything else is exec'd untouched. */
int main(int argc, char **argv)
{
    const char *log = getenv("KPROV_CCWRAP_LOG");
    const char *out = NULL;
    int compile = 0;
    if (argc < 2) {
        fprintf(stderr, "ccwrap: no compiler given\n");
        return 127;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0)
            compile = 1;
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[i + 1];
    }
    size_t n = out ? strlen(out) : 0;
    if (!log || !compile || n < 3 || strcmp(out + n - 2, ".o") != 0) {
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        return 127;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("ccwrap: fork");
        return 127;
    }
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("ccwrap: wait4");
            return 127;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    double sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char line[8192];
    int len = snprintf(line, sizeof line, "%ld %.3f %.3f %.3f %d %s\n", ru.ru_maxrss, user, sys, wall, code, out);
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && len > 0 && len < (int)sizeof line) {
        ssize_t w = write(fd, line, (size_t)len);
        (void)w;
    }
    if (fd >= 0)
        close(fd);
    return code;
}
"""


class Progress:
    """One progress line with a bar and an ETA, redrawn in place on a terminal."""

    def __init__(self, stream=None, width: int = 24):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._open = False

    def say(self, text: str) -> None:
        self._end()
        self._write(f"kprov calibrate: {text}\n")

    def bar(self, done: int, total: int, left_s: float, what: str) -> None:
        filled = int(self.width * done / total) if total else self.width
        line = (
            f"kprov calibrate: [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {what}, "
            f"ETA {_duration(left_s)}"
        )
        if self.tty:
            self._write("\r" + line + "\x1b[K")
            self._open = True
        else:
            self._write(line + "\n")

    def _end(self) -> None:
        if self._open:
            self._write("\n")
            self._open = False

    def close(self) -> None:
        self._end()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def wait_for(
    argv: list[str],
    env: dict[str, str],
    timeout: float | None = None,
    runner: sandbox.RunAs | None = None,
    on_line: Callable[[str], None] | None = None,
):
    """Run ``argv`` as ``runner`` in a process group of its own, for at most ``timeout`` seconds;
    returns (status, rusage, seconds, output tail). The rusage is wait4's: the process and every
    descendant it waited for (maxrss is the largest single process)."""
    deadline = None if timeout is None else sandbox.Deadline(timeout).at
    done = sandbox.run(argv, runner or sandbox.as_self(), env, deadline, on_line)
    tail = list(done.tail)
    if done.timed_out:
        tail.append(f"stopped after {timeout:g} s")
    return done.status, done.usage, done.seconds, tail


def run_make(tree: str, build_dir: Path, make_vars: dict[str, str], jobs: int, *targets: str, keep_going: bool = False) -> list[str]:
    argv = ["make", "-C", tree, f"O={build_dir}", f"-j{jobs}"]
    if keep_going:
        argv.append("-k")
    return argv + [f"{k}={v}" for k, v in make_vars.items()] + list(targets)


_LISTED = re.compile(r"echo '  (CC|AS)\s+(?:\[M\]\s+)?(\S+\.o)'")


def plain_unit(unit: str) -> bool:
    """A unit name kbuild printed that names a file below the build directory (the tree's make
    prints it: no absolute path, no ``..``)."""
    parts = unit.split("/")
    return len(parts) > 1 and not unit.startswith("/") and ".." not in parts and "" not in parts


def list_units(
    tree: str,
    build_dir: Path,
    make_vars: dict[str, str],
    env: dict[str, str],
    runner: sandbox.RunAs | None = None,
    timeout: float | None = None,
) -> list[str]:
    """Every compile unit (``dir/file.o`` as kbuild names it) of the configured build, from a dry
    run of the vmlinux and modules targets."""
    argv = ["make", "-n", "-k", "-C", tree, f"O={build_dir}", "-j1"]
    argv += [f"{k}={v}" for k, v in make_vars.items()] + ["vmlinux", "modules"]
    found: dict[str, None] = {}

    def take(line: str) -> None:
        for m in _LISTED.finditer(line):
            found.setdefault(m.group(2))

    wait_for(argv, env, timeout, runner, take)
    return [u for u in found if not u.endswith((".mod.o",)) and plain_unit(u)]


def unit_source(tree: str, unit: str) -> Path | None:
    stem = os.path.normpath(unit)[: -len(".o")]
    for ext in (".c", ".S"):
        path = Path(tree) / (stem + ext)
        if path.is_file():
            return path
    return None


def _group(unit: str) -> str:
    parts = os.path.normpath(unit).split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def sample_order(units: list[tuple[str, int]], seed: str) -> tuple[list[str], list[str]]:
    """(largest stratum, the rest in a spread order). ``units`` is (unit, source bytes). The rest
    is sorted by path and walked by the golden-ratio sequence, so every prefix of the order is
    spread over the directories in proportion to their size."""
    count = max(1, min(LARGEST_MAX, int(len(units) * LARGEST_SHARE)))
    by_size = sorted(units, key=lambda u: (-u[1], u[0]))
    largest = [u for u, _ in by_size[:count]]
    rest = sorted(u for u, _ in by_size[count:])
    offset = (int.from_bytes(seed.encode()[:8].ljust(8, b"\0"), "big") % 1000) / 1000
    order, seen = [], set()
    n = len(rest)
    i = 0
    while len(order) < n:
        index = int(((offset + i * _GOLDEN) % 1.0) * n)
        while index in seen:  # the sequence revisits a slot: take the next free one
            index = (index + 1) % n
        seen.add(index)
        order.append(rest[index])
        i += 1
    return largest, order


def quantile_of(pairs: list[tuple[float, float]], q: float) -> float:
    """Weighted quantile of (value, weight) pairs."""
    pairs = sorted(pairs)
    total = sum(w for _, w in pairs)
    acc = 0.0
    for value, weight in pairs:
        acc += weight
        if acc >= q * total:
            return value
    return pairs[-1][0]


def compile_command_of(build_dir: Path) -> list[str] | None:
    """The CC a previous build used (``ccache gcc``, ``gcc``), from one of its .cmd files."""
    for cmd in ("init/.main.o.cmd", "init/.version.o.cmd"):
        try:
            data = ownership.read_below(build_dir, cmd, f"{build_dir}/{cmd}")
        except (UserError, OSError):
            data = None
        if data is None:
            continue
        first = data.decode(errors="replace").split("\n", 1)[0]
        m = re.match(r"^(?:saved)?cmd_\S+ := (.*)$", first)
        if not m:
            continue
        words = []
        for word in m.group(1).split():
            if word.startswith("-"):
                break
            words.append(word)
        return words or None
    return None


def relink(
    build_dir: Path,
    tree: str,
    k: KconfigFacts,
    env: dict[str, str],
    say: Callable[[str], None],
    runner: sandbox.RunAs | None = None,
) -> LinkMeasurement:
    """Relink vmlinux of a previous build of this config, under wait4, as ``runner``."""
    runner = runner or sandbox.as_self()
    vmlinux = build_dir / "vmlinux"
    if not vmlinux.is_file() or not (build_dir / ".config").is_file():
        return LinkMeasurement(measured=False, note=f"not measured: no previous build in {build_dir} (no vmlinux)")
    try:
        config = ownership.read_below(build_dir, ".config", f"{build_dir}/.config")
    except (UserError, OSError):
        config = None
    if config is None or kconfig.config_hash(config.decode(errors="replace")) != k.config_hash:
        return LinkMeasurement(measured=False, note=f"not measured: the build in {build_dir} has another .config")
    cc = compile_command_of(build_dir)
    if cc is None:
        return LinkMeasurement(measured=False, note=f"not measured: cannot tell which CC built {build_dir}")
    make_vars = {"CC": " ".join(cc)}
    if "clang" in cc[-1]:
        make_vars["LLVM"] = "1"
    stale = ("vmlinux", "vmlinux.o")
    if runner.drops:  # the owner's directory: removed as the owner
        wait_for(["rm", "-f", "--", *(str(build_dir / name) for name in stale)], env, LINK_TIMEOUT_S, runner)
    else:
        for name in stale:
            ownership.remove_below(build_dir, name)
    jobs = max(1, len(os.sched_getaffinity(0)))
    argv = ["make", "-C", tree, f"O={build_dir}", f"-j{jobs}"] + [f"{k_}={v}" for k_, v in make_vars.items()] + ["vmlinux"]
    say(f"relinking vmlinux in {build_dir} (CC={make_vars['CC']})")
    status, usage, seconds, tail = wait_for(argv, env, LINK_TIMEOUT_S, runner)
    if status != 0:
        return LinkMeasurement(measured=False, note=f"not measured: make vmlinux failed ({(tail or ['?'])[-1][:200]})")
    return LinkMeasurement(
        measured=True,
        peak_bytes=int(usage.ru_maxrss) * 1024,
        seconds=round(seconds, 1),
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 1),
        note=f"make vmlinux relinked in {build_dir} with CC={make_vars['CC']}",
    )


def build_wrapper(directory: Path, env: dict[str, str]) -> Path:
    """The compiler wrapper, built for this host (never with a cross compiler)."""
    source = directory / "ccwrap.c"
    binary = directory / "ccwrap"
    if binary.is_file() and source.is_file() and source.read_text() == _WRAPPER_C:
        return binary
    directory.mkdir(parents=True, exist_ok=True)
    source.write_text(_WRAPPER_C)
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc, path=env.get("PATH")):
            done = subprocess.run([cc, "-O2", "-o", str(binary), str(source)], env=env, capture_output=True, check=False)
            if done.returncode == 0:
                os.chmod(binary, 0o755)  # run by the tree's owner too
                return binary
    raise EnvironmentProblem("kprov calibrate: cannot build its compiler wrapper (no working C compiler)")


def read_log(log: Path, owner: int | None = None) -> dict[str, tuple[int, float, float]]:
    """object -> (peak RSS bytes, CPU seconds, wall seconds) of its successful compile (the log
    the wrapper wrote as ``owner``)."""
    out: dict[str, tuple[int, float, float]] = {}
    data = ownership.read_below(log.parent, log.name, f"the compile log {log}", owner=owner)
    if data is None:
        return out
    for line in data.decode(errors="replace").splitlines():
        parts = line.split(" ", 5)
        if len(parts) != 6 or parts[4] != "0":
            continue
        try:
            rss, user, sys_, wall = int(parts[0]) * 1024, float(parts[1]), float(parts[2]), float(parts[3])
        except ValueError:
            continue
        out[os.path.normpath(parts[5])] = (rss, user + sys_, wall)
    return out


LARGEST_MAX = 24


#: Largest-source stratum: at most this share of all units, and at most this many.
LARGEST_SHARE = 0.02


#: Seconds the relink of vmlinux may take before it is abandoned (a huge config's objtool).
LINK_TIMEOUT_S = 3600
