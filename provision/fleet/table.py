"""The fleet as a table (one row per host: CPUs, RAM, -j, zram, ccache, distcc) and as JSON
(``kprov plan -i --json``, the farm's shared /etc/hosts entries named once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from provision.fleet.hostvars import cache_summary
from provision.fleet.plan import FleetPlans
from provision.model.plan import Plan
from provision.render import render_template
from provision.units import ccache_size_string, human_bytes

#: 2: the farm's /etc/hosts entries are listed once, under ``farm``, not in every member's plan.
FLEET_SCHEMA = 2




def distcc_role(plan: Plan) -> str:
    d = plan.distcc
    roles = [r for r, on in (("server", d.server), ("client", d.client)) if on]
    return "+".join(roles) or "-"


def fleet_rows(plans: Mapping[str, Plan], groups: Mapping[str, Iterable[str]] | None = None) -> list[dict]:
    """One row per host, in inventory order (the groups' order, then the rest by name)."""
    order: dict[str, None] = {}
    for members in (groups or {}).values():
        for h in members:
            if h in plans:
                order.setdefault(h, None)
    for h in sorted(plans):
        order.setdefault(h, None)
    rows = []
    for name in order:
        p = plans[name]
        rows.append(
            {
                "host": name,
                "cores": p.host.usable_cpus,
                "ram": human_bytes(p.host.memory_bytes),
                "jobs": p.jobs.value,
                "zram": f"{p.zram.algorithm}/{p.zram.percent}%" if p.zram.enabled else "off",
                "ccache": ccache_size_string(p.ccache.max_size_bytes) if p.ccache.enabled else "off",
                "distcc": distcc_role(p),
            }
        )
    return rows


def farm_summary(plans: Mapping[str, Plan], order: Iterable[str]) -> dict[str, list[dict]]:
    """The farm as the table's footer shows it: each server's allow list, each client's hosts."""
    servers, clients = [], []
    for name in order:
        d = plans[name].distcc
        if d.server:
            servers.append({"host": name, "listen": d.listen or "-", "jobs": d.server_jobs, "allow": list(d.allow),
                            "installs": list(d.server_packages)})
        if d.client:
            clients.append({"host": name, "hosts": " ".join(d.hosts), "total_jobs": d.total_jobs,
                            "excluded": list(d.excluded)})
        elif d.excluded:
            clients.append({"host": name, "hosts": "", "total_jobs": 0, "excluded": list(d.excluded)})

    return {"servers": servers, "clients": clients}


def render_fleet(plans: Mapping[str, Plan], groups: Mapping[str, Iterable[str]] | None = None) -> str:
    """The fleet table (templates/fleet.txt.j2)."""

    rows = fleet_rows(plans, groups)
    headers = {"host": "HOST", "cores": "CPUS", "ram": "RAM", "jobs": "-j", "zram": "ZRAM",
               "ccache": "CCACHE", "distcc": "DISTCC"}
    widths = {k: max([len(v)] + [len(str(r[k])) for r in rows]) for k, v in headers.items()}
    # The same warning on many hosts is one line naming them: a fleet table stays a table.
    by_warning: dict[str, list[str]] = {}
    for r in rows:
        for w in plans[r["host"]].warnings:
            by_warning.setdefault(w, []).append(r["host"])
    warnings = [(_host_list(hosts), w) for w, hosts in by_warning.items()]
    text = render_template(
        "fleet.txt.j2",
        rows=rows,
        headers=headers,
        widths=widths,
        farm=farm_summary(plans, [r["host"] for r in rows]),
        warnings=warnings,
    )
    cache = cache_summary(plans, [r["host"] for r in rows])
    if cache:
        text = text.rstrip("\n") + "\n\nshared compile cache\n" + "\n".join(cache) + "\n"
    return text


def _host_list(hosts: list[str], shown: int = 4) -> str:
    if len(hosts) <= shown:
        return ", ".join(hosts)
    return f"{', '.join(hosts[:shown])} and {len(hosts) - shown} more"


def fleet_json(plans: Mapping[str, Plan]) -> dict[str, Any]:
    """``kprov plan -i --json``: every host's plan keyed by inventory name, the farm's entries once.

    With a farm, ``farm.host_entries`` lists the /etc/hosts entries every member gets; a member's
    plan says ``distcc.farm_host_entries: true`` and its ``distcc.host_entries`` holds only its
    own entries, written after the farm's. Everything else is ``Plan.to_dict()``.
    """
    shared = plans.host_entries if isinstance(plans, FleetPlans) else ()
    k = len(shared)
    starts_shared: dict[int, bool] = {}  # members share entry tuples: compare each tuple once
    hosts: dict[str, Any] = {}
    for name, p in plans.items():
        entries = p.distcc.host_entries
        if shared and id(entries) not in starts_shared:
            starts_shared[id(entries)] = entries[:k] == shared
        if shared and starts_shared[id(entries)]:
            own = dataclasses.replace(p.distcc, host_entries=entries[k:])
            data = dataclasses.replace(p, distcc=own).to_dict()
            data["distcc"]["farm_host_entries"] = True
        else:
            data = p.to_dict()
        hosts[name] = data
    out: dict[str, Any] = {"schema": FLEET_SCHEMA}
    if shared:
        out["farm"] = {"host_entries": [{"address": e.address, "names": list(e.names)} for e in shared]}
    out["hosts"] = hosts
    return out
