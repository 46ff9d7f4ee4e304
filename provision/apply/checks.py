"""Refusals before Ansible starts: a path the role would write that is not root's (a planted
symlink, a group-writable directory on the way), and a filesystem without room for the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from provision.apply.runs import state_dir
from provision.errors import EnvironmentProblem, UserError
from provision.facts.local import sysprobe

#: Free space a local apply needs on each filesystem it writes to: apt's downloads and unpacked
#: packages land on / and /var, Ansible's module files in ~/.ansible/tmp, the run's events in the
#: state dir. Below this a run fails half-way with a message about some file; kprov names the
#: filesystem before anything changes instead.
MIN_FREE_BYTES = 256 << 20


def check_writable_as_root(role_vars: dict[str, Any]) -> None:
    """UserError when the ccache directory the user named could be turned against the host.

    The role checks every path it writes on the host itself (tasks/validate.yml); the one a user
    names on a local command line is refused here first, as bad input, before anything runs.
    """
    if not role_vars.get("kbuild_host_ccache_enabled") or not role_vars.get("kbuild_host_ccache_dir"):
        return

    reason = sysprobe().unsafe_path(str(role_vars["kbuild_host_ccache_dir"]))
    if reason:
        raise UserError(f"--ccache-dir: refusing to write as root: {reason}")


def apply_write_paths(role_vars: dict[str, Any]) -> list[Path]:
    """Where a local apply writes: /, /var, Ansible's tmp, kprov's runs, the ccache directory."""
    paths = [Path("/"), Path("/var"), Path.home() / ".ansible" / "tmp", state_dir()]
    if role_vars.get("kbuild_host_ccache_enabled") and role_vars.get("kbuild_host_ccache_dir"):
        paths.append(Path(str(role_vars["kbuild_host_ccache_dir"])))
    return paths


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    dev = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == dev:
        path = path.parent
    return path


def check_free_space(paths: Iterable[Path], minimum: int = MIN_FREE_BYTES) -> None:
    """EnvironmentProblem naming the first filesystem with less than ``minimum`` bytes free."""
    seen: set[int] = set()
    for wanted in paths:
        path = _existing(Path(wanted))
        try:
            st = os.statvfs(path)
            dev = path.stat().st_dev
        except OSError:
            continue
        if dev in seen:
            continue
        seen.add(dev)
        free = st.f_bavail * st.f_frsize
        if free < minimum:
            raise EnvironmentProblem(
                f"not enough space to apply: {free >> 20} MiB free on {_mount_point(path)} "
                f"(which holds {wanted}); kprov apply needs at least {minimum >> 20} MiB there"
            )
