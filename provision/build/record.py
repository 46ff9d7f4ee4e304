"""One build's record: what ran, how long each phase took, what memory it used, how it ended.

Records are JSON lines in ``$XDG_STATE_HOME/kprov/builds.jsonl`` (``~/.local/state/...``), one a
build, each with ``schema``; ``kprov history`` lists them. A record is keyed by host, tree
version, config hash, compiler, arch and -j, so a later plan can find the builds of the same
tree and config. Reading is bounded (the newest records of a file of at most 64 MiB) and a line
that is not a record of this schema is skipped, never trusted (provision.facts.measured reads
the file, for ``kprov history`` and for ``kprov plan``).

A build that finished or was OOM-killed, and compiled something, also carries ``profile``: the
figures a plan takes from it, in the format ``kprov calibrate`` writes (:func:`profile_of`).
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import EnvironmentProblem, escaped
from provision.facts.measured import history_path, read_history_lines
from provision.model.facts import FROM_BUILD, CalibrationProfile, KconfigFacts, LinkMeasurement

RECORD_SCHEMA = 1
#: Points kept of a build's samples (the plot's resolution); longer builds are thinned evenly.
MAX_SAMPLES = 2000


@dataclass
class PhaseStats:
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_anon_bytes: int = 0
    peak_swap_bytes: int = 0
    planned_peak_bytes: int | None = None


@dataclass
class BuildRecord:
    started: str
    host: str
    user: str
    tree: str | None
    tree_version: str | None
    config_hash: str | None
    compiler: str
    arch: str
    jobs: int | None
    argv: list[str]
    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    units: int
    expected_units: int | None
    phases: dict[str, PhaseStats]
    job_peaks: dict[str, int]  # p50, p90, p99, max (bytes), count
    budget_bytes: int | None
    swap_peak_bytes: int
    zram: dict[str, int] = field(default_factory=dict)  # orig/compr bytes at the build's peak
    stall_us: int = 0
    oom: dict[str, Any] | None = None
    remote_cache: dict[str, Any] = field(default_factory=dict)
    ccache: dict[str, int] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)
    samples: list[list[Any]] = field(default_factory=list)  # [t, anon, swap, jobs, phase]
    schema: int = RECORD_SCHEMA
    # the figures a plan takes from this build, in calibrate's profile format (None: none to take)
    profile: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildRecord:
        if data.get("schema") != RECORD_SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}")
        data = dict(data)
        data["phases"] = {str(k): PhaseStats(**v) for k, v in data["phases"].items()}
        return cls(**data)

    @property
    def key(self) -> tuple:
        return (self.host, self.tree_version, self.config_hash, self.compiler, self.arch)


def percentiles(values: list[int]) -> dict[str, int]:
    """p50, p90, p99 and max of ``values`` (nearest rank), and how many there were."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def rank(p: float) -> int:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]

    return {"p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": ordered[-1], "count": len(ordered),
            "mean": round(sum(ordered) / len(ordered))}


