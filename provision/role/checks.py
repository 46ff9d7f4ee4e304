"""A whole set of the role's variables judged at once, as the role's validate step does: every
value through its rule, the distcc allow list against the host's own addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from provision import calibration as cal
from provision.errors import UserError
from provision.model.goals import check_host_entries
from provision.rules.addresses import check_listen, parse_allow, where_value
from provision.rules.distcc import check_distcc_hosts
from provision.rules.names import (
    check_account_name,
    check_flag,
    check_int,
    check_owned_dir,
    check_packages,
    check_path,
    check_sloppiness,
    check_user_name,
    parse_size,
)
from provision.rules.store import (
    check_compiler_check,
    check_extra_files,
    check_remote_var,
    check_store_var,
)
from provision.rules.system import (
    check_buildenv,
    check_sysctls,
    check_zram_algorithm,
    check_zram_percent,
    check_zram_priority,
)


def check_role_vars(role_vars: Mapping[str, Any], host_addresses: Iterable[Any] | None = None) -> None:
    """The kbuild_host role's variables, every area that is enabled; UserError names the variable.

    ``host_addresses`` are the host's own addresses (Ansible's all_ipv4_addresses and
    all_ipv6_addresses); when given, distccd's listen address must be one of them or loopback.
    """
    v = role_vars

    def on(name: str) -> bool:
        return check_flag(v.get(name, False), name)

    if on("kbuild_host_packages_enabled"):
        check_packages(v.get("kbuild_host_packages") or (), "kbuild_host_packages")

    if on("kbuild_host_zram_enabled"):
        check_zram_algorithm(v.get("kbuild_host_zram_algorithm"), "kbuild_host_zram_algorithm")
        check_zram_percent(v.get("kbuild_host_zram_percent"), "kbuild_host_zram_percent")
        check_zram_priority(v.get("kbuild_host_zram_priority"), "kbuild_host_zram_priority")
        check_sysctls(v.get("kbuild_host_zram_sysctls"), "kbuild_host_zram_sysctls")
    if on("kbuild_host_ccache_enabled"):
        private = check_flag(v.get("kbuild_host_ccache_private", False), "kbuild_host_ccache_private")
        members = v.get("kbuild_host_ccache_group_members") or ()
        if isinstance(members, (str, bytes)) or not isinstance(members, Iterable):
            raise UserError(f"{where_value('kbuild_host_ccache_group_members', members)}: expected a list of user names")
        for user in members:
            check_user_name(user, "kbuild_host_ccache_group_members")
        if private and members:
            raise UserError("kbuild_host_ccache_group_members with kbuild_host_ccache_private: a private cache has no group")
        if not private:
            check_owned_dir(v.get("kbuild_host_ccache_dir"), "kbuild_host_ccache_dir")
        if v.get("kbuild_host_ccache_base_dir") not in (None, ""):
            check_path(v.get("kbuild_host_ccache_base_dir"), "kbuild_host_ccache_base_dir")
        parse_size(v.get("kbuild_host_ccache_max_size"), "kbuild_host_ccache_max_size")
        check_account_name(v.get("kbuild_host_ccache_group", "kbuild"), "kbuild_host_ccache_group")
        check_sloppiness(v.get("kbuild_host_ccache_sloppiness") or (), "kbuild_host_ccache_sloppiness")
        check_store_var(v.get("kbuild_host_ccache_store"), "kbuild_host_ccache_store", host_addresses)
        check_remote_var(v.get("kbuild_host_ccache_remote"))
        check_compiler_check(v.get("kbuild_host_ccache_compiler_check", "mtime"), "kbuild_host_ccache_compiler_check")
        check_extra_files(v.get("kbuild_host_ccache_extra_files") or ())
    if on("kbuild_host_distcc_enabled"):
        if on("kbuild_host_distcc_server"):
            public = check_flag(v.get("kbuild_host_distcc_allow_public"), "kbuild_host_distcc_allow_public")
            allow = parse_allow(
                v.get("kbuild_host_distcc_allow") or (), public, "kbuild_host_distcc_allow", "kbuild_host_distcc_allow_public"
            )
            check_listen(v.get("kbuild_host_distcc_listen"), allow, host_addresses, "kbuild_host_distcc_listen")
            check_int(v.get("kbuild_host_distcc_jobs"), "kbuild_host_distcc_jobs", 1, cal.DISTCC_MAX_LIMIT)
            check_int(v.get("kbuild_host_distcc_nice", 10), "kbuild_host_distcc_nice", 0, 20)
        if on("kbuild_host_distcc_client"):
            hosts = v.get("kbuild_host_distcc_hosts") or ()
            if not hosts:
                raise UserError("kbuild_host_distcc_hosts is empty: a distcc client needs host specs like build2/8")
            check_distcc_hosts(hosts, cal.DISTCC_MAX_LIMIT, "kbuild_host_distcc_hosts")
    if on("kbuild_host_hosts_enabled"):
        check_host_entries(v.get("kbuild_host_hosts_entries") or (), "kbuild_host_hosts_entries")
    if on("kbuild_host_buildenv_enabled"):
        check_buildenv(v.get("kbuild_host_buildenv") or {}, "kbuild_host_buildenv")
