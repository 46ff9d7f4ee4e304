"""``kprov calibrate``: measure this tree on this host, for the planner's figures.

The planner's table holds figures measured on one reference machine and one config (defconfig,
gcc 12). A user's tree, config and compiler differ, so ``kprov calibrate --tree PATH`` measures
them where the build will run, within a time budget (``--minutes``):

1. the planned config, evaluated as ``kprov plan`` does (provision.kconfig), is copied into a
   calibration build directory of its own (one per config hash), and ``make prepare`` runs there,
   timed (headers, host tools, objtool);
2. ``make -n`` lists every compile unit of the build; a stratified sample is taken: the largest
   sources (all of them, when the budget allows) and a low-discrepancy spread over the rest,
   ordered by directory so that any prefix of it covers the tree in proportion;
3. the sample is built through kbuild itself (``make O=... dir/file.o``, batched: each make run
   costs about a second before it compiles) with ``CC`` set to a small compiler wrapper that
   records each compile's peak RSS and CPU seconds from ``wait4``'s rusage (the compiler driver,
   cc1 and as); estimates for the whole build are weighted by stratum;
4. when a previous build of the same config exists (``--build-dir``, else the plan's ``O=``),
   vmlinux is relinked there under ``wait4`` (the largest process of the step: ld, objtool, pahole),
   with the ``CC`` that build used, read from its ``.cmd`` files (another CC would rebuild it all);
   else the link is "not measured";
5. a profile (method, date, kernel version, config hash, compiler version, host) is written under
   ``~/.local/state/kprov/calibration/`` and its path printed; ``kprov plan --tree`` uses it when
   the config hash and the compiler match, and says so in every reason.

All of this is I/O and sits beside provision.facts; the planner receives the profile as data.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from provision import kconfig
from provision.errors import EnvironmentProblem, UserError
from provision.facts import parse_json, read_text
from provision.model import (
    CalibrationProfile,
    Goals,
    HostFacts,
    KconfigFacts,
    LinkMeasurement,
    TreeEvaluation,
)

METHOD = (
    "kprov calibrate: a stratified sample of the configured compile units (largest sources + a "
    "spread over directories) built through kbuild with a wait4 compiler wrapper; make prepare "
    "timed; vmlinux relinked under wait4 when a previous build exists"
)

#: Largest-source stratum: at most this share of all units, and at most this many.
LARGEST_SHARE = 0.02
LARGEST_MAX = 24
#: Objects per make run after the first (small) batch; each run costs ~1-2 s before compiling.
BATCH = 12
FIRST_BATCH = 4
#: Seconds the relink of vmlinux may take before it is abandoned (a huge config's objtool).
LINK_TIMEOUT_S = 3600
#: Fewer measured compiles than this make no profile: the p99 of a handful of units says nothing.
MIN_SAMPLE = 8

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


# --------------------------------------------------------------------------- where things live


def state_root() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kprov" / "calibration"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kprov" / "calibrate"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:40] or "unknown"


def profile_path(k: KconfigFacts, root: Path | None = None) -> Path:
    return (root or state_root()) / f"{k.config_hash[:16]}-{_slug(k.compiler)}.json"


# --------------------------------------------------------------------------- profiles


def load_profile(path: Path) -> CalibrationProfile:
    data = parse_json(read_text(path, f"profile {path}"), f"profile {path}")
    try:
        profile = CalibrationProfile.from_dict(data, where="")
    except (TypeError, ValueError) as exc:
        raise UserError(f"profile {path}: wrong shape ({exc})") from None
    except UserError as exc:
        raise UserError(f"profile {path}: {exc.message}") from None
    return dataclasses.replace(profile, path=str(path))


def save_profile(profile: CalibrationProfile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = profile.to_dict()
    data.pop("path", None)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def find_profile(k: KconfigFacts, tree: str, root: Path | None = None) -> tuple[CalibrationProfile | None, list[str]]:
    """The newest profile measured on this host for ``k``'s config hash and compiler; notes say
    why the profiles of this tree that do not match are not used."""
    directory = root or state_root()
    if not directory.is_dir():
        return None, []
    host = socket.gethostname()
    matching: list[CalibrationProfile] = []
    others: list[str] = []
    for path in sorted(directory.glob("*.json")):
        try:
            profile = load_profile(path)
        except UserError as exc:
            others.append(f"calibration profile {path} is unreadable ({exc.message}): not used")
            continue
        same_tree = os.path.realpath(profile.tree) == os.path.realpath(tree)
        if profile.config_hash == k.config_hash and profile.compiler == k.compiler:
            if profile.host != host:
                if same_tree:
                    others.append(f"calibration profile {path} was measured on host {profile.host}: not used here")
                continue
            if profile.kernel_version != k.kernel_version:
                if same_tree:
                    others.append(
                        f"calibration profile {path} is for Linux {profile.kernel_version}, this tree is "
                        f"{k.kernel_version}: not used"
                    )
                continue
            matching.append(profile)
        elif same_tree:
            why = []
            if profile.config_hash != k.config_hash:
                why.append(f"config {profile.target} hash {profile.config_hash[:12]}, not {k.config_hash[:12]}")
            if profile.compiler != k.compiler:
                why.append(f"compiler '{profile.compiler}', not '{k.compiler}'")
            others.append(
                f"calibration profile {path} is for another config or compiler ({'; '.join(why)}): not used"
            )
    if matching:
        return max(matching, key=lambda p: p.date), []
    return None, others


# --------------------------------------------------------------------------- progress


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


# --------------------------------------------------------------------------- running make


def _wait(argv: list[str], env: dict[str, str], timeout: float | None = None, cwd: str | None = None):
    """Run ``argv`` in a process group of its own; returns (status, rusage, seconds, output tail).
    The rusage is wait4's: the process and every descendant it waited for (maxrss is the largest
    single process)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    tail: list[str] = []
    deadline = None if timeout is None else start + timeout
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                tail = (tail + [line])[-20:]
            if deadline is not None and time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGTERM)
                break
        _pid, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage, time.monotonic() - start, tail


