"""Kill a full apply after every task boundary in turn; each time, apply again and compare.

    .venv/bin/python tests/crash_every_task.py [--from N] [--to N] [--after-packages] [--jobs J]

A clean run on a fresh container lists the run's task boundaries (the tasks that ran on the host,
as the tests' kprov_fault callback counts them) and gives the reference manifest
(tests/crash_support.py). Then for each boundary N: a fresh container, an apply SIGKILLed (kprov
and ansible-playbook) right after task N, a plain apply whose manifest must equal the clean
run's, and one more apply that must change nothing. One line per boundary, then a summary.

--after-packages: containers from localhost/kprov-debian:bookworm-build (the packages installed
already, tests/images/build.sh) and only the boundaries after the packages area, which skips the
install in every run. The boundaries up to the end of the packages area need the plain image
(the default): run those with --to N, N the last one the plain image's boundary list shows there.

--jobs J: J boundaries at a time, each on its own container. kprov's apply lock is host-wide
(/run/kprov/apply.lock), so each job's applies run in a mount namespace with a /run/kprov of their
own (unshare + tmpfs); the lock itself is what tests/test_locking.py tests.

About two minutes per boundary and job on two cores: a script, not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash_support import (  # noqa: E402 - tests/ is not a package
    IMAGE,
    goals,
    inventory,
    killed,
    kprov_apply,
    manifest,
    recap,
    remove_container,
    start_container,
)

BUILD_IMAGE = "localhost/kprov-debian:bookworm-build"
LOCK_DIR = Path("/run/kprov")
#: Runs a command with a private, empty /run/kprov (a tmpfs in a mount namespace of its own).
OWN_LOCK_DIR = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs -o mode=0755,size=1m kprov-crash-lock /run/kprov && exec "$@"', "sh")


def clean_run(work: Path, image: str) -> tuple[list[tuple[int, str, str]], dict, list[str] | None]:
    """The boundaries of a clean run ((number, area, task name) each), its manifest and packages."""
    clean, address = start_container(image=image)
    try:
        census = work / "census.tsv"
        start = time.monotonic()
        run = kprov_apply(inventory(work / "clean.ini", clean), work / "state", *goals(address), census=census)
        if run.returncode != 0:
            raise SystemExit(f"the clean run failed (rc={run.returncode}):\n{run.stdout}{run.stderr}")
        packages = (manifest(clean, address).get("plan") or {}).get("packages")
        reference = manifest(clean, address, packages)
        rows = [line.split("\t") for line in census.read_text().splitlines()]
        boundaries = [(int(n), area, name) for n, area, name in rows]
        print(f"clean run on {image}: {time.monotonic() - start:.0f} s, changed={recap(run.stdout)['changed']}, "
              f"{len(boundaries)} task boundaries", flush=True)
        return boundaries, reference, packages
    finally:
        remove_container(clean)


def boundary(n: int, work: Path, image: str, reference: dict, packages: list[str] | None,
             prefix: tuple[str, ...]) -> tuple[str, str]:
    """Strike after task n, apply again, compare: (where it struck, verdict)."""
    ctr, address = start_container(image=image)
    try:
        inv = inventory(work / f"crash-{n}.ini", ctr)
        state = work / f"state-{n}"
        mark = work / f"mark-{n}"
        crash = kprov_apply(inv, state, *goals(address), fault=str(n), mark=mark, prefix=prefix)
        where = mark.read_text().strip().replace("\t", " | ") if mark.exists() else "?"
        if not killed(crash):
            return where, f"the run was not killed (rc={crash.returncode})"
        final = kprov_apply(inv, state, *goals(address), prefix=prefix)
        if final.returncode != 0:
            return where, f"the apply after it failed (rc={final.returncode}): {final.stderr.strip()[-300:]}"
        got = manifest(ctr, address, packages)
        if got != reference:
            diff = sorted(k for k in set(got) | set(reference) if got.get(k) != reference.get(k))
            return where, f"end state differs in {', '.join(diff)}"
        again = kprov_apply(inv, state, *goals(address), prefix=prefix)
        if again.returncode != 0 or recap(again.stdout)["changed"] != 0:
            return where, f"the apply after that changed things (rc={again.returncode})"
        return where, "ok"
    finally:
        remove_container(ctr)


def timed(function, *args):
    start = time.monotonic()
    result = function(*args)
    return time.monotonic() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="first", type=int, default=1)
    parser.add_argument("--to", dest="last", type=int, default=10_000)
    parser.add_argument("--after-packages", action="store_true",
                        help=f"containers from {BUILD_IMAGE}, boundaries after the packages area only")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    image = BUILD_IMAGE if args.after_packages else IMAGE
    work = Path(tempfile.mkdtemp(prefix="kprov-crash-"))

    boundaries, reference, packages = clean_run(work, image)
    areas: dict[str, int] = {}
    for n, area, _ in boundaries:
        areas.setdefault(area, n)
    print("first boundary of each area: " + ", ".join(f"{a} {n}" for a, n in areas.items()), flush=True)
    first = args.first
    if args.after_packages:
        first = max(first, 1 + max((n for n, area, _ in boundaries if area == "packages"), default=0))
    chosen = [n for n, _, _ in boundaries if first <= n <= args.last]
    prefix: tuple[str, ...] = ()
    if args.jobs > 1:
        LOCK_DIR.mkdir(mode=0o755, exist_ok=True)
        prefix = OWN_LOCK_DIR
    print(f"boundaries {chosen[0] if chosen else '-'}..{chosen[-1] if chosen else '-'} on {image}, "
          f"{args.jobs} at a time (work dir {work})", flush=True)

    failures: list[tuple[int, str, str]] = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        started = {pool.submit(timed, boundary, n, work, image, reference, packages, prefix): n for n in chosen}
        for future in as_completed(started):
            n = started[future]
            seconds, (where, verdict) = future.result()
            print(f"task {n} ({where}): {verdict} [{seconds:.0f} s]", flush=True)
            if verdict != "ok":
                failures.append((n, where, verdict))
    print(f"{len(chosen)} task boundaries, {len(failures)} failed"
          + "".join(f"\n  task {n} ({where}): {verdict}" for n, where, verdict in sorted(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
