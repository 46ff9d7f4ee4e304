"""Filters that let the kbuild_host role plan and check a host with kprov's own code.

The role never carries a second copy of kprov's rules: these filters call the ``provision``
package on the Ansible controller through one module, ``provision.role.backend``: the planner for
the plan, kprov's rules for every check of a variable and for the canonical form templates write.
It is imported lazily, so a controller without kprov gets one clear error from the filter rather
than a failure to load the role.
"""

from __future__ import annotations

import importlib
from typing import Any

from ansible.errors import AnsibleFilterError

NOT_INSTALLED = "kprov is not installed on the Ansible controller: run `pip install kprov` there"


BACKEND = "provision.role.backend"


def _backend() -> Any:
    """kprov's module for this role (:mod:`provision.role.backend`), or the one-line "install kprov" error."""
    try:
        return importlib.import_module(BACKEND)
    except ImportError as exc:
        if getattr(exc, "name", None) == "provision":
            raise AnsibleFilterError(NOT_INSTALLED) from None
        # kprov is there but this part of it does not load: say which, on one line.
        detail = " ".join(str(exc).split())
        raise AnsibleFilterError(f"kprov on the Ansible controller cannot load {BACKEND}: {detail}") from None


def _plain(value: Any) -> Any:
    """Ansible's lazy/tagged containers -> plain data, with kprov's own converter."""
    return _backend().plain_data(value)


def _checked(check: Any, *args: Any) -> Any:
    """``check(*args)`` with kprov's one-line errors as filter errors."""
    kprov_error = _backend().KprovError
    try:
        return check(*args)
    except kprov_error as exc:
        raise AnsibleFilterError(str(exc)) from None


def kprov_plan_vars(setup_facts: Any, probe: Any = None, goals: Any = None) -> dict[str, Any]:
    """kbuild_host_* variables planned from a host's setup facts and the role's probe result."""
    plan_from_ansible = _backend().plan_from_ansible
    plan = _checked(plan_from_ansible, _plain(setup_facts), _plain(probe or {}), _plain(goals or {}))
    return plan.to_role_vars()


def kprov_farm_toolchain(setup_facts: Any, probe: Any = None) -> Any:
    """What this host publishes for the distcc farm (kbuild_host_farm_toolchain): its toolchain facts."""
    facts_from_ansible = _backend().facts_from_ansible
    farm_toolchain = _backend().farm_toolchain
    return farm_toolchain(_checked(facts_from_ansible, _plain(setup_facts), _plain(probe or {})))


def kprov_farm_goals(
    host: str,
    hostvars: Any,
    groups: Any,
    goals: Any = None,
    server_group: str = "distcc_servers",
    client_group: str = "distcc_clients",
) -> dict[str, Any]:
    """``goals`` extended with this host's part in the distcc farm its inventory groups describe."""
    farm_goals_from_hostvars = _backend().farm_goals_from_hostvars
    members = set(_plain(groups).get(server_group, [])) | set(_plain(groups).get(client_group, []))
    # hostvars is lazy and huge; hand kprov only the farm members' variables it reads.
    member_vars = {h: _member_vars(hostvars[h]) for h in sorted(members) if h in hostvars}
    return _checked(
        farm_goals_from_hostvars,
        str(host), member_vars, _plain(groups), _plain(goals or {}), str(server_group), str(client_group),
    )


def kprov_cache_goals(
    host: str,
    hostvars: Any,
    groups: Any,
    goals: Any,
    secrets_dir: str,
    store_group: str = "ccache_store",
    writer_group: str = "ccache_writers",
    endpoint: Any = None,
    check_mode: Any = False,
) -> dict[str, Any]:
    """``goals`` extended with this host's part in the shared compile cache of its inventory: the
    store (the one host of ``store_group``) or a client of it at ``endpoint`` ([backend, port], the
    store's published kbuild_host_ccache_endpoint). Secret files are made on the controller, in
    ``secrets_dir``, when missing; with ``check_mode`` (the play's ansible_check_mode) none is
    made, the existing ones are only checked."""
    backend = _backend()
    check = _checked(backend.check_flag, _plain(check_mode), "ansible_check_mode")
    plain_groups = _plain(groups)
    fleet = plain_groups.get("all") or list(hostvars)
    member_vars = {h: _member_vars(hostvars[h]) for h in sorted(set(fleet)) if h in hostvars}
    where = _plain(endpoint) if endpoint else None
    return _checked(
        lambda *args: backend.cache_goals(*args, check_mode=check),
        str(host), member_vars, plain_groups, _plain(goals or {}), str(secrets_dir), str(store_group),
        str(writer_group), (str(where[0]), int(where[1])) if where else None,
    )


