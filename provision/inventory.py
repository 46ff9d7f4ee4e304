"""Facts and groups of an Ansible inventory's hosts, for ``kprov plan -i INVENTORY``.

The facts come from one run of playbooks/gather.yml through :mod:`provision.runner` (the same
private-data-dir and event plumbing as ``kprov apply``): Ansible's setup facts plus the role's
``kbuild_host_probe`` module, converted by :func:`provision.ansible_facts.facts_from_ansible`, so
a host is planned from the same HostFacts whether kprov runs on it or reaches it through Ansible.
"""

from __future__ import annotations

import os
from typing import Any

from provision import runner
from provision.errors import EnvironmentProblem, UserError
from provision.model import HostFacts
from provision.resources import role_dir

GATHER_PLAYBOOK = "gather.yml"
#: The gather playbook's probe task runs this module from the role's library/.
PROBE_MODULE = "kbuild_host_probe"


def gather_facts(inventory: str, limit: str | None = None) -> dict[str, HostFacts]:
    """HostFacts of every inventory host (matching ``limit``), keyed by inventory hostname.

    A missing or unparsable inventory, a --limit that matches nothing and an unreachable host are
    UserErrors (exit 2); a host where the probe fails is an EnvironmentProblem naming it.
    """
    runner.list_inventory(inventory, limit)
    collector = _Collector()
    outcome = runner.run_playbook(
        GATHER_PLAYBOOK,
        inventory=inventory,
        limit=limit,
        out=None,
        on_event=collector.event,
        extra_env=probe_envvars(),
    )
    artifacts = outcome.result.artifacts_dir
    if collector.unreachable:
        raise UserError("; ".join(f"host {h} unreachable: {m}" for h, m in sorted(collector.unreachable.items())))
    if collector.failures:
        detail = "; ".join(f"{h}: {m}" for h, m in sorted(collector.failures.items()))
        raise EnvironmentProblem(f"fact gathering failed on {detail}; run artifacts: {artifacts}")
    if not outcome.result.ok:
        raise EnvironmentProblem(runner.failure_message("fact gathering", outcome))
    from provision.ansible_facts import facts_from_ansible

    facts: dict[str, HostFacts] = {}
    for host in sorted(collector.setup):
        if host not in collector.probe:
            raise EnvironmentProblem(f"fact gathering: no probe result from {host}; run artifacts: {artifacts}")
        facts[host] = facts_from_ansible({"ansible_facts": collector.setup[host]}, collector.probe[host])
    if not facts:
        raise EnvironmentProblem(f"fact gathering returned no host; run artifacts: {artifacts}")
    return facts


def probe_envvars() -> dict[str, str]:
    """Let gather.yml run the role's probe module with the role's own module_utils."""
    role = role_dir()
    env = {}
    for var, sub in (("ANSIBLE_LIBRARY", "library"), ("ANSIBLE_MODULE_UTILS", "module_utils")):
        user = os.environ.get(var)
        env[var] = f"{role / sub}:{user}" if user else str(role / sub)
    return env


class _Collector:
    """Keeps the setup facts and probe result of each host from the run's events."""

    def __init__(self) -> None:
        self.setup: dict[str, dict[str, Any]] = {}
        self.probe: dict[str, dict[str, Any]] = {}
        self.unreachable: dict[str, str] = {}
        self.failures: dict[str, str] = {}

    def event(self, event: dict) -> None:
        kind = event.get("event")
        data = event.get("event_data") or {}
        host = data.get("host")
        if not host:
            return
        res = data.get("res") or {}
        action = str(data.get("resolved_action") or data.get("task_action") or "")
        if kind == "runner_on_ok" and isinstance(res, dict):
            if action.endswith("setup") and isinstance(res.get("ansible_facts"), dict):
                self.setup[host] = res["ansible_facts"]
            elif action.endswith(PROBE_MODULE) and isinstance(res.get("probe"), dict):
                self.probe[host] = res["probe"]
        elif kind == "runner_on_unreachable":
            self.unreachable.setdefault(host, runner.failure_text(res))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.failures.setdefault(host, f"{data.get('task') or action}: {runner.failure_text(res)}")


def inventory_groups(inventory: str) -> dict[str, list[str]]:
    """Every group of the inventory -> its hosts (children's hosts included), in inventory order.

    Like Ansible's ``groups`` variable: ``all`` and ``ungrouped`` are there too.
    """
    return groups_from_list(runner.list_inventory(inventory))


def groups_from_list(data: dict[str, Any]) -> dict[str, list[str]]:
    """Flatten ``ansible-inventory --list`` output: a group's hosts include its children's."""
    groups = {name: g for name, g in data.items() if name != "_meta" and isinstance(g, dict)}
    resolved: dict[str, list[str]] = {}

    def hosts_of(name: str, seen: frozenset[str]) -> list[str]:
        if name in resolved:
            return resolved[name]
        group = groups.get(name) or {}
        hosts = [str(h) for h in group.get("hosts", [])]
        for child in group.get("children", []):
            if child in seen:  # Ansible refuses cycles; never loop on one
                continue
            hosts += [h for h in hosts_of(child, seen | {child}) if h not in hosts]
        resolved[name] = list(dict.fromkeys(hosts))
        return resolved[name]

    ordered = {name: hosts_of(name, frozenset({name})) for name in groups}  # ansible-inventory's order
    if "all" not in ordered:
        ordered["all"] = list(dict.fromkeys(data.get("_meta", {}).get("hostvars", {})))
    return ordered