def _make(tree: str, build_dir: Path, make_vars: dict[str, str], jobs: int, *targets: str, keep_going: bool = False) -> list[str]:
    argv = ["make", "-C", tree, f"O={build_dir}", f"-j{jobs}"]
    if keep_going:
        argv.append("-k")
    return argv + [f"{k}={v}" for k, v in make_vars.items()] + list(targets)


_LISTED = re.compile(r"echo '  (CC|AS)\s+(?:\[M\]\s+)?(\S+\.o)'")


def list_units(tree: str, build_dir: Path, make_vars: dict[str, str], env: dict[str, str]) -> list[str]:
    """Every compile unit (``dir/file.o`` as kbuild names it) of the configured build, from a dry
    run of the vmlinux and modules targets."""
    argv = ["make", "-n", "-k", "-C", tree, f"O={build_dir}", "-j1"]
    argv += [f"{k}={v}" for k, v in make_vars.items()] + ["vmlinux", "modules"]
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    units = list(dict.fromkeys(m.group(2) for m in _LISTED.finditer(done.stdout.decode(errors="replace"))))
    return [u for u in units if not u.endswith((".mod.o",)) and "/" in u]


def _source_of(tree: str, unit: str) -> Path | None:
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


def _quantile(pairs: list[tuple[float, float]], q: float) -> float:
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
    for cmd in (build_dir / "init" / ".main.o.cmd", build_dir / "init" / ".version.o.cmd"):
        if not cmd.is_file():
            continue
        first = cmd.read_text(errors="replace").split("\n", 1)[0]
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