def thin(points: list[list[Any]], limit: int = MAX_SAMPLES) -> list[list[Any]]:
    """At most ``limit`` points, evenly spaced, the first and the last kept."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def check_writable(path: Path | None = None) -> None:
    """The history is missing or a regular file: anything else (a FIFO, a directory, a link) is
    refused before a build starts, not after it ran."""
    path = path or history_path()
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise EnvironmentProblem(f"cannot use the build history {escaped(str(path))}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise EnvironmentProblem(f"the build history {escaped(str(path))} is not a regular file (a link, FIFO or directory)")


def append(record: BuildRecord, path: Path | None = None) -> Path:
    """Add ``record`` to the history (the directory 0700, the file 0600: it names the user's trees)."""
    path = path or history_path()
    check_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OSError(0, "not a regular file")
            f.write(json.dumps(record.to_dict(), separators=(",", ":")) + "\n")
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write the build record to {escaped(str(path))}: {exc.strerror}") from None
    return path


def load(path: Path | None = None) -> list[BuildRecord]:
    """Every readable record of this schema, oldest first (read by provision.facts.measured, the
    reader ``kprov plan`` takes the records' profiles from)."""
    out = []
    for data in read_history_lines(path or history_path()):
        try:
            record = BuildRecord.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            continue
        if _well_typed(record):
            out.append(record)
    return out


_NUMBER = (int, float)


def _well_typed(r: BuildRecord) -> bool:
    """A record a report can print and draw: every field of the type kprov writes (a file anyone
    edited is read, never trusted)."""
    def num(v: Any) -> bool:
        return isinstance(v, _NUMBER) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < 1e18

    def opt(v: Any, kind: Any) -> bool:
        return v is None or isinstance(v, kind)

    try:
        return (
            all(isinstance(v, str) for v in (r.started, r.host, r.user, r.compiler, r.arch))
            and opt(r.tree, str) and opt(r.tree_version, str) and opt(r.config_hash, str)
            and (r.jobs is None or (isinstance(r.jobs, int) and not isinstance(r.jobs, bool)))
            and isinstance(r.exit_code, int) and num(r.wall_seconds) and num(r.cpu_seconds) and num(r.units)
            and (r.expected_units is None or num(r.expected_units))
            and (r.budget_bytes is None or num(r.budget_bytes)) and num(r.swap_peak_bytes) and num(r.stall_us)
            and isinstance(r.argv, list) and all(isinstance(a, str) for a in r.argv)
            and all(isinstance(k, str) and num(p.seconds) and num(p.cpu_seconds) and num(p.peak_anon_bytes)
                    and num(p.peak_swap_bytes) and (p.planned_peak_bytes is None or num(p.planned_peak_bytes))
                    for k, p in r.phases.items())
            and all(isinstance(k, str) and num(v) for k, v in r.job_peaks.items())
            and all(isinstance(k, str) and num(v) for k, v in r.zram.items())
            and (r.oom is None or isinstance(r.oom, dict)) and (r.profile is None or isinstance(r.profile, dict))
            and isinstance(r.remote_cache, dict) and isinstance(r.tail, list) and all(isinstance(t, str) for t in r.tail)
            and all(isinstance(s, list) and len(s) == 5 and all(num(x) for x in s[:4]) and isinstance(s[4], str)
                    for s in r.samples)
        )
    except (AttributeError, TypeError):
        return False


METHOD = (
    "kprov build: the build's process tree sampled about ten times a second from /proc (RSS and swap "
    "of every process, each compile job's own peak), its phases read from Kbuild's step lines"
)
#: Phases whose time is the serial tail of a build (the estimate's "vmlinux step").
_TAIL = ("vmlinux.o", "vmlinux link", "modfinal", "modules")


def profile_of(record: BuildRecord, kconfig: KconfigFacts, cpu_model: str, usable_cpus: int, timed: bool) -> CalibrationProfile | None:
    """The figures a plan takes from ``record`` (a build that finished or was OOM-killed, that
    compiled something), in the profile format ``kprov calibrate`` writes; None for any other.
    ``timed``: the build compiled the whole tree from nothing, so its CPU and time are the build's."""
    count = int(record.job_peaks.get("count", 0))
    if not count or not kconfig.config_hash or (record.exit_code != 0 and not record.oom):
        return None
    timed = timed and record.exit_code == 0 and "compile" in record.phases
    phases = record.phases
    compile_cpu = phases["compile"].cpu_seconds if "compile" in phases else 0.0
    before = [phases[p] for p in ("config", "prepare") if p in phases]
    tail = [phases[p] for p in _TAIL if p in phases]
    oom_jobs = record.oom.get("jobs") if record.oom else None
    oom_jobs = oom_jobs if isinstance(oom_jobs, int) and not isinstance(oom_jobs, bool) and oom_jobs > 0 else 0
    budget = int(record.budget_bytes or 0)
    peaks = {name: int(p.peak_anon_bytes + p.peak_swap_bytes) for name, p in phases.items()}
    return CalibrationProfile(
        method=METHOD, date=record.started, kernel_version=kconfig.kernel_version, tree=record.tree or "",
        target=kconfig.target, arch=kconfig.arch, config_hash=kconfig.config_hash, compiler=kconfig.compiler,
        host=record.host, cpu_model=cpu_model, usable_cpus=max(1, usable_cpus),
        objects_total=record.units if timed else 0, objects_sampled=count,
        rss_mean_bytes=int(record.job_peaks.get("mean", record.job_peaks.get("p50", 0))),
        rss_p50_bytes=int(record.job_peaks.get("p50", 0)), rss_p90_bytes=int(record.job_peaks.get("p90", 0)),
        rss_p99_bytes=int(record.job_peaks.get("p99", 0)), rss_max_bytes=int(record.job_peaks.get("max", 0)),
        cpu_seconds_per_object=round(compile_cpu / record.units, 3) if timed and record.units else 0.0,
        cpu_seconds_total=round(compile_cpu, 1) if timed else 0.0,
        prepare_cpu_seconds=round(sum(p.cpu_seconds for p in before), 1) if timed else 0.0,
        prepare_seconds=round(sum(p.seconds for p in before), 1) if timed else 0.0,
        link=LinkMeasurement(
            measured=timed and bool(tail), peak_bytes=max((peaks[p] for p in _TAIL if p in peaks), default=0),
            seconds=round(sum(p.seconds for p in tail), 1), cpu_seconds=round(sum(p.cpu_seconds for p in tail), 1),
            note="measured by kprov build" if timed and tail else "not measured: not a whole build",
        ),
        seconds_spent=record.wall_seconds, source=FROM_BUILD, build_jobs=record.jobs or 0,
        build_seconds=record.wall_seconds, phase_peaks=peaks, budget_bytes=budget,
        peak_bytes=max(peaks.values(), default=0), stall_seconds=round(record.stall_us / 1e6, 2),
        oom_jobs=oom_jobs, oom_phase=str(record.oom.get("phase") or "") if record.oom else "",
        oom_date=record.started if oom_jobs else "", oom_budget_bytes=budget if oom_jobs else 0,
    ).checked("the build's profile")