def kprov_fleet_groups(variables: Any) -> dict[str, str]:
    """The farm's and the shared cache's group-name variables, each checked as an inventory group name."""
    return _checked(_backend().fleet_group_names, _plain(variables))


def _member_vars(hvars: Any) -> dict[str, Any]:
    wanted = ("kbuild_host_farm_address", "ansible_facts", "kbuild_host_farm_jobs", "inventory_hostname",
              "ansible_host", "kbuild_host_goals", "kbuild_host_farm_toolchain")
    out: dict[str, Any] = {}
    for key in wanted:
        try:
            if key in hvars:
                out[key] = _plain(hvars[key])
        except Exception:  # an undefined or unrenderable var is the same as an absent one here
            continue
    return out


# --------------------------------------------------------------------------- checks (kprov's rules)


def kprov_role_vars_problem(role_vars: Any, host_addresses: Any = None) -> str:
    """The one-line problem with the role's variables, or '' when kprov's validator accepts them.

    ``host_addresses``: the host's own addresses (all_ipv4_addresses + all_ipv6_addresses), or
    none when the facts do not list them.
    """
    backend = _backend()
    kprov_error = backend.KprovError
    addresses = None if host_addresses is None else list(_plain(host_addresses))
    try:
        backend.check_role_vars(_plain(role_vars), addresses)
    except kprov_error as exc:
        return str(exc)
    return ""


def kprov_allow(allow: Any, allow_public: Any = False) -> list[str]:
    """distccd's allow list in canonical form (``10.0.0.0/8``), checked."""
    v = _backend()
    public = _checked(v.check_flag, _plain(allow_public), "kbuild_host_distcc_allow_public")
    return list(
        _checked(v.parse_allow, _plain(allow), public, "kbuild_host_distcc_allow", "kbuild_host_distcc_allow_public")
    )


def kprov_listen(listen: Any, allow: Any) -> str:
    """distccd's listen address in canonical form, in the allow list's address family."""
    v = _backend()
    return _checked(v.check_listen, _plain(listen), list(_plain(allow)), None, "kbuild_host_distcc_listen")


def kprov_distcc_hosts(hosts: Any) -> list[str]:
    """distcc client host specs in canonical form (``build2/8``, ``10.0.0.7:3633/4,lzo``)."""
    v = _backend()
    parsed = _checked(v.check_distcc_hosts, _plain(hosts), v.DISTCC_MAX_LIMIT, "kbuild_host_distcc_hosts")
    return [h.spec(v.DISTCC_DEFAULT_LIMIT) for h in parsed]


def kprov_path(path: Any, name: str) -> str:
    """An absolute path in kprov's safe character set, normalised; ``name`` is the variable's."""
    return _checked(_backend().check_path, _plain(path), str(name))


def kprov_owned_dir(path: Any, name: str) -> str:
    """A directory the role creates and hands to a group (never a system directory)."""
    return _checked(_backend().check_owned_dir, _plain(path), str(name))


def kprov_account_name(name: Any, variable: str) -> str:
    return _checked(_backend().check_account_name, _plain(name), str(variable))


def kprov_ccache_size(size: Any) -> str:
    """A ccache max_size in ccache's binary-unit syntax (``8Gi``, ``2048Mi``)."""
    return _checked(_backend().ccache_size, _plain(size), "kbuild_host_ccache_max_size")


def kprov_ccache_sloppiness(values: Any) -> list[str]:
    return list(_checked(_backend().check_sloppiness, _plain(values), "kbuild_host_ccache_sloppiness"))