def relink(build_dir: Path, tree: str, k: KconfigFacts, env: dict[str, str], say: Callable[[str], None]) -> LinkMeasurement:
    """Relink vmlinux of a previous build of this config, under wait4."""
    vmlinux = build_dir / "vmlinux"
    config = build_dir / ".config"
    if not vmlinux.is_file() or not config.is_file():
        return LinkMeasurement(measured=False, note=f"not measured: no previous build in {build_dir} (no vmlinux)")
    if kconfig.config_hash(config.read_text(errors="replace")) != k.config_hash:
        return LinkMeasurement(measured=False, note=f"not measured: the build in {build_dir} has another .config")
    cc = compile_command_of(build_dir)
    if cc is None:
        return LinkMeasurement(measured=False, note=f"not measured: cannot tell which CC built {build_dir}")
    make_vars = {"CC": " ".join(cc)}
    if "clang" in cc[-1]:
        make_vars["LLVM"] = "1"
    for stale in ("vmlinux", "vmlinux.o"):
        (build_dir / stale).unlink(missing_ok=True)
    jobs = max(1, len(os.sched_getaffinity(0)))
    argv = ["make", "-C", tree, f"O={build_dir}", f"-j{jobs}"] + [f"{k_}={v}" for k_, v in make_vars.items()] + ["vmlinux"]
    say(f"relinking vmlinux in {build_dir} (CC={make_vars['CC']})")
    status, usage, seconds, tail = _wait(argv, env, LINK_TIMEOUT_S)
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
                return binary
    raise EnvironmentProblem("kprov calibrate: cannot build its compiler wrapper (no working C compiler)")


def _read_log(log: Path) -> dict[str, tuple[int, float, float]]:
    """object -> (peak RSS bytes, CPU seconds, wall seconds) of its successful compile."""
    out: dict[str, tuple[int, float, float]] = {}
    if not log.is_file():
        return out
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split(" ", 5)
        if len(parts) != 6 or parts[4] != "0":
            continue
        try:
            rss, user, sys_, wall = int(parts[0]) * 1024, float(parts[1]), float(parts[2]), float(parts[3])
        except ValueError:
            continue
        out[os.path.normpath(parts[5])] = (rss, user + sys_, wall)
    return out


# --------------------------------------------------------------------------- the calibration


@dataclasses.dataclass
class Result:
    profile: CalibrationProfile
    path: Path
    output: Path | None


