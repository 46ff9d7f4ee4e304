"""What the kbuild_host role's filter plugin calls: the one kprov module it imports.

The plugin (``playbooks/roles/kbuild_host/filter_plugins/kprov.py``) turns Ansible's data into
plain Python, calls a name from here and turns a :class:`KprovError` into a filter error. Every
rule stays where it lives (the planner, the fleet, the rules, the store files); this module only
names what the role uses, so a reader and the import checker both see the role's dependencies.
"""

from __future__ import annotations

from typing import Any

from provision.calibration import DISTCC_DEFAULT_LIMIT, DISTCC_MAX_LIMIT
from provision.errors import KprovError
from provision.facts.ansible import facts_from_ansible, plain_data
from provision.fleet.host import plan_from_ansible
from provision.fleet.hostvars import (
    cache_goals_from_hostvars,
    farm_goals_from_hostvars,
    fleet_group_names,
    secret_files,
)
from provision.fleet.members import farm_toolchain
from provision.model.goals import check_host_entries
from provision.role.checks import check_role_vars
from provision.role.secrets import ensure_secret_files, missing_secret_files
from provision.role.store_files import (
    check_compiler_check,
    check_remote,
    check_store,
    nginx_user_file_lines,
    redis_acl_lines,
    remote_storage_line,
)
from provision.rules.addresses import check_listen, parse_allow
from provision.rules.distcc import check_distcc_hosts
from provision.rules.names import (
    ccache_size,
    check_account_name,
    check_flag,
    check_owned_dir,
    check_path,
    check_size_bytes,
    check_sloppiness,
)
from provision.rules.system import check_buildenv, check_sysctls
from provision.units import ccache_size_string

__all__ = [
    "DISTCC_DEFAULT_LIMIT", "DISTCC_MAX_LIMIT", "KprovError", "cache_goals", "ccache_size", "ccache_size_string",
    "check_account_name", "check_buildenv", "check_compiler_check", "check_distcc_hosts", "check_flag",
    "check_host_entries", "check_listen", "check_owned_dir", "check_path", "check_remote", "check_role_vars",
    "check_size_bytes", "check_sloppiness", "check_store", "check_sysctls", "facts_from_ansible", "farm_goals_from_hostvars",
    "fleet_group_names",
    "farm_toolchain", "nginx_user_file_lines", "parse_allow", "plain_data", "plan_from_ansible", "redis_acl_lines",
    "remote_storage_line",
]


def cache_goals(*args: Any, check_mode: bool = False) -> dict:
    """:func:`provision.fleet.hostvars.cache_goals_from_hostvars`, then the secret files those goals
    name are made on the controller when missing (never overwritten). In check mode nothing is
    made: what exists is checked the same way (the role then reports the missing ones)."""
    goals = cache_goals_from_hostvars(*args)
    if check_mode:
        missing_secret_files(secret_files(goals))
    else:
        ensure_secret_files(secret_files(goals))
    return goals
