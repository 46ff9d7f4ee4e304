"""The role's package lists as a :class:`PackageCatalog` for the planner.

The role's ``vars/<os_family>.yml`` files are the single source of the package names: the role
installs from them and ``kprov plan`` prints from them, so the two cannot disagree. This module
reads them once per process (the planner itself does no I/O).
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from provision.errors import EnvironmentProblem
from provision.model.plan import PackageCatalog, PackageSet
from provision.resources import role_dir

#: kprov's distro family -> the role's vars file (Ansible's os_family names).
FAMILY_FILES = {
    "debian": "Debian.yml",
    "redhat": "RedHat.yml",
    "arch": "Archlinux.yml",
    "suse": "Suse.yml",
    "alpine": "Alpine.yml",
}


_KEYS = {
    "build": "__kbuild_host_build_packages",
    "zram": "__kbuild_host_zram_packages",
    "ccache": "__kbuild_host_ccache_packages",
    "distcc": "__kbuild_host_distcc_packages",
    "clang": "__kbuild_host_clang_packages",
    "redis": "__kbuild_host_redis_packages",
    "nginx": "__kbuild_host_nginx_packages",
    "cron": "__kbuild_host_cron_packages",
}


def _names(data: dict, key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise EnvironmentProblem(f"{path}: {key} must be a list of package names")
    return tuple(value)


def load_family(path: Path) -> PackageSet:
    """One vars file -> PackageSet; a broken file is an installation problem, named."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read the package list {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise EnvironmentProblem(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise EnvironmentProblem(f"{path}: expected a mapping of variables")
    fields = {name: _names(data, key, path) for name, key in _KEYS.items()}
    tool = data.get("__kbuild_host_zram_tool", "none")
    return PackageSet(zram_tool=str(tool or "none"), **fields)


@functools.cache
def load_catalog(vars_dir: str | None = None) -> PackageCatalog:
    """Every family's PackageSet from the role's vars directory (cached per process)."""
    base = Path(vars_dir) if vars_dir else role_dir() / "vars"
    return PackageCatalog(families={family: load_family(base / name) for family, name in FAMILY_FILES.items()})
