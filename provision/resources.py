"""Where kprov's playbooks and templates live, installed (wheel) or in a source checkout."""

from __future__ import annotations

from pathlib import Path

from provision.errors import EnvironmentProblem

_HERE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_HERE / "_data" / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise EnvironmentProblem(f"kprov's {name}/ directory is missing from this installation ({_HERE})")


def playbooks_dir() -> Path:
    return _find("playbooks")


def templates_dir() -> Path:
    return _find("templates")


def role_dir() -> Path:
    return playbooks_dir() / "roles" / "kbuild_host"