def kprov_host_entries(entries: Any) -> list[dict[str, Any]]:
    """/etc/hosts entries with canonical addresses and checked names."""
    checked = _checked(_backend().check_host_entries, _plain(entries), "kbuild_host_hosts_entries")
    return [{"address": e.address, "names": list(e.names)} for e in checked]


def kprov_sysctls(values: Any) -> dict[str, str]:
    """The swap-on-zram sysctls: only the keys kprov plans, values in their ranges."""
    return _checked(_backend().check_sysctls, _plain(values), "kbuild_host_zram_sysctls")


def kprov_buildenv(env: Any) -> dict[str, str]:
    """The exported build environment: kprov's fixed variable names, each value in its charset."""
    return _checked(_backend().check_buildenv, _plain(env), "kbuild_host_buildenv")


# --------------------------------------------------------------------------- the shared compile cache


def kprov_ccache_store(store: Any) -> dict[str, Any]:
    """The planned store in canonical form (``{}`` when this host runs none)."""
    s = _checked(_backend().check_store, _plain(store))
    return {} if s is None else s.to_role_var()


def kprov_ccache_remote(remote: Any) -> dict[str, Any]:
    """The planned remote store of a client in canonical form (``{}`` when it uses none)."""
    r = _checked(_backend().check_remote, _plain(remote))
    return {} if r is None else r.to_role_var()


def kprov_redis_acl(store: Any, secrets: Any) -> list[str]:
    """Redis ``user`` lines with ``#sha256`` passwords, from ``{name: secret}``."""
    return list(_checked(_backend().redis_acl_lines, _plain(store), _plain(secrets)))


def kprov_htpasswd(store: Any, secrets: Any, writers_only: bool = False) -> list[str]:
    """nginx htpasswd lines (``{SSHA}``, salt derived from the user name), from ``{name: secret}``."""
    return list(_checked(_backend().nginx_user_file_lines, _plain(store), _plain(secrets), bool(writers_only)))


def kprov_ccache_remote_storage(remote: Any, secret: Any) -> str:
    """ccache's remote_storage value: URL with USER:SECRET@ and its attributes."""
    return _checked(_backend().remote_storage_line, _plain(remote), _plain(secret))


def kprov_ccache_compiler_check(value: Any) -> str:
    return _checked(_backend().check_compiler_check, _plain(value))


def kprov_ccache_size_bytes(size: Any, name: str) -> str:
    """A size in bytes in ccache's binary-unit syntax (``4Gi``), checked."""
    v = _backend()
    return v.ccache_size_string(_checked(v.check_size_bytes, _plain(size), str(name)))


class FilterModule:
    """kprov planning and checking filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "kprov_plan_vars": kprov_plan_vars,
            "kprov_farm_goals": kprov_farm_goals,
            "kprov_cache_goals": kprov_cache_goals,
            "kprov_farm_toolchain": kprov_farm_toolchain,
            "kprov_fleet_groups": kprov_fleet_groups,
            "kprov_role_vars_problem": kprov_role_vars_problem,
            "kprov_allow": kprov_allow,
            "kprov_listen": kprov_listen,
            "kprov_distcc_hosts": kprov_distcc_hosts,
            "kprov_path": kprov_path,
            "kprov_owned_dir": kprov_owned_dir,
            "kprov_account_name": kprov_account_name,
            "kprov_ccache_size": kprov_ccache_size,
            "kprov_ccache_sloppiness": kprov_ccache_sloppiness,
            "kprov_host_entries": kprov_host_entries,
            "kprov_sysctls": kprov_sysctls,
            "kprov_buildenv": kprov_buildenv,
            "kprov_ccache_store": kprov_ccache_store,
            "kprov_ccache_remote": kprov_ccache_remote,
            "kprov_redis_acl": kprov_redis_acl,
            "kprov_htpasswd": kprov_htpasswd,
            "kprov_ccache_remote_storage": kprov_ccache_remote_storage,
            "kprov_ccache_size_bytes": kprov_ccache_size_bytes,
            "kprov_ccache_compiler_check": kprov_ccache_compiler_check,
        }
