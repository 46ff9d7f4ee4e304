"""Filters that let the kbuild_host role plan a host with kprov's own planner.

The role never carries a second copy of the planning rules: these filters call the ``provision``
package on the Ansible controller. It is imported lazily, so a controller without kprov gets one
clear error from the filter rather than a failure to load the role.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

NOT_INSTALLED = "kprov is not installed on the Ansible controller (pip install kprov)"


def _plain(value: Any) -> Any:
    """Ansible's lazy/tagged containers -> plain data, with kprov's own converter."""
    try:
        from provision.ansible_facts import plain_data
    except ImportError as exc:
        raise AnsibleFilterError(NOT_INSTALLED) from exc
    return plain_data(value)


def _kprov_errors() -> type[Exception]:
    try:
        from provision.errors import KprovError
    except ImportError as exc:
        raise AnsibleFilterError(NOT_INSTALLED) from exc
    return KprovError


def kprov_plan_vars(setup_facts: Any, probe: Any = None, goals: Any = None) -> dict[str, Any]:
    """kbuild_host_* variables planned from a host's setup facts and the role's probe result."""
    kprov_error = _kprov_errors()
    try:
        from provision.ansible_facts import plan_from_ansible
    except ImportError as exc:
        raise AnsibleFilterError(f"{NOT_INSTALLED}: {exc}") from exc
    try:
        plan = plan_from_ansible(_plain(setup_facts), _plain(probe or {}), _plain(goals or {}))
    except kprov_error as exc:
        raise AnsibleFilterError(str(exc)) from exc
    return plan.to_role_vars()


def kprov_farm_goals(
    host: str,
    hostvars: Any,
    groups: Any,
    goals: Any = None,
    server_group: str = "distcc_servers",
    client_group: str = "distcc_clients",
) -> dict[str, Any]:
    """``goals`` extended with this host's part in the distcc farm its inventory groups describe."""
    kprov_error = _kprov_errors()
    try:
        from provision.fleet import farm_goals_from_hostvars
    except ImportError as exc:
        raise AnsibleFilterError(f"{NOT_INSTALLED}: {exc}") from exc
    members = set(_plain(groups).get(server_group, [])) | set(_plain(groups).get(client_group, []))
    # hostvars is lazy and huge; hand kprov only the farm members' variables it reads.
    member_vars = {h: _member_vars(hostvars[h]) for h in sorted(members) if h in hostvars}
    try:
        return farm_goals_from_hostvars(
            str(host), member_vars, _plain(groups), _plain(goals or {}), str(server_group), str(client_group)
        )
    except kprov_error as exc:
        raise AnsibleFilterError(str(exc)) from exc


def _member_vars(hvars: Any) -> dict[str, Any]:
    wanted = ("kbuild_host_farm_address", "ansible_facts", "__kbuild_host_base_vars", "inventory_hostname")
    out: dict[str, Any] = {}
    for key in wanted:
        try:
            if key in hvars:
                out[key] = _plain(hvars[key])
        except Exception:  # an undefined or unrenderable var is the same as an absent one here
            continue
    return out


class FilterModule:
    """kprov planning filters."""

    def filters(self) -> dict[str, Any]:
        return {"kprov_plan_vars": kprov_plan_vars, "kprov_farm_goals": kprov_farm_goals}
