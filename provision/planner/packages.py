"""The packages decision: what ``kprov apply`` installs.

From the distro family's package lists (the role's catalog) and the earlier decisions: the build
dependencies, the zram tool (unless the user's own zram swap is left alone), ccache and what its
compile-cache store runs on (Redis, or nginx with cron where there is no systemd), distcc and the
compilers a distcc server provides, clang, and for a gcc cross build (``--arch``) the family's GNU
cross toolchain (``calibration.CROSS_TOOLCHAINS``, docs/calibration.md §17). Returns the package
names once each, in that order.
"""

from __future__ import annotations

from provision import calibration as cal
from provision.model.facts import (
    HostFacts,
)
from provision.model.plan import (
    CcachePlan,
    DistccPlan,
    PackageSet,
    ZramPlan,
)
from provision.planner.common import ChosenConfig, PlanNotes
from provision.planner.make_line import MakeInputs
from provision.planner.memory import users_zram


def plan_packages(
    facts: HostFacts, pkgs: PackageSet | None, cfg: ChosenConfig, zram: ZramPlan, ccache: CcachePlan, distcc: DistccPlan,
    notes: PlanNotes, make: MakeInputs | None = None,
) -> tuple[str, ...]:
    """The packages to install; without a package list for the distro, none (said so)."""
    if pkgs is None:
        notes.warn(f"no package list for distro '{facts.distro.id or facts.distro.family}': install the build dependencies yourself")
        return ()
    names: list[str] = list(pkgs.build)
    if zram.enabled and not users_zram(facts):
        names += pkgs.zram
    if ccache.enabled:
        names += pkgs.ccache
        store = ccache.store
        if store is not None and store.backend == "redis":
            names += pkgs.redis
        elif store is not None:
            names += pkgs.nginx
            if facts.service_manager != "systemd":  # the WebDAV store's trim: a systemd timer, else cron
                names += pkgs.cron
    if distcc.enabled:
        names += pkgs.distcc
    names += distcc.server_packages
    if cfg.compiler == "clang":
        names += pkgs.clang
    if make is not None and make.cross and cfg.compiler == "gcc":
        names += cross_packages(facts.distro.family, make.arch or "", notes)
    return tuple(dict.fromkeys(names))


def cross_packages(family: str, arch: str, notes: PlanNotes) -> tuple[str, ...]:
    """The family's GNU cross toolchain for kernel ``arch``; where it packages none kprov knows, one
    warning that says so (never a guessed name)."""
    row = cal.cross_toolchain(family, arch)
    if row is None:
        prefix = cal.cross_prefix(family, arch)
        assumed = f" (the make line assumes CROSS_COMPILE={prefix})" if prefix else ""
        notes.warn(
            f"the {family or 'unknown'} distro family packages no GNU cross compiler for ARCH={arch} that kprov "
            f"knows (docs/calibration.md §17): install one{assumed}, or use --compiler clang"
        )
        return ()
    return row[1]
