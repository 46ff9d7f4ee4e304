"""The shared compile cache, guarded per build: a circuit breaker around ccache's remote store.

ccache has no daemon and reads its configuration at every call (docs/calibration.md §11), and a
store that hangs costs every compile its operation timeout (about 1 s a unit). So a build whose
ccache configuration names a ``remote_storage`` (the file ``CCACHE_CONFIGPATH`` names) gets a
private copy of that file (0600 in a 0700 directory of the user's ``$XDG_RUNTIME_DIR``, else a
private temporary directory), and ccache is pointed at the copy:

- before make starts, the store is probed once (one deadline, :data:`PROBE_DEADLINE_S`); a store
  that does not answer is left out of the copy, and the build runs on the local cache alone;
- while make runs, ccache's ``remote_storage_error`` and ``remote_storage_timeout`` counters are
  read every :data:`CHECK_EVERY_S` seconds; when they grow by :data:`TRIP_AFTER` since the build
  started (a store that hangs or fails mid-build), the copy is rewritten without the store and
  stays so for the rest of the build (as Bazel's failure circuit breaker does).

The copy holds the store's password: it is removed when the build ends.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from provision.errors import UserError
from provision.facts.cache_probe import (
    PROBE_DEADLINE_S,
    ccache_stats,
    parse_remote_conf,
    probe,
)
from provision.facts.files import read_bounded

#: Remote errors and timeouts since the build started that open the breaker.
TRIP_AFTER = 3
#: How often ccache's counters are read while make runs.
CHECK_EVERY_S = 2.0
_REMOTE_KEYS = ("remote_storage", "remote_only")


def _without_remote(text: str) -> str:
    kept = [line for line in text.splitlines() if line.partition("=")[0].strip() not in _REMOTE_KEYS]
    return "\n".join(kept) + "\n"


class RemoteBreaker:
    """One build's guard of the remote store; inactive when the configuration names none."""

    def __init__(self, env: dict[str, str], deadline: float = PROBE_DEADLINE_S, trip_after: int = TRIP_AFTER):
        self.env = env
        self.deadline = deadline
        self.trip_after = trip_after
        self.active = False
        self.note = ""
        self.dropped_at: float | None = None
        self.baseline = 0
        self.failures = 0
        self._dir: Path | None = None
        self._copy: Path | None = None
        self._text = ""
        self._last_check = 0.0
        self._t0 = time.monotonic()

    def prepare(self) -> None:
        """Probe the store and point ccache at the private copy (in ``env``)."""
        source = self.env.get("CCACHE_CONFIGPATH")
        if not source:
            return
        try:
            st = os.stat(source)
            if not stat.S_ISREG(st.st_mode):
                return
            self._text = read_bounded(source, "ccache's configuration").decode("utf-8", "replace")
            remote = parse_remote_conf(self._text, source)
        except (OSError, UserError):
            return  # not readable by this user: ccache reads it as it would without kprov
        if remote is None:
            return
        self.active = True
        runtime = self.env.get("XDG_RUNTIME_DIR")
        base = runtime if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK) else None
        self._dir = Path(tempfile.mkdtemp(prefix="kprov-build-", dir=base))  # 0700
        self._copy = self._dir / "ccache.conf"
        answer = probe(remote, timeout=self.deadline)
        if answer.state == "answers":
            self._write(self._text)
            self.note = f"{remote.url} answered before the build and served it"
        else:
            self._write(_without_remote(self._text))
            self.dropped_at = 0.0
            self.note = f"{remote.url} did not answer before the build ({answer.state}): built without it"
        self.env["CCACHE_CONFIGPATH"] = str(self._copy)
        self.baseline = self._remote_failures()

    def _write(self, text: str) -> None:
        assert self._dir is not None and self._copy is not None
        tmp = self._dir / f".ccache.conf.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self._copy)  # ccache reads either the old file or the new one, never half

    def _remote_failures(self) -> int:
        """ccache's remote errors and timeouts so far, read as this build's ccache reads its
        configuration (the private copy); the last count when ccache does not answer."""
        stats = ccache_stats(self.env)
        if not stats:
            return self.failures + self.baseline
        return stats.get("remote_storage_error", 0) + stats.get("remote_storage_timeout", 0)

    def check(self) -> None:
        """Read the counters (at most every :data:`CHECK_EVERY_S`) and open the breaker when they climbed."""
        if not self.active or self.dropped_at is not None:
            return
        now = time.monotonic()
        if now - self._last_check < CHECK_EVERY_S:
            return
        self._last_check = now
        self.failures = self._remote_failures() - self.baseline
        if self.failures >= self.trip_after:
            self._write(_without_remote(self._text))
            self.dropped_at = round(now - self._t0, 1)
            self.note = (f"the store failed {self.failures} times (errors and timeouts) during the build: "
                         f"dropped {self.dropped_at:.0f} s in, the rest built on the local cache")

    def summary(self) -> dict:
        if not self.active:
            return {}
        self.failures = max(self.failures, self._remote_failures() - self.baseline)
        return {"note": self.note, "dropped_at": self.dropped_at, "failures": self.failures}

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
