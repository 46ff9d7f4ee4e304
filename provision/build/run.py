"""Run make as a watched build: one process group, one status line, a record at the end.

make starts in a session of its own (so the whole build can be stopped at once) and dies with
kprov (``PR_SET_PDEATHSIG``); SIGINT, SIGTERM and SIGHUP stop it. Its output is passed through
untouched, line by line; on a terminal one status line is kept under it (phase, units done of the
expected total, elapsed, ETA, memory in use against the plan's budget, swap), else a plain status
line goes to stderr every :data:`PLAIN_STATUS_S` seconds. The last 50 lines are kept for the
summary of a failed build. An OOM kill is named from gcc's own report or the cgroup's counter.
"""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TextIO

from provision.build.breaker import RemoteBreaker
from provision.build.phases import PHASES, classify, oom_line
from provision.build.record import BuildRecord, PhaseStats, percentiles, thin
from provision.build.sampler import Sampler
from provision.errors import EnvironmentProblem, escaped
from provision.facts.cache_probe import ccache_stats
from provision.units import human_bytes

TAIL_LINES = 50
PLAIN_STATUS_S = 15.0
STATUS_REFRESH_S = 0.5
_PR_SET_PDEATHSIG = 1


@dataclass
class BuildRequest:
    """What to run and what the plan expects of it."""

    argv: list[str]
    cwd: str
    env: dict[str, str]
    host: str
    user: str
    compiler: str
    arch: str
    jobs: int | None
    tree: str | None = None
    tree_version: str | None = None
    config_hash: str | None = None
    budget_bytes: int | None = None
    planned_peaks: dict[str, int] = field(default_factory=dict)
    expected_units: int | None = None
    expected_seconds: float | None = None
    expected_source: str = "no estimate"
    uses_ccache: bool = False  # the build compiles through ccache: its counters are read before and after


#: make and its jobs are the OOM killer's first choice, before kprov (which must live to say what
#: happened) and the user's other programs; raising one's own score needs no privilege.
BUILD_OOM_SCORE_ADJ = 500


def _child_setup() -> None:
    """In make's process before it runs: die with kprov, and be killed first when memory runs out."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(BUILD_OOM_SCORE_ADJ))
    except OSError:
        pass


def _own_cgroup_oom_kills() -> int | None:
    """OOM kills counted in this process's memory cgroup (v2 ``memory.events``, v1
    ``memory.oom_control``), or None where neither is readable."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            candidate = f"/sys/fs/cgroup{path}/memory.events"
        elif "memory" in controllers.split(","):
            candidate = f"/sys/fs/cgroup/memory{path}/memory.oom_control"
        else:
            continue
        try:
            with open(candidate) as f:
                for entry in f:
                    key, _, value = entry.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


@contextmanager
def _stop_on_signals(proc: subprocess.Popen) -> Iterator[list[int]]:
    got: list[int] = []

    def handler(signum, _frame):
        got.append(signum)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield got
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class _Watch:
    """make's output read into phases and units; the status line."""

    def __init__(self, request: BuildRequest, out: TextIO, err: TextIO, tty: bool):
        self.request, self.out, self.err, self.tty = request, out, err, tty
        self.phase = "config"
        self.seen_compile = False
        self.units = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.oom: dict | None = None
        self.t0 = time.monotonic()
        self.last_plain = self.t0
        self.status_shown = False
        self.lock = threading.Lock()
        self.sampler: Sampler | None = None

    def line(self, text: str) -> None:
        phase, unit = classify(text, self.seen_compile)
        if phase is not None:
            self.phase = phase
            self.seen_compile = self.seen_compile or phase == "compile"
        self.units += unit
        program = oom_line(text)
        if program and self.oom is None:
            self.oom = {"phase": self.phase, "jobs": self.request.jobs, "program": program, "by": "gcc's report"}
        self.tail.append(text.rstrip("\n"))
        with self.lock:
            if self.tty and self.status_shown:
                self.out.write("\r\x1b[K")
                self.status_shown = False
            self.out.write(text if text.endswith("\n") else text + "\n")
            if self.tty:
                self._status_line()
            self.out.flush()

    def status_text(self) -> str:
        elapsed = time.monotonic() - self.t0
        r = self.request
        total = f"/{r.expected_units}" if r.expected_units else ""
        eta = ""
        if r.expected_units and self.units:
            rate = elapsed / self.units
            eta = f", ETA {_clock(max(0.0, rate * (r.expected_units - self.units)))} ({r.expected_source})"
        elif r.expected_seconds:
            eta = f", ETA {_clock(max(0.0, r.expected_seconds - elapsed))} ({r.expected_source})"
        mem = swap = 0
        if self.sampler is not None and self.sampler.samples:
            last = self.sampler.samples[-1]
            mem, swap = last.anon, last.swap
        budget = f" of {human_bytes(r.budget_bytes)}" if r.budget_bytes else ""
        return escaped(f"kprov build: {self.phase}, {self.units}{total} units, {_clock(elapsed)}{eta}, "
                       f"memory {human_bytes(mem)}{budget}, swap {human_bytes(swap)}")

    def _status_line(self) -> None:
        self.out.write(self.status_text()[:200])
        self.status_shown = True

    def tick(self) -> None:
        now = time.monotonic()
        with self.lock:
            if self.tty:
                if self.status_shown:
                    self.out.write("\r\x1b[K")
                self._status_line()
                self.out.flush()
            elif now - self.last_plain >= PLAIN_STATUS_S:
                self.last_plain = now
                self.err.write(self.status_text() + "\n")
                self.err.flush()

    def clear(self) -> None:
        with self.lock:
            if self.tty and self.status_shown:
                self.out.write("\r\x1b[K")
                self.out.flush()
                self.status_shown = False


