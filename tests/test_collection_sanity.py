"""The kprov.kbuild collection as Ansible's own tools judge it: ``ansible-test sanity`` and ``ansible-doc``.

The collection is built with ``kprov collection`` and unpacked under ``ansible_collections/kprov/kbuild``,
as a user or Galaxy's importer would test it, and ``ansible-test sanity --local`` runs the tests below
on it with this venv's Python.

ansible-test runs each of these tests in a virtual environment of its own (``--local`` only means
"not in a container"), under ``~/.ansible/test/venv``, and puts pip into a new one with a
``get-pip.py`` it downloads from ci-files.testing.ansible.com, which the test machines cannot
reach. So ansible-test runs here with a home of its own, kept between runs beside the suite's apt
cache (``KPROV_ANSIBLE_TEST_HOME``, default /var/cache/kprov-test/ansible-test; pytest's cache
when that cannot be written), in which the bootstrap script it asks for is a local one: it runs
this venv's pip (a copy of it, as get-pip.py runs the pip it carries) to install what ansible-test
asks for. The test requirements ansible-test pins for each sanity test then come from the package
index pip is set up for (PyPI, or ``PIP_INDEX_URL`` / ``PIP_FIND_LINKS``), once: later runs reuse
the environments. The first run in a fresh home takes about a minute, later ones about ten seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from ansible.release import __version__ as ANSIBLE_CORE

from provision.resources import role_dir

BIN = Path(sys.executable).parent
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
#: The sanity tests the collection must pass (issue 25), each one a --test option.
SANITY_TESTS = ("validate-modules", "ansible-doc", "yamllint", "compile", "import", "pep8", "shebang",
                "no-assert", "runtime-metadata")
#: The only errors the collection's ignore files may ignore: kprov is Apache-2.0, not GPLv3.
ALLOWED_IGNORES = {"validate-modules:missing-gplv3-license"}
#: ansible-test's home: its sanity test virtual environments and its pip bootstrap script.
ANSIBLE_TEST_HOME = Path(os.environ.get("KPROV_ANSIBLE_TEST_HOME", "/var/cache/kprov-test/ansible-test"))

#: ansible-test's message when it cannot download the pip bootstrap script; it names where it looks.
_BOOTSTRAP_WANTED = re.compile(r"The bootstrap script can be manually downloaded and saved to: (\S+)")
#: A local stand-in for get-pip.py: installs what it is given with the pip copied beside it.
_LOCAL_GET_PIP = '''\
"""Stands in for get-pip.py in ansible-test's cache (kprov's tests/test_collection_sanity.py): runs
the pip copied beside it, as get-pip.py runs the pip it carries, to install what it is given."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "kprov-pip"))
from pip._internal.cli.main import main  # noqa: E402

# get-pip.py's own switches: with them it leaves setuptools and wheel out, which pip does anyway.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall"] + args))
'''


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable} (it comes with ansible-core)")
    return path


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """The built collection, unpacked where ansible-test wants it: .../ansible_collections/kprov/kbuild."""
    out = tmp_path_factory.mktemp("collection-build")
    proc = subprocess.run([str(_tool("kprov")), "collection", "--output", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tarballs = sorted(out.glob("kprov-kbuild-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    root = tmp_path_factory.mktemp("collection-src") / "ansible_collections" / "kprov" / "kbuild"
    root.mkdir(parents=True)
    with tarfile.open(tarballs[0]) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # Python before 3.11.4: the tarball is the one just built
            tar.extractall(root)
    return root


@pytest.fixture(scope="module")
def ansible_test_home(request, tmp_path_factory) -> Path:
    """ansible-test's home, kept between runs so that its virtual environments are made once."""
    try:
        ANSIBLE_TEST_HOME.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    if os.access(ANSIBLE_TEST_HOME, os.W_OK):
        return ANSIBLE_TEST_HOME
    cache = request.config.cache
    home = cache.mkdir("kprov-ansible-test-home") if cache is not None else tmp_path_factory.mktemp("ansible-test-home")
    return Path(home)


def _ansible_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without the suite's Ansible settings, with this venv first on PATH."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", NO_COLOR="1", **extra)
    return env


def _provide_get_pip(wanted: Path) -> None:
    """Put the local stand-in for get-pip.py where ansible-test looks for the downloaded one."""
    import pip

    wanted.parent.mkdir(parents=True, exist_ok=True)
    copy = wanted.parent / "kprov-pip" / "pip"
    if not copy.is_dir():
        shutil.copytree(Path(pip.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    wanted.write_text(_LOCAL_GET_PIP)


def _sanity(collection: Path, home: Path) -> subprocess.CompletedProcess:
    argv = [str(_tool("ansible-test")), "sanity", "--local", "--python", PYTHON, "--color", "no"]
    for test in SANITY_TESTS:
        argv += ["--test", test]
    return subprocess.run(argv, cwd=collection, env=_ansible_env(home), capture_output=True, text=True,
                          timeout=900, check=False)


def test_the_collection_passes_ansible_test_sanity(collection: Path, ansible_test_home: Path) -> None:
    start = time.monotonic()
    proc = _sanity(collection, ansible_test_home)
    wanted = _BOOTSTRAP_WANTED.search(proc.stdout + proc.stderr)
    if proc.returncode != 0 and wanted:  # the first run in this home: no pip bootstrap script yet
        _provide_get_pip(Path(wanted.group(1)))
        proc = _sanity(collection, ansible_test_home)
    out = proc.stdout + proc.stderr
    print(f"ansible-test sanity ({len(SANITY_TESTS)} tests): exit {proc.returncode} in {time.monotonic() - start:.1f} s")
    assert proc.returncode == 0, out[-8000:]
    for test in SANITY_TESTS:
        assert f'Running sanity test "{test}"' in out, f"{test} did not run:\n{out[-4000:]}"
    assert "Skipping sanity test" not in out, out[-4000:]


def test_the_ignore_list_only_records_the_license(collection: Path) -> None:
    """The one thing the sanity tests may not hold against kprov is its license (Apache-2.0)."""
    assert not (collection / "roles" / "kbuild_host" / "tests").exists(), "the role's tests/ is the collection's"
    ignore = collection / "tests" / "sanity" / f"ignore-{'.'.join(ANSIBLE_CORE.split('.')[:2])}.txt"
    assert ignore.is_file(), f"the collection has no {ignore.relative_to(collection)} for ansible-core {ANSIBLE_CORE}"
    for line in ignore.read_text().splitlines():
        entry, _, reason = line.partition(" # ")
        path, code = entry.split()
        assert code in ALLOWED_IGNORES, line
        assert reason.strip(), f"{line}: an ignore needs its reason"
        assert (collection / path).is_file(), line


def test_ansible_doc_documents_every_module(collection: Path, tmp_path: Path) -> None:
    modules = sorted(p.stem for p in (role_dir() / "library").glob("*.py"))
    assert sorted(p.stem for p in (collection / "plugins" / "modules").glob("*.py")) == modules
    env = _ansible_env(tmp_path, ANSIBLE_COLLECTIONS_PATH=str(collection.parent.parent.parent))
    fqcns = [f"kprov.kbuild.{name}" for name in modules]
    proc = subprocess.run([str(_tool("ansible-doc")), "--json", "-t", "module", *fqcns], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    docs = json.loads(proc.stdout)
    assert sorted(docs) == fqcns
    for fqcn, doc in docs.items():
        assert doc["doc"]["short_description"] and doc["doc"]["description"], fqcn
        assert doc["examples"].strip() and doc["return"], fqcn
