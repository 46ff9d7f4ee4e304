"""One Ansible-managed host planned from what Ansible gathered: setup facts, the role's probe and
the host's ``kbuild_host_goals``. The role's first plan of every host and the farm's view of a
member's -j both come from here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision.facts.ansible import facts_from_ansible, goals_from
from provision.facts.catalog import load_catalog
from provision.model.goals import Goals
from provision.model.plan import Plan
from provision.planner import plan


def plan_from_ansible(setup_facts: Any, probe: Mapping | None, goals: Goals | Mapping | None) -> Plan:
    """Plan one Ansible-managed host: facts (+ probe) and goals through :func:`provision.planner.plan`."""
    g = goals_from(goals)
    facts = facts_from_ansible(setup_facts, probe, build_dir=g.build_dir, ccache_dir=g.ccache_dir)
    return plan(facts, g, load_catalog())