def run_build(request: BuildRequest, out: TextIO | None = None, err: TextIO | None = None,
              tty: bool | None = None, interval: float | None = None) -> BuildRecord:
    """Run ``request.argv`` and return its record (the caller stores it)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if tty is None:
        tty = bool(getattr(out, "isatty", lambda: False)())
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    oom_before = _own_cgroup_oom_kills()
    breaker = RemoteBreaker(request.env)
    breaker.prepare()
    try:
        # ccache's counters as this build's ccache reads its configuration (the breaker's copy)
        before = ccache_stats(request.env) if request.uses_ccache else {}
        record = _run(request, out, err, tty, interval, started, oom_before, breaker)
        if before:
            record.ccache = ccache_delta(before, ccache_stats(request.env))
        return record
    finally:
        breaker.close()


#: ccache's counters (``--print-stats``) a build's summary shows, as differences over the build.
CCACHE_COUNTERS = ("local_storage_hit", "local_storage_miss", "remote_storage_hit", "remote_storage_miss",
                   "remote_storage_error", "remote_storage_timeout", "cache_miss")


def ccache_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What the build added to each of :data:`CCACHE_COUNTERS` ({} when ccache did not answer after it)."""
    if not after:
        return {}
    return {key: max(0, after.get(key, 0) - before.get(key, 0)) for key in CCACHE_COUNTERS}


def _run(request: BuildRequest, out: TextIO, err: TextIO, tty: bool, interval: float | None, started: str,
         oom_before: int | None, breaker: RemoteBreaker) -> BuildRecord:
    try:
        proc = subprocess.Popen(
            request.argv, cwd=request.cwd, env=request.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_child_setup, bufsize=1,
            text=True, encoding="utf-8", errors="replace",
        )
    except OSError as exc:
        raise EnvironmentProblem(f"cannot start {request.argv[0]}: {exc.strerror}") from None
    watch = _Watch(request, out, err, tty)
    sampler = Sampler(proc.pid, lambda: watch.phase, **({"interval": interval} if interval else {}))
    watch.sampler = sampler
    sampler.start()
    ticking = threading.Event()

    def ticker() -> None:
        while not ticking.wait(STATUS_REFRESH_S):
            watch.tick()
            breaker.check()

    tick_thread = threading.Thread(target=ticker, name="kprov-build-status", daemon=True)
    tick_thread.start()
    with _stop_on_signals(proc) as stopped:
        try:
            assert proc.stdout is not None
            for text in proc.stdout:
                watch.line(text)
            rc = proc.wait()
        finally:
            ticking.set()
            tick_thread.join(timeout=2)
            sampler.stop()
            watch.clear()
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    wall = time.monotonic() - watch.t0
    oom_after = _own_cgroup_oom_kills()
    if watch.oom is None and oom_before is not None and oom_after is not None and oom_after > oom_before:
        watch.oom = {"phase": watch.phase, "jobs": request.jobs, "program": None, "by": "the cgroup's oom_kill count"}
    if stopped:
        rc = 128 + stopped[0]
    record = _record(request, started, rc, wall, watch, sampler)
    record.remote_cache = breaker.summary()
    return record


def _record(request: BuildRequest, started: str, rc: int, wall: float, watch: _Watch, sampler: Sampler) -> BuildRecord:
    phases: dict[str, PhaseStats] = {}
    previous = None
    for s in sampler.samples:
        stats = phases.setdefault(s.phase, PhaseStats(planned_peak_bytes=request.planned_peaks.get(s.phase)))
        if previous is not None:
            stats.seconds += s.t - previous.t
            stats.cpu_seconds += max(0.0, s.cpu - previous.cpu)
        stats.peak_anon_bytes = max(stats.peak_anon_bytes, s.anon)
        stats.peak_swap_bytes = max(stats.peak_swap_bytes, s.swap)
        previous = s
    ordered = {p: phases[p] for p in PHASES if p in phases}
    for p in phases.values():
        p.seconds, p.cpu_seconds = round(p.seconds, 2), round(p.cpu_seconds, 2)
    cpu = sampler.samples[-1].cpu if sampler.samples else 0.0
    peak = sampler.host_peak
    return BuildRecord(
        started=started, host=request.host, user=request.user, tree=request.tree, tree_version=request.tree_version,
        config_hash=request.config_hash, compiler=request.compiler, arch=request.arch, jobs=request.jobs,
        argv=list(request.argv), exit_code=rc, wall_seconds=round(wall, 2), cpu_seconds=round(cpu, 2),
        units=watch.units, expected_units=request.expected_units, phases=ordered,
        job_peaks=percentiles(list(sampler.job_peaks.values())), budget_bytes=request.budget_bytes,
        swap_peak_bytes=max(0, peak.swap_used - sampler.host_start.swap_used),
        zram={"orig_bytes": peak.zram_orig, "compr_bytes": peak.zram_compr} if peak.zram_orig else {},
        stall_us=max(0, sampler.host_end.stall_us - sampler.host_start.stall_us), oom=watch.oom,
        tail=list(watch.tail) if rc else [],
        samples=thin([[s.t, s.anon, s.swap, s.jobs, s.phase] for s in sampler.samples]),
    )
