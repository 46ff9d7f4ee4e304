"""TODO."""

from __future__ import annotations

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


def native_arch(facts: HostFacts) -> str | None:
    return cal.KERNEL_ARCH.get(facts.arch)


def target_arch(facts: HostFacts, goals: Goals) -> str | None:
    return goals.arch or native_arch(facts)


def on_tmpfs(disk: DiskFacts | None) -> bool:
    return disk is not None and disk.fstype in cal.TMPFS_FSTYPES


def plan_build_dir(
    facts: HostFacts, goals: Goals, cfg: ChosenConfig, notes: PlanNotes, reasons: dict
) -> tuple[str | None, DiskFacts | None]:
    """O= on the filesystem with the most room among the tree's and the home directory's (a tmpfs
    only when there is nothing else: its files take RAM). Returns the path and its filesystem."""
    need = cal.build_output_gib(cfg.target_class, cfg.debug_info) * GIB
    tree = facts.tree
    if tree is not None and not tree.clean:
        if goals.build_dir is not None:
            notes.warn(
                f"--build-dir {goals.build_dir}: the tree is configured in place, and kbuild refuses O= for it "
                "(make mrproper in the tree first, or build in it)"
            )
        reasons["build_dir"] = (
            "in the tree: it is configured in place (a .config or include/config in the source directory), "
            "and kbuild refuses O= for such a tree"
        )
        return None, facts.disk("build")
    if goals.build_dir is not None:
        path = check_path(goals.build_dir, "--build-dir")
        reasons["build_dir"] = f"{path}: as asked"
        chosen_disk = facts.disk("build")
    else:
        build, home = facts.disk("build"), facts.disk("home")
        candidates = [d for d in (home, build) if d is not None]
        if not candidates:
            reasons["build_dir"] = "in the tree: no disk facts to choose from"
            return None, None
        on_disk = [d for d in candidates if not on_tmpfs(d)]
        candidates = on_disk or candidates
        best = max(candidates, key=lambda d: d.free_bytes)
        tree = facts.tree
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
            reasons["build_dir"] = "in the tree: the out-of-tree path kprov would choose is not one it writes into files"
            return None, facts.disk("build")
        others = [d for d in candidates if d.mount != best.mount]
        vs = f" (vs {', '.join(f'{human_bytes(d.free_bytes)} on {d.mount}' for d in others)})" if others else ""
        reasons["build_dir"] = (
            f"{path}: out of tree (O=) on {best.mount}, the filesystem with the most room: "
            f"{human_bytes(best.free_bytes)} free{vs}; this build needs ~{human_bytes(need)}"
        )
        chosen_disk = best
    if on_tmpfs(chosen_disk):
        reasons["build_dir"] += (
            f"; {chosen_disk.mount} is {chosen_disk.fstype}: the ~{human_bytes(need)} of build output lives in RAM and is "
            "taken out of the memory budget"
        )
    return path, chosen_disk


def check_disk(
    facts: HostFacts, cfg: ChosenConfig, build_dir: str | None, build_disk: DiskFacts | None, ccache: CcachePlan,
    notes: PlanNotes, reasons: dict,
) -> None:
    """O=, the ccache and the tree on one filesystem share its free space: sum what they will add."""
    need = cal.build_output_gib(cfg.target_class, cfg.debug_info) * GIB
    cache_disk = facts.disk("ccache")
    cache = ccache.max_size_bytes if ccache.enabled else 0
    if build_disk is None:
        return
    same = cache_disk is not None and cache and cache_disk.mount == build_disk.mount
    total = need + (cache if same else 0)
    tree = facts.tree
    tree_here = tree is not None and facts.disk("build") is not None and facts.disk("build").mount == build_disk.mount
    parts = [f"O= ~{human_bytes(need)}"] + ([f"the ccache up to {human_bytes(cache)}"] if same else [])
    sharing = (
        f"{' and '.join(parts)} on {build_disk.mount}"
        + (" (the tree is there too: its files are already counted as used)" if tree_here else "")
    )
    if same:
        reasons["disk"] = f"{sharing}: {human_bytes(total)} of {human_bytes(build_disk.free_bytes)} free"
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
