"""The kbuild_host role as Ansible users consume roles: an Ansible collection, and its paths.

``kprov collection build`` stages a collection ``kprov.kbuild`` (``galaxy.yml``,
``meta/runtime.yml``, ``roles/kbuild_host`` copied from this installation, and the fleet and site
playbooks rewritten to name the role by its FQCN) and runs ``ansible-galaxy collection build`` on
it, so the tarball always carries the very role this kprov version plans for. ``kprov
ansible-path`` prints the directory to put in ``ANSIBLE_ROLES_PATH`` instead.

The role keeps its filters, modules and module_utils inside the role directory: Ansible loads a
role's embedded plugins for a collection role too, and the filters import ``provision`` on the
controller, so the controller needs kprov installed either way (the filters say so in one line).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from provision import __version__
from provision.errors import EnvironmentProblem, KprovError, UserError, escaped
from provision.resources import playbooks_dir, role_dir

NAMESPACE = "kprov"


NAME = "kbuild"


ROLE = "kbuild_host"


FQCN = f"{NAMESPACE}.{NAME}.{ROLE}"


#: The oldest ansible-core the role is tested with (pyproject's dependency floor).
REQUIRES_ANSIBLE = ">=2.16"


#: Playbooks shipped in the collection (``ansible-playbook kprov.kbuild.fleet``).
PLAYBOOKS = ("fleet.yml", "site.yml")


_README = f"""# kprov.kbuild

The `{ROLE}` role of kprov {__version__}: tunes a Linux kernel build host (build dependencies,
zram swap, ccache, a distcc server or client, `/etc/hosts` entries, the build environment) from a
kprov plan. The role plans each host with kprov's planner on the Ansible controller, so install
kprov there too (`pip install kprov`).

    - hosts: builders
      roles:
        - role: {FQCN}

Playbooks: `ansible-playbook -i INVENTORY {NAMESPACE}.{NAME}.fleet` tunes a fleet and its distcc farm.
"""


_PLUGIN_DIRS = {"library": "modules", "module_utils": "module_utils", "filter_plugins": "filter"}


_MODULE_UTILS = re.compile(r"^(\s*from\s+)ansible\.module_utils\.(kbuild_host_\w+)", re.MULTILINE)


_COLLECTION_UTILS = rf"\1ansible_collections.{NAMESPACE}.{NAME}.plugins.module_utils.\2"


#: A use of one of the role's filters: ``| kprov_name`` (the filters are all named kprov_*).
_FILTER_USE = re.compile(r"(\|[ \t]*)(kprov_[a-z_]+)\b")


_ROLE_REF = re.compile(r"^(\s*(?:-\s+)?(?:role|name):\s*)kbuild_host\s*$", re.MULTILINE)


def roles_path() -> Path:
    """The directory holding the ``kbuild_host`` role of this installation."""
    return role_dir().parent


def galaxy_manifest() -> dict:
    return {
        "namespace": NAMESPACE,
        "name": NAME,
        "version": __version__,
        "readme": "README.md",
        "authors": ["kprov developers"],
        "description": "Plan and apply Linux kernel build hosts: -j, zram swap, ccache, distcc farms",
        "license": ["Apache-2.0"],
        "tags": ["kernel", "build", "zram", "ccache", "distcc"],
        "dependencies": {},
        "build_ignore": ["**/__pycache__", "**/*.pyc"],
    }


def _fqcn_playbook(text: str) -> str:
    """A playbook of this installation with its ``kbuild_host`` role named by FQCN."""
    return _ROLE_REF.sub(lambda m: f"{m.group(1)}{FQCN}", text)


def stage(dest: Path) -> Path:
    """Write the collection's source tree under ``dest`` (which must not exist)."""
    dest.mkdir(parents=True)
    (dest / "galaxy.yml").write_text(yaml.safe_dump(galaxy_manifest(), sort_keys=False))
    (dest / "README.md").write_text(_README)
    (dest / "meta").mkdir()
    (dest / "meta" / "runtime.yml").write_text(yaml.safe_dump({"requires_ansible": REQUIRES_ANSIBLE}))
    role = dest / "roles" / ROLE
    shutil.copytree(role_dir(), role, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=False)
    # The role's tests/ is the collection's: its sanity ignore lists (tests/sanity/ignore-X.Y.txt,
    # read there by ansible-test) name the collection's paths, plugins/modules/...
    if (role / "tests").is_dir():
        shutil.move(role / "tests", dest / "tests")
    # A collection role gets no plugin directories of its own (Ansible adds a role's library/,
    # filter_plugins/, module_utils/ only for roles outside collections): they move to the
    # collection's plugins/, modules import module_utils by their collection path, and the
    # role's templates name its filters by FQCN (Jinja filters ignore a role's collection list).
    for embedded, plugin in _PLUGIN_DIRS.items():
        source = role / embedded
        if source.is_dir():
            target = dest / "plugins" / plugin
            target.mkdir(parents=True)
            for path in sorted(source.glob("*.py")):
                (target / path.name).write_text(_MODULE_UTILS.sub(_COLLECTION_UTILS, path.read_text()))
            shutil.rmtree(source)
    for path in sorted(role.rglob("*")):
        if path.suffix in (".yml", ".yaml", ".j2") and path.is_file():
            path.write_text(_FILTER_USE.sub(lambda m: f"{m.group(1)}{NAMESPACE}.{NAME}.{m.group(2)}", path.read_text()))
    (dest / "playbooks").mkdir()
    for name in PLAYBOOKS:
        source = playbooks_dir() / name
        (dest / "playbooks" / name).write_text(_fqcn_playbook(source.read_text()))
    return dest


