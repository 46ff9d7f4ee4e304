"""Memory and CPU of a running build, sampled from /proc: the only way that needs no privilege.

Every ``interval`` (0.1 s: ten samples a second) the sampler walks the process tree under make
and reads each process's ``/proc/PID/status`` (``RssAnon``, ``VmRSS``, ``VmSwap``) and
``/proc/PID/stat`` (its CPU time, and its waited-for children's): the tree's anonymous memory,
swap, running compile jobs and CPU seconds. A compile job (cc1, cc1plus, clang, ...) keeps its own
peak, so the record can give the p50/p90/p99 of jobs' peaks. The host's swap in use, zram's
``mm_stat`` (original and compressed bytes) and ``/proc/pressure/memory``'s stall total are read
with each sample too. Nothing here needs root or a cgroup.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Samples a second (the issue's floor is ten).
INTERVAL_S = 0.1
#: Programs whose processes are compile jobs: their peaks are the per-job figures.
COMPILERS = frozenset({"cc1", "cc1plus", "clang", "clang-14", "clang-15", "clang-16", "clang-17", "clang-18",
                       "clang-19", "rustc"})
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    t: float  # seconds since the build started
    anon: int  # the tree's anonymous memory (bytes)
    rss: int  # the tree's resident memory (bytes)
    swap: int  # the tree's swapped-out memory (bytes)
    jobs: int  # compile jobs running
    cpu: float  # the tree's CPU seconds so far
    phase: str


@dataclass
class HostMemory:
    swap_used: int = 0
    zram_orig: int = 0
    zram_compr: int = 0
    stall_us: int = 0


def _status(pid: int) -> tuple[str, int, int, int] | None:
    """(name, RssAnon, VmRSS, VmSwap) of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    name, anon, rss, swap = "", 0, 0, 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "Name":
            name = value.strip()
        elif key == "RssAnon":
            anon = int(value.split()[0]) * 1024
        elif key == "VmRSS":
            rss = int(value.split()[0]) * 1024
        elif key == "VmSwap":
            swap = int(value.split()[0]) * 1024
    return name, anon, rss, swap


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its waited-for children)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    # after "pid (comm) ": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based in proc(5)
    try:
        ppid = int(fields[1])
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    except (IndexError, ValueError):
        return None
    return ppid, ticks / _TICKS


def tree_of(root: int) -> dict[int, tuple[int, float]]:
    """The processes under ``root`` (root included): pid -> (ppid, CPU seconds)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            got = _stat(int(entry.name))
            if got is not None:
                stats[int(entry.name)] = got
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[int, tuple[int, float]] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in out:
            out[pid] = stats[pid]
            todo.extend(children.get(pid, ()))
    return out


def host_memory(proc: str = "/proc", sys_block: str = "/sys/block") -> HostMemory:
    """The host's swap in use, zram's original and compressed bytes, memory stall microseconds."""
    m = HostMemory()
    try:
        with open(f"{proc}/meminfo") as f:
            info = {k: int(v.split()[0]) * 1024 for k, _, v in (line.partition(":") for line in f) if v.strip()}
        m.swap_used = max(0, info.get("SwapTotal", 0) - info.get("SwapFree", 0))
    except (OSError, ValueError):
        pass
    try:
        for entry in os.scandir(sys_block):
            if entry.name.startswith("zram"):
                try:
                    with open(f"{sys_block}/{entry.name}/mm_stat") as f:
                        parts = f.read().split()
                    m.zram_orig += int(parts[0])
                    m.zram_compr += int(parts[1])
                except (OSError, ValueError, IndexError):
                    continue
    except OSError:
        pass
    try:
        with open(f"{proc}/pressure/memory") as f:
            for line in f:
                if line.startswith("some"):
                    m.stall_us = int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return m


@dataclass
class Sampler:
    """Samples the tree under ``root`` on a thread until :meth:`stop`; ``phase`` is read from the
    caller (the phase of make's latest step line) at each sample."""

    root: int
    phase: Callable[[], str]
    interval: float = INTERVAL_S
    samples: list[Sample] = field(default_factory=list)
    job_peaks: dict[int, int] = field(default_factory=dict)
    host_start: HostMemory = field(default_factory=HostMemory)
    host_peak: HostMemory = field(default_factory=HostMemory)
    host_end: HostMemory = field(default_factory=HostMemory)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0
    _cpu_done: float = 0.0  # CPU seconds of processes that left the tree (not in a live parent's cutime yet)
    _last_cpu: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        self._t0 = time.monotonic()
        self.host_start = host_memory()
        self._thread = threading.Thread(target=self._loop, name="kprov-build-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.host_end = host_memory()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> Sample:
        tree = tree_of(self.root)
        phase = self.phase()
        anon = rss = swap = jobs = 0
        for pid in tree:
            status = _status(pid)
            if status is None:
                continue
            name, a, r, s = status
            anon, rss, swap = anon + a, rss + r, swap + s
            if name in COMPILERS:
                jobs += 1
                # the per-job figures are the compile phase's units: not the host tools of prepare
                # (each a few MiB, short enough to be sampled before its peak) nor modfinal's .mod.o
                if phase == "compile" and a > self.job_peaks.get(pid, 0):
                    self.job_peaks[pid] = a
        cpu = sum(c for _, c in tree.values())
        if self.samples and cpu < self.samples[-1].cpu:
            cpu = self.samples[-1].cpu  # a sub-make exited before its parent waited: keep the total monotonic
        host = host_memory()
        self.host_peak.swap_used = max(self.host_peak.swap_used, host.swap_used)
        self.host_peak.zram_orig = max(self.host_peak.zram_orig, host.zram_orig)
        self.host_peak.zram_compr = max(self.host_peak.zram_compr, host.zram_compr)
        sample = Sample(round(time.monotonic() - self._t0, 3), anon, rss, swap, jobs, round(cpu, 2), phase)
        self.samples.append(sample)
        return sample
