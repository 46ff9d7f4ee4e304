"""A run's record: its artifacts directory under ``~/.local/state/kprov/runs`` (the newest kept,
older ones pruned), the recap from ansible-runner's final stats, and the failed tasks it left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.apply.progress import RECAP_KEYS, area_of, failure_text, one_line
from provision.errors import EnvironmentProblem

#: Run directories kept under the state dir; older ones are removed when a new run starts.
RUNS_KEPT = 20


def state_dir() -> Path:
    """kprov's XDG state dir: $XDG_STATE_HOME/kprov, else ~/.local/state/kprov."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "kprov"


def new_run_dir() -> Path:
    """A fresh private data dir, ``runs/<UTC timestamp>-<pid>[-n]``, readable by its owner only."""
    runs = state_dir() / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create kprov's run directory {runs}: {exc.strerror}") from None
    _prune_runs(runs)
    stem = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    for n in range(1, 1000):
        path = runs / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            continue
    raise EnvironmentProblem(f"cannot create a fresh run directory in {runs}")


_RUN_NAME = re.compile(r"^\d{8}T\d{6}Z-\d+(-\d+)?$")


def _prune_runs(runs: Path) -> None:
    """Keep the newest RUNS_KEPT - 1 runs (the new one makes RUNS_KEPT)."""
    try:
        names = sorted(p.name for p in runs.iterdir() if p.is_dir() and _RUN_NAME.match(p.name))
    except OSError:
        return
    for name in names[: max(0, len(names) - (RUNS_KEPT - 1))]:
        shutil.rmtree(runs / name, ignore_errors=True)


def host_stats(stats: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """ansible-runner's stats (counter -> host -> n) as host -> Ansible's recap counters."""
    hosts: set[str] = set()
    for key in (*RECAP_KEYS, "dark", "failures", "processed"):
        hosts.update((stats.get(key) or {}).keys())
    return {
        host: {key: int((stats.get(_RUNNER_STATS_KEYS.get(key, key)) or {}).get(host, 0)) for key in RECAP_KEYS}
        for host in sorted(hosts)
    }


def error_lines_of(stdout_file: Path) -> list[str]:
    """Ansible's ERROR lines (a syntax error, a missing role) from the run's saved stdout."""
    try:
        text = stdout_file.read_text(errors="replace")
    except OSError:
        return []
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = []
    for ln in text.splitlines():
        s = ln.strip()
        if s.startswith(("ERROR!", "[ERROR]:")):
            lines.append(one_line(s.removeprefix("ERROR!").removeprefix("[ERROR]:").strip()))
    return lines


def collect_failures(artifacts: Path, outcome: RunOutcome) -> None:
    """Failure messages and the failed tasks' results, from the events the run saved."""
    events_dir = artifacts / "job_events"
    try:
        files = sorted(events_dir.glob("*.json"), key=lambda p: int(p.name.split("-", 1)[0]))
    except (OSError, ValueError):
        return
    for f in files:
        try:
            event = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        data = event.get("event_data") or {}
        host = data.get("host")
        if event.get("event") == "runner_on_unreachable" and host:
            outcome.unreachable.setdefault(host, failure_text(data.get("res") or {}))
        elif event.get("event") == "runner_on_failed" and host and not data.get("ignore_errors"):
            res = data.get("res") or {}
            outcome.failures.setdefault(host, f"{data.get('task') or '?'}: {failure_text(res)}")
            outcome.failed_tasks.setdefault(host, (str(data.get("task") or ""), area_of(data), res))


#: ansible-runner's stats names for the recap counters that Ansible names differently.
_RUNNER_STATS_KEYS = {"unreachable": "dark", "failed": "failures"}


@dataclass
class RunOutcome:
    """A finished run before it is judged: the result plus what a caller needs to explain it."""

    result: ApplyResult
    error_lines: list[str] = field(default_factory=list)  # ERROR lines of Ansible's own output
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> Ansible's message
    failures: dict[str, str] = field(default_factory=dict)  # host -> first failure message
    #: host -> (task name, role area, result) of its first failure, for provision.apply.failures
    failed_tasks: dict[str, tuple[str, str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyResult:
    """What one Ansible run did. ``stats`` maps host -> the recap counters (RECAP_KEYS)."""

    rc: int
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    stats: dict[str, dict[str, int]]
    artifacts_dir: str
    failed_hosts: tuple[str, ...] = ()
    unreachable_hosts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.failed_hosts and not self.unreachable_hosts

    def total(self, key: str) -> int:
        """Sum of one recap counter over every host (``total("changed") == 0`` after a re-run)."""
        return sum(s.get(key, 0) for s in self.stats.values())
