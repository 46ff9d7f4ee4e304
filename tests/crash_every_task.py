"""Kill a full apply after every task boundary in turn; each time, apply again and compare.

    .venv/bin/python tests/crash_every_task.py [--from N] [--to N]

For N = 1, 2, ... (tasks that ran on the host, counted by the tests' kprov_fault callback): a fresh
container, an apply SIGKILLed (kprov and ansible-playbook) right after task N, a plain apply, and
its manifest (tests/crash_support.py) compared with a clean run's; then one more apply that must
change nothing. Stops when a run is no longer killed (N is past the last task). Prints one line per
boundary and a summary. Too slow for CI (about two minutes per boundary): a script, not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash_support import (  # noqa: E402 - tests/ is not a package
    goals,
    inventory,
    killed,
    kprov_apply,
    manifest,
    recap,
    remove_container,
    start_container,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="first", type=int, default=1)
    parser.add_argument("--to", dest="last", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kprov-crash-"))
    state = work / "state"

    clean, clean_address = start_container()
    try:
        start = time.monotonic()
        run = kprov_apply(inventory(work / "clean.ini", clean), state, *goals(clean_address))
        if run.returncode != 0:
            print(run.stdout + run.stderr)
            return 1
        reference = manifest(clean, clean_address)
        packages = (reference.get("plan") or {}).get("packages")
        reference = manifest(clean, clean_address, packages)
        print(f"clean run: {time.monotonic() - start:.0f} s, changed={recap(run.stdout)['changed']}")
    finally:
        remove_container(clean)

    failures, boundaries = [], 0
    for n in range(args.first, args.last + 1):
        ctr, address = start_container()
        try:
            start = time.monotonic()
            inv = inventory(work / f"crash-{n}.ini", ctr)
            mark = work / f"mark-{n}"
            crash = kprov_apply(inv, state, *goals(address), fault=str(n), mark=mark)
            if not killed(crash):
                print(f"task {n}: the run ended before it (rc={crash.returncode}): {n - 1} boundaries")
                break
            boundaries += 1
            where = mark.read_text().strip().replace("\t", " | ") if mark.exists() else "?"
            final = kprov_apply(inv, state, *goals(address))
            same = final.returncode == 0 and manifest(ctr, address, packages) == reference
            again = kprov_apply(inv, state, *goals(address)) if same else None
            quiet = again is not None and again.returncode == 0 and recap(again.stdout)["changed"] == 0
            verdict = "ok" if same and quiet else ("end state differs" if not same else "re-run changed things")
            print(f"task {n} ({where}): {verdict} [{time.monotonic() - start:.0f} s]", flush=True)
            if verdict != "ok":
                failures.append((n, where, verdict))
        finally:
            remove_container(ctr)
    print(f"{boundaries} task boundaries, {len(failures)} failed" + "".join(f"\n  {f}" for f in failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
