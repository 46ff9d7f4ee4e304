"""An Ansible inventory's hosts as ``kprov plan -i INVENTORY`` plans them: facts, variables, groups.

The facts come from one run of playbooks/gather.yml through :mod:`provision.apply.runner` (the same
private-data-dir and event plumbing as ``kprov apply``): Ansible's setup facts plus the role's
``kbuild_host_probe`` module, converted by :func:`provision.facts.ansible.facts_from_ansible`, so
a host is planned from the same HostFacts whether kprov runs on it or reaches it through Ansible.

The variables the role reads for the farm, the shared cache and the goals (:data:`HOST_VARS`)
come from ``ansible-inventory --list``, which shows them as the inventory writes them: a value of
one of kprov's own variables (``kbuild_host_*``) that is a Jinja template would only be rendered
inside a play, so it is refused here (one line naming the host and the variable) rather than
planned from its template text.

An inventory is code to Ansible (executable inventories, templated connection variables): before
``ansible-inventory`` or a playbook reads one, :func:`provision.apply.trust.check_inventory_trusted`
refuses it when anyone but root or the running user could change it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.apply.ansible_env import UNSAFE_KEY, ansible_tool, inventory_envvars
from provision.apply.progress import failure_text
from provision.apply.runner import failure_message, run_playbook
from provision.apply.trust import check_inventory_trusted
from provision.errors import EnvironmentProblem, UserError
from provision.facts.ansible import facts_from_ansible
from provision.model.facts import HostFacts
from provision.resources import role_dir

GATHER_PLAYBOOK = "gather.yml"


#: The gather playbook's probe task runs this module from the role's library/.
PROBE_MODULE = "kbuild_host_probe"


#: Inventory variables of a host that its plan depends on, as the role reads them (the group
#: names: provision.fleet.hostvars.GROUP_VARS).
HOST_VARS = (
    "kbuild_host_farm_address",
    "kbuild_host_goals",
    "ansible_host",
    "kbuild_host_distcc_server_group",
    "kbuild_host_distcc_client_group",
    "kbuild_host_ccache_store_group",
    "kbuild_host_ccache_writer_group",
)


#: kprov's own variables: never a template in an inventory that kprov plans, read or not.
OWN_VARS_PREFIX = "kbuild_host_"


#: Variables that only help tell farm members apart: one that is a template is left out, not refused.
OPTIONAL_VARS = frozenset({"ansible_host"})


_TEMPLATE_MARKS = ("{{", "{%", "{#")


@dataclass(frozen=True)
class InventoryHost:
    """One inventory host: what its setup facts and the probe found, and its inventory variables."""

    name: str
    setup: dict[str, Any]  # the setup module's ansible_facts (``ansible_``-prefixed keys)
    probe: dict[str, Any]  # the kbuild_host_probe result
    vars: dict[str, Any] = field(default_factory=dict)  # HOST_VARS the inventory sets for it

    def facts(self, build_dir: str | None = None, ccache_dir: str | None = None) -> HostFacts:

        try:
            return facts_from_ansible({"ansible_facts": self.setup}, self.probe, build_dir, ccache_dir)
        except UserError as exc:
            raise UserError(f"host {self.name}: {exc}") from None

    def hostvars(self) -> dict[str, Any]:
        """The host as a play's ``hostvars[name]`` shows it to the role's filters."""
        facts = {k.removeprefix("ansible_"): v for k, v in self.setup.items()}
        return {**self.vars, "inventory_hostname": self.name, "ansible_facts": facts}


@dataclass(frozen=True)
class InventoryFleet:
    """Every gathered host (in inventory order) and the inventory's groups (as Ansible's ``groups``)."""

    hosts: dict[str, InventoryHost]
    groups: dict[str, list[str]]


def gather_fleet(inventory: str, limit: str | None = None) -> InventoryFleet:
    """Facts and variables of every inventory host (matching ``limit``), and all the groups.

    The groups are the whole inventory's, as in a play: a farm member outside ``limit`` stays a
    member. A missing or unparsable inventory and a ``limit`` that matches nothing are UserErrors
    (exit 2); an unreachable host, or one where the facts or the probe fail, is an
    EnvironmentProblem (exit 1) naming it and the run's artifacts.
    """
    listing = list_inventory(inventory)
    # a --limit that matches nothing is bad input; the limited listing names the hosts to gather
    targets = list_inventory(inventory, limit) if limit else listing
    groups = groups_from_list(listing)
    listed_vars = (listing.get("_meta") or {}).get("hostvars") or {}
    # checked before anything runs: a templated variable is bad input, whatever the hosts say
    variables = {h: host_vars(h, listed_vars.get(h) or {}) for h in groups_from_list(targets)["all"]}
    collector = _Collector()
    outcome = run_playbook(
        GATHER_PLAYBOOK,
        inventory=inventory,
        limit=limit,
        out=None,
        on_event=collector.event,
        extra_env=probe_envvars(),
    )
    artifacts = outcome.result.artifacts_dir
    # A host that cannot be reached or answered wrong is the host's failure, not the command's:
    # the same exit 1 as an apply that meets an unreachable host.
    if collector.unreachable:
        detail = "; ".join(f"host {h} unreachable: {m}" for h, m in sorted(collector.unreachable.items()))
        raise EnvironmentProblem(f"{detail}; run artifacts: {artifacts}")
    if collector.failures:
        detail = "; ".join(f"{h}: {m}" for h, m in sorted(collector.failures.items()))
        raise EnvironmentProblem(f"fact gathering failed on {detail}; run artifacts: {artifacts}")
    if not outcome.result.ok:
        raise EnvironmentProblem(failure_message("fact gathering", outcome))
    order = list(groups.get("all") or ()) + sorted(collector.setup)
    hosts: dict[str, InventoryHost] = {}
    for host in dict.fromkeys(order):
        if host not in collector.setup:
            continue
        if host not in collector.probe:
            raise EnvironmentProblem(f"fact gathering: no probe result from {host}; run artifacts: {artifacts}")
        hosts[host] = InventoryHost(
            name=host,
            setup=collector.setup[host],
            probe=collector.probe[host],
            vars=variables[host] if host in variables else host_vars(host, listed_vars.get(host) or {}),
        )
    if not hosts:
        raise EnvironmentProblem(f"fact gathering returned no host; run artifacts: {artifacts}")
    return InventoryFleet(hosts=hosts, groups=groups)


def gather_facts(inventory: str, limit: str | None = None) -> dict[str, HostFacts]:
    """HostFacts of every inventory host (matching ``limit``), keyed by inventory hostname.

    Errors as :func:`gather_fleet`; the facts are read as for goals without a build or ccache dir.
    """
    return {name: host.facts() for name, host in gather_fleet(inventory, limit).hosts.items()}


def host_vars(host: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`HOST_VARS` that ``ansible-inventory --list`` shows for ``host``, as plain values.

    Every ``kbuild_host_*`` variable of the host is refused when it is a template, those the plan
    does not read included: the role would render it.
    """
    out: dict[str, Any] = {}
    own = sorted(n for n in variables if n.startswith(OWN_VARS_PREFIX) and n not in HOST_VARS)
    for name in (*HOST_VARS, *own):
        if name not in variables:
            continue
        try:
            value = _as_written(variables[name])
        except _Template:
            if name in OPTIONAL_VARS:
                continue
            raise UserError(
                f"host {host}: {name} is a Jinja template in the inventory; kprov plan -i reads "
                "inventory values as written: give the value itself"
            ) from None
        if name in HOST_VARS:
            out[name] = value
    return out


