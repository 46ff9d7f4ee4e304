"""One build's record: what ran, how long each phase took, what memory it used, how it ended.

Records are JSON lines in ``$XDG_STATE_HOME/kprov/builds.jsonl`` (``~/.local/state/...``), one a
build, each with ``schema``; ``kprov history`` lists them. A record is keyed by host, tree
version, config hash, compiler, arch and -j, so a later plan can find the builds of the same
tree and config. Reading is bounded (the newest records of a file of at most 64 MiB) and a line
that is not a record of this schema is skipped, never trusted.
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

RECORD_SCHEMA = 1
MAX_HISTORY_BYTES = 64 << 20
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

    return {"p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": ordered[-1], "count": len(ordered)}


def thin(points: list[list[Any]], limit: int = MAX_SAMPLES) -> list[list[Any]]:
    """At most ``limit`` points, evenly spaced, the first and the last kept."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def history_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "kprov" / "builds.jsonl"


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
    """Every readable record of this schema, oldest first."""
    path = path or history_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read the build history {path}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise EnvironmentProblem(f"the build history {escaped(str(path))} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        size = st.st_size
        if size > MAX_HISTORY_BYTES:
            f.seek(size - MAX_HISTORY_BYTES)
            f.readline()
        data = f.read(MAX_HISTORY_BYTES)
    out = []
    for line in data.splitlines():
        try:
            record = BuildRecord.from_dict(json.loads(line))
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
            and (r.oom is None or isinstance(r.oom, dict))
            and isinstance(r.remote_cache, dict) and isinstance(r.tail, list) and all(isinstance(t, str) for t in r.tail)
            and all(isinstance(s, list) and len(s) == 5 and all(num(x) for x in s[:4]) and isinstance(s[4], str)
                    for s in r.samples)
        )
    except (AttributeError, TypeError):
        return False