def _galaxy() -> str:
    beside = Path(sys.executable).with_name("ansible-galaxy")
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("ansible-galaxy")
    if not found:
        raise EnvironmentProblem("ansible-galaxy is not installed: it comes with ansible-core (pip install kprov)")
    return found


#: Errors of the output directory that are the host's, not the path's: exit 1, not 2.
_HOST_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM})


def _output_error(output: Path, exc: OSError, doing: str = "") -> KprovError:
    """A failure to make or write ``--output``, as one line: the path is the user's (exit 2)
    unless the host ran out of room or failed (exit 1)."""
    kind = EnvironmentProblem if exc.errno in _HOST_ERRNOS else UserError
    return kind(f"--output {escaped(output)}: {doing}{exc.strerror or exc}")


def _output_dir(output: Path) -> Path:
    """``output``, made when missing; a one-line error for what cannot be a directory to write in
    (a regular file, a symlink to nothing, a path under a file, /proc)."""
    try:
        if output.is_symlink() and not output.exists():
            raise UserError(f"--output {escaped(output)}: a symlink to nothing")
        if output.exists() and not output.is_dir():
            raise UserError(f"--output {escaped(output)}: not a directory")
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(output, exc) from None
    return output


def _check_target(tarball: Path) -> None:
    """Refuse to replace anything at ``tarball`` but a regular file of the caller's own: a symlink
    planted there (to a file of root's) is never written through, and no directory, FIFO or other
    user's file is replaced."""
    try:
        info = os.lstat(tarball)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _output_error(tarball.parent, exc) from None
    if stat.S_ISLNK(info.st_mode):
        raise UserError(f"{escaped(tarball)} is a symlink: kprov writes the tarball only over a regular file of yours")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{escaped(tarball)} exists and is not a regular file: remove it or choose another --output")
    if info.st_uid != os.geteuid():
        raise UserError(
            f"{escaped(tarball)} belongs to uid {info.st_uid}, not to you: remove it or choose another --output"
        )


def build(output: Path) -> Path:
    """Build ``kprov-kbuild-<version>.tar.gz`` into ``output``; return the tarball's path.

    ansible-galaxy writes into a new private directory inside ``output`` (mode 0700, made with
    O_EXCL semantics by :func:`tempfile.mkdtemp`), and the finished tarball is renamed into place:
    a rename replaces the directory entry and never follows a symlink there. What already stands at
    the tarball's name must be a regular file of the caller's own, checked before the build and
    again just before the rename; nothing is built when it is not.
    """
    output = _output_dir(Path(output))
    tarball = output / f"{NAMESPACE}-{NAME}-{__version__}.tar.gz"
    _check_target(tarball)
    galaxy = _galaxy()
    try:
        private = Path(tempfile.mkdtemp(prefix=".kprov-collection-", dir=output))
    except OSError as exc:
        raise _output_error(output, exc, "cannot write in it: ") from None
    try:
        try:
            with tempfile.TemporaryDirectory(prefix="kprov-collection-") as tmp:
                src = stage(Path(tmp) / "src")
                proc = subprocess.run(
                    [galaxy, "collection", "build", "--output-path", str(private), str(src)],
                    capture_output=True, text=True, check=False,
                )
        except OSError as exc:
            raise EnvironmentProblem(f"cannot stage the collection: {exc.strerror or exc}") from None
        built = private / tarball.name
        if proc.returncode != 0 or not built.is_file() or built.is_symlink():
            detail = " ".join((proc.stderr or proc.stdout).split())[-300:]
            raise EnvironmentProblem(f"ansible-galaxy collection build failed: {detail}")
        _check_target(tarball)
        try:
            os.rename(built, tarball)
        except OSError as exc:
            raise _output_error(output, exc, "cannot put the tarball there: ") from None
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return tarball
