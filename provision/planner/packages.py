"""TODO."""

from __future__ import annotations

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
from provision.planner.memory import users_zram


def plan_packages(
    facts: HostFacts, pkgs: PackageSet | None, cfg: ChosenConfig, zram: ZramPlan, ccache: CcachePlan, distcc: DistccPlan, notes: PlanNotes
) -> tuple[str, ...]:
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
    return tuple(dict.fromkeys(names))
