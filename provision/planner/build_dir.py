"""The build directory decision: where ``O=`` goes, and whether its filesystem has room.

From the goals (--build-dir) and the disk facts of the tree's and the home directory's
filesystems: :func:`plan_build_dir` picks the one with the most room (a tmpfs only when there is
nothing else, since its files take RAM) and returns a :class:`BuildDir` with its path, its
filesystem, the RAM a tmpfs takes out of the memory budget and the reasons. Once the ccache is
sized, :func:`check_disk` adds what O=, the cache and the tree on one filesystem need together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from provision import calibration as cal
from provision.errors import UserError
from provision.model.facts import (
    DiskFacts,
    HostFacts,
)
from provision.model.goals import Goals
from provision.model.plan import (
    CcachePlan,
)
from provision.planner.common import ChosenConfig, PlanNotes
from provision.rules.names import (
    check_path,
)
from provision.units import GIB, human_bytes


@dataclass(frozen=True)
class BuildDir:
    """Where the build's output goes: ``path`` (None: in the tree) on ``disk``."""

    path: str | None
    disk: DiskFacts | None
    reasons: Mapping[str, str]  # build_dir, and disk once check_disk has run
    tmpfs_bytes: int = 0  # the build output's RAM when O= is on a tmpfs (out of the memory budget)


def on_tmpfs(disk: DiskFacts | None) -> bool:
    return disk is not None and disk.fstype in cal.TMPFS_FSTYPES


def _output_bytes(cfg: ChosenConfig) -> float:
    return cal.build_output_gib(cfg.target_class, cfg.debug_info) * GIB


def plan_build_dir(facts: HostFacts, goals: Goals, cfg: ChosenConfig, notes: PlanNotes) -> BuildDir:
    """O= on the filesystem with the most room among the tree's and the home directory's (a tmpfs
    only when there is nothing else: its files take RAM)."""
    need = _output_bytes(cfg)
    tree = facts.tree
    if tree is not None and not tree.clean:
        if goals.build_dir is not None:
            notes.warn(
                f"--build-dir {goals.build_dir}: the tree is configured in place, and kbuild refuses O= for it "
                "(make mrproper in the tree first, or build in it)"
            )
        return BuildDir(None, facts.disk("build"), {"build_dir": (
            "in the tree: it is configured in place (a .config or include/config in the source directory), "
            "and kbuild refuses O= for such a tree"
        )})
    if goals.build_dir is not None:
        path = check_path(goals.build_dir, "--build-dir")
        reason = f"{path}: as asked"
        chosen_disk = facts.disk("build")
    else:
        build, home = facts.disk("build"), facts.disk("home")
        candidates = [d for d in (home, build) if d is not None]
        if not candidates:
            return BuildDir(None, None, {"build_dir": "in the tree: no disk facts to choose from"})
        on_disk = [d for d in candidates if not on_tmpfs(d)]
        candidates = on_disk or candidates
        best = max(candidates, key=lambda d: d.free_bytes)
        # Same filesystem: beside the tree when there is one, else under the home directory.
        preferred = build if tree else home
        if preferred is not None and preferred in candidates and best.mount == preferred.mount:
            best = preferred
        if tree and best is build:
            path = f"{tree.path.rstrip('/')}-build"
        elif tree:
            path = f"{best.path.rstrip('/')}/kbuild/{tree.path.rstrip('/').rsplit('/', 1)[-1]}"
        else:
            path = f"{best.path.rstrip('/')}/kbuild"
        try:
            path = check_path(path, "build directory (O=)")
        except UserError as exc:
            notes.warn(f"building in the tree: {exc}")
            return BuildDir(None, facts.disk("build"), {
                "build_dir": "in the tree: the out-of-tree path kprov would choose is not one it writes into files"
            })
        others = [d for d in candidates if d.mount != best.mount]
        vs = f" (vs {', '.join(f'{human_bytes(d.free_bytes)} on {d.mount}' for d in others)})" if others else ""
        reason = (
            f"{path}: out of tree (O=) on {best.mount}, the filesystem with the most room: "
            f"{human_bytes(best.free_bytes)} free{vs}; this build needs ~{human_bytes(need)}"
        )
        chosen_disk = best
    if not on_tmpfs(chosen_disk):
        return BuildDir(path, chosen_disk, {"build_dir": reason})
    reason += (
        f"; {chosen_disk.mount} is {chosen_disk.fstype}: the ~{human_bytes(need)} of build output lives in RAM and is "
        "taken out of the memory budget"
    )
    tmpfs = int(need)
    notes.warn(
        f"the build directory is on {chosen_disk.fstype} ({chosen_disk.mount}): its ~{human_bytes(tmpfs)} of build output "
        "takes RAM, counted out of the memory budget"
    )
    return BuildDir(path, chosen_disk, {"build_dir": reason}, tmpfs)


def check_disk(facts: HostFacts, cfg: ChosenConfig, build: BuildDir, ccache: CcachePlan, notes: PlanNotes) -> BuildDir:
    """O=, the ccache and the tree on one filesystem share its free space: sum what they will add.
    Returns ``build`` with the reason for that sum when the cache shares O='s filesystem."""
    need = _output_bytes(cfg)
    cache_disk = facts.disk("ccache")
    cache = ccache.max_size_bytes if ccache.enabled else 0
    build_disk = build.disk
    if build_disk is None:
        return build
    same = cache_disk is not None and cache and cache_disk.mount == build_disk.mount
    total = need + (cache if same else 0)
    tree = facts.tree
    tree_here = tree is not None and facts.disk("build") is not None and facts.disk("build").mount == build_disk.mount
    parts = [f"O= ~{human_bytes(need)}"] + ([f"the ccache up to {human_bytes(cache)}"] if same else [])
    sharing = (
        f"{' and '.join(parts)} on {build_disk.mount}"
        + (" (the tree is there too: its files are already counted as used)" if tree_here else "")
    )
    if total > build_disk.free_bytes and not on_tmpfs(build_disk):
        notes.warn(
            f"not enough disk for {cfg.target}: {sharing} need ~{human_bytes(total)} and {build_disk.mount} has "
            f"{human_bytes(build_disk.free_bytes)} free"
        )
    elif on_tmpfs(build_disk) and need > build_disk.free_bytes:
        notes.warn(
            f"not enough room for {cfg.target} on {build_disk.mount} ({build_disk.fstype}): its build output is "
            f"~{human_bytes(need)} and {human_bytes(build_disk.free_bytes)} is free"
        )
    if not same:
        return build
    reason = f"{sharing}: {human_bytes(total)} of {human_bytes(build_disk.free_bytes)} free"
    return dataclasses.replace(build, reasons={**build.reasons, "disk": reason})
