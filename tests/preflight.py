#!/usr/bin/env python3
"""What the test suite needs, from one list (tests/system-packages.txt): install, then check.

    python3 tests/preflight.py packages            the listed packages dpkg does not report installed
    python3 tests/preflight.py check [--venv DIR] [--image NAME ...] [--list FILE]

``check`` verifies every item the list names (commands on PATH, files, Python modules), then the
venv's tools and Python packages, the container images, and that podman really runs a container
with ``--init`` under the suite's containers.conf. It stops at the first class of failure with one
line per missing item, prefixed ``preflight:``, and exits 1. Standard library only: it runs before
the venv exists.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_LIST = HERE / "system-packages.txt"

#: What the suite runs from the venv (tests/run.sh installs them with ``pip install '.[test]'``).
VENV_TOOLS = ("kprov", "ansible-playbook", "ansible-galaxy", "ansible-runner", "ansible-lint", "ansible-test", "molecule", "pytest",
              "lint-imports")
VENV_MODULES = ("provision", "ansible_runner", "hypothesis", "molecule_plugins", "xdist")


@dataclass(frozen=True)
class Requirement:
    package: str
    checks: tuple[str, ...]
    line: int


class ListError(Exception):
    pass


def parse_list(text: str) -> list[Requirement]:
    """``PACKAGE CHECK...  # comment`` lines; a package without a check is a mistake in the list."""
    out: list[Requirement] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        package, *checks = line.split()
        if not checks:
            raise ListError(f"line {number}: package {package} names nothing to check")
        for check in checks:
            if not (check.startswith(("/", "py:")) or "/" not in check):
                raise ListError(f"line {number}: check {check!r} is neither a command, an absolute path nor py:MODULE")
        out.append(Requirement(package, tuple(checks), number))
    if not out:
        raise ListError("the list names no package")
    return out


def load_list(path: Path) -> list[Requirement]:
    try:
        return parse_list(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ListError(f"cannot read {path}: {exc.strerror}") from None


def check_item(check: str) -> bool:
    if check.startswith("py:"):
        return importlib.util.find_spec(check[3:]) is not None
    if check.startswith("/"):
        return os.path.exists(check)
    return shutil.which(check) is not None


def missing_items(requirements: list[Requirement], source: str = "tests/system-packages.txt") -> list[str]:
    """One message per check that fails, naming the package that provides it."""
    return [
        f"{check} is missing (Debian package {req.package}, {source} line {req.line})"
        for req in requirements
        for check in req.checks
        if not check_item(check)
    ]


def installed(package: str) -> bool:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return False
    return out.returncode == 0 and out.stdout.strip().endswith("ok installed")


def packages_to_install(requirements: list[Requirement]) -> list[str]:
    """Packages dpkg does not report installed, or whose checks fail (a removed file is repaired)."""
    return [r.package for r in requirements if not installed(r.package) or not all(map(check_item, r.checks))]


def venv_problems(venv: Path) -> list[str]:
    problems = [f"{venv}/bin/{tool} is missing (tests/run.sh installs it with pip install '.[test]')"
                for tool in VENV_TOOLS if not (venv / "bin" / tool).exists()]
    python = venv / "bin" / "python"
    if not python.exists():
        return problems + [f"{python} is missing: the venv was not created"]
    code = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    out = subprocess.run([str(python), "-c", code, *VENV_MODULES], capture_output=True, text=True, check=False)
    problems += [f"Python package {m} is missing from {venv}" for m in out.stdout.split()]
    # molecule's podman driver needs the containers.podman collection (bundled with `ansible`).
    galaxy = venv / "bin" / "ansible-galaxy"
    if galaxy.exists():
        out = subprocess.run([str(galaxy), "collection", "list", "containers.podman"],
                             capture_output=True, text=True, check=False)
        if "containers.podman" not in out.stdout:
            problems.append(f"the Ansible collection containers.podman is missing from {venv} (pip install ansible)")
    return problems


def image_problems(images: list[str]) -> list[str]:
    problems = []
    for image in images:
        out = subprocess.run(["podman", "image", "exists", image], capture_output=True, check=False)
        if out.returncode != 0:
            problems.append(f"container image {image} is missing (tests/images/build.sh builds it)")
    return problems


def podman_run_problem(image: str) -> str | None:
    """Run one container the way the suite does (runc from containers.conf, --init): None if it works."""
    cmd = ["podman", "run", "--rm", "--init", "--network", "none", image, "/bin/true"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    except subprocess.TimeoutExpired:
        return f"'{' '.join(cmd)}' did not finish in 120 s"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return f"podman cannot run a container with --init: {last}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("packages")
    check = sub.add_parser("check")
    check.add_argument("--venv", type=Path)
    check.add_argument("--image", action="append", default=[])
    args = parser.parse_args(argv)
    try:
        requirements = load_list(args.list)
    except ListError as exc:
        print(f"preflight: {args.list}: {exc}", file=sys.stderr)
        return 1
    if args.command == "packages":
        print(" ".join(packages_to_install(requirements)))
        return 0
    # Each stage needs the previous one: report the first stage that fails, every item of it.
    source = "tests/system-packages.txt" if args.list == DEFAULT_LIST else str(args.list)
    stages = [lambda: missing_items(requirements, source)]
    if args.venv:
        stages.append(lambda: venv_problems(args.venv))
    if args.image:
        stages.append(lambda: image_problems(args.image))
        stages.append(lambda: [p] if (p := podman_run_problem(args.image[0])) else [])
    for stage in stages:
        problems = stage()
        if problems:
            for problem in problems:
                print(f"preflight: {problem}", file=sys.stderr)
            return 1
    print(f"preflight: ok ({sum(len(r.checks) for r in requirements)} system checks"
          f"{', venv' if args.venv else ''}{', ' + str(len(args.image)) + ' images, podman --init' if args.image else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