class _Template(Exception):
    """A value Ansible would render inside a play: kprov cannot know what it becomes."""


def _as_written(value: Any) -> Any:
    """An inventory value as plain data; ``{"__ansible_unsafe": text}`` (``!unsafe``) is its text."""
    if isinstance(value, dict):
        if set(value) == {UNSAFE_KEY}:
            return str(value[UNSAFE_KEY])  # marked never to be templated: literal text
        return {_as_written(str(k)): _as_written(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_written(v) for v in value]
    if isinstance(value, str) and any(mark in value for mark in _TEMPLATE_MARKS):
        raise _Template(value)
    return value


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
            self.unreachable.setdefault(host, failure_text(res))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.failures.setdefault(host, f"{data.get('task') or action}: {failure_text(res)}")


def inventory_groups(inventory: str) -> dict[str, list[str]]:
    """Every group of the inventory -> its hosts (children's hosts included), in inventory order.

    Like Ansible's ``groups`` variable: ``all`` and ``ungrouped`` are there too.
    """
    return groups_from_list(list_inventory(inventory))


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


def list_inventory(inventory: str, limit: str | None = None) -> dict[str, Any]:
    """``ansible-inventory --list`` of the user's inventory, as a dict; bad input is a UserError.

    Ansible only warns about an inventory it cannot parse and then runs against no host at all;
    kprov says so instead (``ANSIBLE_INVENTORY_UNPARSED_FAILED``), and a --limit that matches no
    host is an error too.
    """
    path = Path(inventory)
    if not path.exists():
        raise UserError(f"inventory file not found: {inventory}")
    check_inventory_trusted(inventory)  # ansible-inventory runs an executable inventory
    cmd = [ansible_tool("ansible-inventory"), "-i", str(path.resolve()), "--list"]
    if limit:
        cmd += ["--limit", limit]
    env = {**os.environ, **inventory_envvars(), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UserError(f"inventory {inventory} could not be parsed: {_inventory_error(proc.stderr)}")
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:
        raise EnvironmentProblem(f"ansible-inventory printed something that is not JSON: {exc}") from None
    if not data.get("_meta", {}).get("hostvars") and not _all_hosts(data):
        if limit:
            raise UserError(f"--limit {limit} matches no host of inventory {inventory}")
        raise UserError(f"inventory {inventory} has no hosts")
    return data


def _all_hosts(data: dict[str, Any]) -> list[str]:
    hosts: list[str] = []
    for name, group in data.items():
        if name != "_meta" and isinstance(group, dict):
            hosts += [h for h in group.get("hosts", []) if h not in hosts]
    return hosts


def _inventory_error(stderr: str) -> str:
    """The line of ansible-inventory's stderr that says why, without the warnings around it."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for prefix in ("Failed to parse inventory:", "[ERROR]:", "ERROR!"):
        for ln in lines:
            if ln.startswith(prefix):
                return ln.removeprefix("[ERROR]:").removeprefix("ERROR!").strip()
    return lines[-1] if lines else "ansible-inventory failed"