def calibrate(
    facts: HostFacts,
    goals: Goals,
    minutes: float,
    output: str | None = None,
    progress: Progress | None = None,
    state: Path | None = None,
    cache: Path | None = None,
) -> Result:
    """Measure the planned config of ``facts.tree`` on this host within ``minutes``."""
    from provision import planner
    from provision.catalog import load_catalog

    tree = facts.tree
    if tree is None:
        raise UserError("kprov calibrate needs --tree PATH: the kernel tree to measure")
    progress = progress or Progress()
    say = progress.say
    started = time.monotonic()
    deadline = started + minutes * 60
    env = kconfig.make_env()

    request = planner.config_request(facts, goals)
    if not request.evaluable:
        raise UserError(f"kprov calibrate --tree {tree.path}: {request.why_not} (make mrproper there, or use a clean copy)")
    evaluated = kconfig.evaluate(tree, request, lambda base: planner.config_commands(facts, goals, base), say)
    plan = planner.plan(facts, goals, load_catalog(), TreeEvaluation(kconfig=evaluated))
    jobs = max(1, int(facts.cpu.usable))

    build_dir = (cache or cache_root()) / f"{evaluated.config_hash[:16]}-{_slug(evaluated.arch or 'native')}"
    meta = build_dir / ".kprov"
    with kconfig.locked(meta):
        wrapper = build_wrapper(meta, env)
        compiler = "clang" if plan.config.compiler == "clang" else request.make_vars.get("CROSS_COMPILE", "") + "gcc"
        make_vars = dict(request.make_vars)
        make_vars["CC"] = f"{wrapper} {compiler}"
        scratch = kconfig.scratch_dir(tree.path, request.make_vars)
        shutil.copyfile(scratch / ".config", build_dir / ".config")
        say(f"configuring {build_dir}: make olddefconfig (config hash {evaluated.config_hash[:12]})")
        status, _u, _s, tail = _wait(_make(tree.path, build_dir, make_vars, 1, "olddefconfig"), env)
        if status != 0:
            raise EnvironmentProblem(f"kprov calibrate: make olddefconfig failed in {build_dir}: {(tail or ['?'])[-1][:200]}")
        here = kconfig.config_hash((build_dir / ".config").read_text(errors="replace"))
        if here != evaluated.config_hash:
            raise EnvironmentProblem(
                f"kprov calibrate: the calibration build's config ({here[:12]}) differs from the evaluated one "
                f"({evaluated.config_hash[:12]})"
            )
        say(f"make prepare (-j{jobs}): headers, host tools, objtool")
        status, usage, prepare_s, tail = _wait(_make(tree.path, build_dir, make_vars, jobs, "prepare"), env)
        if status != 0:
            raise EnvironmentProblem(f"kprov calibrate: make prepare failed: {(tail or ['?'])[-1][:200]}")
        prepare_cpu = usage.ru_utime + usage.ru_stime
        # a second run finds prepare done: the figures of the first, fresh one are the build's
        first_prepare = meta / "prepare.json"
        if first_prepare.is_file():
            try:
                kept = json.loads(first_prepare.read_text())
                prepare_s, prepare_cpu = float(kept["seconds"]), float(kept["cpu_seconds"])
            except (ValueError, KeyError, TypeError):
                first_prepare.unlink()
        if not first_prepare.is_file():
            first_prepare.write_text(json.dumps({"seconds": prepare_s, "cpu_seconds": prepare_cpu}) + "\n")

        listing = meta / "units.txt"
        if listing.is_file():
            units = [u for u in listing.read_text().splitlines() if u]
        else:
            say("listing the compile units (make -n vmlinux modules)")
            units = list_units(tree.path, build_dir, make_vars, env)
            listing.write_text("\n".join(units) + "\n")
        if not units:
            raise EnvironmentProblem("kprov calibrate: make -n listed no compile unit for this config")
        sized = []
        for unit in units:
            source = _source_of(tree.path, unit)
            sized.append((unit, source.stat().st_size if source else 0))
        largest, spread = sample_order(sized, evaluated.config_hash)

        link = LinkMeasurement(measured=False, note="not measured")
        previous = Path(plan.config.build_dir) if plan.config.build_dir else None
        if goals.build_dir:
            previous = Path(goals.build_dir)
        if previous is not None:
            link = relink(previous, tree.path, evaluated, env, say)
        else:
            link = LinkMeasurement(measured=False, note="not measured: the plan builds in the tree")
        if not link.measured:
            say(f"link {link.note}")

        log = meta / "compiles.log"
        log.unlink(missing_ok=True)
        wrap_env = dict(env, KPROV_CCWRAP_LOG=str(log))
        queue: list[tuple[str, str]] = []
        a, b = list(largest), list(spread)
        # interleave the strata so that a cut by the budget keeps both represented
        while a or b:
            for _ in range(2):
                if a:
                    queue.append(("largest", a.pop(0)))
            for _ in range(4):
                if b:
                    queue.append(("spread", b.pop(0)))
        tried: dict[str, str] = {}
        batch_times: list[tuple[int, float]] = []
        position = 0
        say(
            f"sampling {len(queue)} compile units ({len(largest)} largest sources first, then a spread over "
            f"the tree) until the {minutes:g} min budget is spent"
        )
        while position < len(queue):
            now = time.monotonic()
            size = FIRST_BATCH if not batch_times else BATCH
            # past the budget, still measure the minimum sample (a profile of a handful says nothing),
            # but never past twice the budget (units that fail to build)
            enough = len(_read_log(log)) >= 2 * MIN_SAMPLE or now > deadline + minutes * 60
            if batch_times:
                per_unit = sum(t for _, t in batch_times) / max(1, sum(n for n, _ in batch_times))
                if now + per_unit * size > deadline and enough:
                    break
            elif now > deadline and enough:
                break
            batch = queue[position : position + size]
            position += len(batch)
            for stratum, unit in batch:
                tried[unit] = stratum
                (build_dir / unit).unlink(missing_ok=True)
            status, _usage, seconds, _tail = _wait(
                _make(tree.path, build_dir, make_vars, jobs, *(u for _, u in batch), keep_going=True), wrap_env
            )
            batch_times.append((len(batch), seconds))
            per_unit = sum(t for _, t in batch_times) / max(1, sum(n for n, _ in batch_times))
            room = max(0.0, deadline - time.monotonic())
            expected = min(len(queue), position + int(room / per_unit))
            progress.bar(len(_read_log(log)), max(expected, 1), min(room, per_unit * (expected - position)), "units compiled")
        progress.close()

    measured = _read_log(log)
    sampled = {u: measured[os.path.normpath(u)] for u in tried if os.path.normpath(u) in measured}
    if len(sampled) < MIN_SAMPLE:
        raise EnvironmentProblem(
            f"kprov calibrate: only {len(sampled)} compile units were measured in {minutes:g} min "
            f"(at least {MIN_SAMPLE} are needed): give --minutes more time"
        )
    strata = {"largest": len(largest), "spread": len(spread)}
    by_stratum: dict[str, list[str]] = {"largest": [], "spread": []}
    for unit in sampled:
        by_stratum[tried[unit]].append(unit)
    weights = {s: (strata[s] / len(by_stratum[s]) if by_stratum[s] else 0.0) for s in strata}
    if not by_stratum["spread"]:  # everything measured came from the largest sources: use them for all
        weights["largest"] = len(units) / len(by_stratum["largest"])
    if not by_stratum["largest"]:
        weights["spread"] = len(units) / len(by_stratum["spread"])
    rss = [(sampled[u][0], weights[tried[u]]) for u in sampled]
    cpu_total = sum(sampled[u][1] * weights[tried[u]] for u in sampled)
    object_bytes = 0.0
    for unit in sampled:
        obj = build_dir / unit
        if obj.is_file():
            object_bytes += obj.stat().st_size * weights[tried[unit]]
    worst = max(sampled, key=lambda u: sampled[u][0])
    profile = CalibrationProfile(
        method=METHOD,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        kernel_version=evaluated.kernel_version,
        tree=tree.path,
        target=evaluated.target,
        arch=evaluated.arch,
        config_hash=evaluated.config_hash,
        compiler=evaluated.compiler,
        host=socket.gethostname(),
        cpu_model=facts.cpu.model,
        usable_cpus=jobs,
        objects_total=len(units),
        objects_sampled=len(sampled),
        rss_mean_bytes=int(sum(r * w for r, w in rss) / sum(w for _, w in rss)),
        rss_p50_bytes=int(_quantile(rss, 0.50)),
        rss_p90_bytes=int(_quantile(rss, 0.90)),
        rss_p99_bytes=int(_quantile(rss, 0.99)),
        rss_max_bytes=int(sampled[worst][0]),
        rss_max_object=worst,
        cpu_seconds_per_object=round(cpu_total / len(units), 3),
        cpu_seconds_total=round(cpu_total, 1),
        object_bytes_total=int(object_bytes),
        prepare_cpu_seconds=round(prepare_cpu, 1),
        prepare_seconds=round(prepare_s, 1),
        link=link,
        seconds_spent=round(time.monotonic() - started, 1),
    )
    path = save_profile(profile, profile_path(evaluated, state))
    written = save_profile(profile, Path(output)) if output else None
    return Result(profile=dataclasses.replace(profile, path=str(path)), path=path, output=written)


