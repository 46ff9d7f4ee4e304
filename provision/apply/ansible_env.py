"""What Ansible gets from kprov: extra vars with every string marked unsafe (never templated), the
environment of a run (kprov's role path, pipelining unless the user's configuration says
otherwise), the local inventory, and the Ansible tools found beside kprov's Python.
"""

from __future__ import annotations

import configparser
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from provision.apply.trust import check_config_trusted
from provision.errors import EnvironmentProblem

SYSTEM_PYTHON = "/usr/bin/python3"


#: The key Ansible's JSON decoder reads as "this string is data, never a template".
UNSAFE_KEY = "__ansible_unsafe"


def mark_unsafe(value: Any) -> Any:
    """``value`` with every string marked unsafe, so Ansible never templates it.

    Ansible templates extra vars: a ``{{ lookup('pipe', ...) }}`` in a plan value (a path, a
    hostname from a facts file) would run as root, even under ``--check``. ansible-runner writes
    extra vars as JSON (``env/extravars``), where ``{"__ansible_unsafe": "..."}`` is Ansible's
    spelling of an unsafe string. Keys stay plain strings: the validator allows only fixed names.
    """
    if isinstance(value, str):
        return {UNSAFE_KEY: value}
    if isinstance(value, dict):
        return {str(k): mark_unsafe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mark_unsafe(v) for v in value]
    return value


def playbook_cmdline(*, check: bool, diff: bool) -> list[str]:
    args = []
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    return args


def base_envvars(project: Path) -> dict[str, str]:
    """Environment for every run: kprov's roles, no colour codes in events, no retry files."""
    roles = str(project / "roles")
    user_roles = os.environ.get("ANSIBLE_ROLES_PATH")
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {
        "ANSIBLE_ROLES_PATH": f"{roles}:{user_roles}" if user_roles else roles,
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_FORCE_COLOR": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_PYTHON_INTERPRETER": os.environ.get("ANSIBLE_PYTHON_INTERPRETER", "auto_silent"),
        # the Ansible tools that belong to this Python first (sudo resets PATH to secure_path)
        "PATH": f"{bin_dir}:{path}" if bin_dir not in path.split(":") else path,
        # ansible-runner turns SSH host key checking off unless told; local runs use no SSH
        "ANSIBLE_HOST_KEY_CHECKING": os.environ.get("ANSIBLE_HOST_KEY_CHECKING", "True"),
    }


def inventory_envvars() -> dict[str, str]:
    """What an inventory run adds: the user's ./ansible.cfg, their host key checking, pipelining.

    The ansible.cfg (./ansible.cfg or ``ANSIBLE_CONFIG``) must pass the trust rule of an inventory
    (:func:`provision.apply.trust.check_config_trusted`): UserError otherwise.

    ansible-runner starts ansible-playbook in kprov's playbooks dir, where the user's
    ./ansible.cfg (remote_user, private_key_file, ...) would not be found, and it turns SSH host
    key checking off unless told otherwise. kprov keeps the user's settings for both.

    Pipelining is on unless the user's environment or ansible.cfg says otherwise: a module is then
    one SSH round trip instead of four (temp dir, copy, chmod, run), which is most of a converged
    re-run's time. It needs a sudo without ``requiretty`` where the inventory uses become
    (README: set ANSIBLE_PIPELINING=False for such hosts).
    """
    env: dict[str, str] = {}
    config = os.environ.get("ANSIBLE_CONFIG")
    cwd_config = Path.cwd() / "ansible.cfg"
    if not config and cwd_config.is_file() and not _world_writable(Path.cwd()):
        config = str(cwd_config)
        env["ANSIBLE_CONFIG"] = config
    if config:
        # an ansible.cfg is code too (vault_password_file scripts, plugin paths): one line, exit
        # 2, before Ansible starts, unless only root or the running user can change it
        check_config_trusted(config)
    if "ANSIBLE_HOST_KEY_CHECKING" not in os.environ:
        env["ANSIBLE_HOST_KEY_CHECKING"] = str(_config_host_key_checking(config))
    if "ANSIBLE_PIPELINING" not in os.environ and not _config_sets_pipelining(config):
        env["ANSIBLE_PIPELINING"] = "True"
    return env


def _world_writable(path: Path) -> bool:
    """Ansible itself ignores ansible.cfg in a world-writable directory; so does kprov."""
    try:
        return bool(path.stat().st_mode & 0o002)
    except OSError:
        return True


def _config_host_key_checking(config: str | None) -> bool:
    try:
        from ansible.config.manager import ConfigManager

        return bool(ConfigManager(conf_file=config).get_config_value("HOST_KEY_CHECKING"))
    except Exception:  # noqa: BLE001 - any trouble reading the config: keep Ansible's default
        return True


def _config_sets_pipelining(config: str | None) -> bool:
    """Whether the ansible.cfg the run reads (config, or the one Ansible's search finds) says
    anything about pipelining, in [defaults] or [connection]."""
    try:
        from ansible.config.manager import find_ini_config_file

        path = config or find_ini_config_file()
    except Exception:  # noqa: BLE001 - no Ansible to ask: leave pipelining to Ansible
        return True
    if not path:
        return False
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return True  # a config kprov cannot read: leave pipelining to Ansible
    return any(parser.has_option(section, "pipelining") for section in ("defaults", "connection"))


def local_inventory() -> str:
    """This host over the local connection, with a Python that has the distro's apt/dnf bindings."""
    python = SYSTEM_PYTHON if Path(SYSTEM_PYTHON).exists() else sys.executable
    return f"localhost ansible_connection=local ansible_python_interpreter={python}\n"


def ansible_tool(name: str) -> str:
    """Path of an Ansible command: the one next to this Python first (the venv kprov lives in)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise EnvironmentProblem(f"{name} not found: install ansible-core (pip install kprov installs it)")
    return found
