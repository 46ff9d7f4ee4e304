"""Benchmark (not a test): wall time of ``kprov apply -i`` on a fresh container, then of a re-run.

    .venv/bin/python tests/bench_apply.py [IMAGE] [--stock-connection] [SWITCH...]

Starts a container of localhost/kprov-debian:bookworm (or IMAGE), applies kprov's plan to it with
the ``kprov`` console script next to this Python, re-runs the same command on the converged
container, prints both wall times and the recap counters, and removes the container. The re-run
must report changed=0; its target here is <= 20 s.

The connection is the suite's (tests/ansible_plugins/connection/podman_pipelined.py: one podman
exec per module, as a module is one round trip over SSH, where kprov turns pipelining on).
--stock-connection uses containers.podman.podman instead, which cannot pipeline (four podman
execs per module): the same run, to show what the connection costs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import CONNECTION, container_host, suite_ansible_env  # noqa: E402 - tests/ is not a package

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGE = "localhost/kprov-debian:bookworm"
DEFAULT_SWITCHES = ("--zram", "--ccache")
RERUN_TARGET_SECONDS = 20


def env() -> dict[str, str]:
    return {**os.environ, **suite_ansible_env()}


def apply(kprov: Path, inventory: Path, state: Path, switches: tuple[str, ...]) -> tuple[float, int, dict[str, int]]:
    start = time.monotonic()
    proc = subprocess.run([str(kprov), "apply", "-i", str(inventory), *switches],
                          env={**env(), "XDG_STATE_HOME": str(state)}, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    m = re.search(r"^ctr\s*: (ok=.*)$", proc.stdout, re.M)
    counters = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))} if m else {}
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
    return seconds, proc.returncode, counters


def main(argv: list[str]) -> int:
    image = argv[0] if argv and not argv[0].startswith("-") else DEFAULT_IMAGE
    stock = "--stock-connection" in argv
    connection = "containers.podman.podman" if stock else CONNECTION
    switches = tuple(a for a in argv if a.startswith("-") and a != "--stock-connection") or DEFAULT_SWITCHES
    kprov = Path(sys.executable).parent / "kprov"
    name = f"kprov-bench-{uuid.uuid4().hex[:10]}"
    subprocess.run(["podman", "run", "-d", "--name", name, image, "sleep", "infinity"],
                   env=env(), check=True, capture_output=True)
    try:
        with tempfile.TemporaryDirectory(prefix="kprov-bench-") as tmp:
            inv = Path(tmp) / "inventory.ini"
            print(f"connection: {connection}")
            inv.write_text(container_host(name, connection=connection))
            state = Path(tmp) / "state"
            first_s, first_rc, first = apply(kprov, inv, state, switches)
            print(f"first apply : {first_s:6.1f} s  rc={first_rc}  {first}")
            rerun_s, rerun_rc, rerun = apply(kprov, inv, state, switches)
            print(f"re-run      : {rerun_s:6.1f} s  rc={rerun_rc}  {rerun}")
            converged = rerun_rc == 0 and rerun.get("changed") == 0
            print(f"re-run changed=0: {'yes' if converged else 'NO'}; "
                  f"re-run target <= {RERUN_TARGET_SECONDS} s: {'met' if rerun_s <= RERUN_TARGET_SECONDS else 'MISSED'}")
            return 0 if first_rc == 0 and converged else 1
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], env=env(), capture_output=True, check=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