def summary(result: Result) -> str:
    p = result.profile
    mib = 1 << 20
    lines = [
        f"calibrated {p.target} of Linux {p.kernel_version} ({p.arch}) with {p.compiler} on {p.host}",
        f"  compile units: {p.objects_sampled} of {p.objects_total} measured",
        f"  peak RSS per compile job: mean {p.rss_mean_bytes / mib:.0f} MiB, p50 {p.rss_p50_bytes / mib:.0f} MiB, p90 {p.rss_p90_bytes / mib:.0f} MiB, "
        f"p99 {p.rss_p99_bytes / mib:.0f} MiB, max {p.rss_max_bytes / mib:.0f} MiB ({p.rss_max_object})",
        f"  compile CPU: {p.cpu_seconds_per_object:.2f} s per unit, ~{p.cpu_seconds_total / 60:.0f} CPU-minutes "
        "for the whole build",
        f"  object files: ~{p.object_bytes_total / mib:.0f} MiB for the whole build",
        f"  make prepare: {p.prepare_seconds:.0f} s ({p.prepare_cpu_seconds:.0f} CPU-s)",
        (
            f"  vmlinux link: peak {p.link.peak_bytes / mib:.0f} MiB, {p.link.seconds:.0f} s ({p.link.note})"
            if p.link.measured
            else f"  vmlinux link: {p.link.note}"
        ),
        f"  took {p.seconds_spent:.0f} s",
        f"profile: {result.path}",
    ]
    if result.output:
        lines.append(f"also written to: {result.output}")
    return "\n".join(lines) + "\n"
