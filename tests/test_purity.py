"""The planner and its data modules do no I/O: their imports are checked with ast, not by trust."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import provision

PURE = ("planner.py", "calibration.py", "validate.py", "cache.py")
FORBIDDEN = {
    "psutil", "distro", "plumbum", "ansible_runner", "ansible", "subprocess", "os", "pathlib", "socket",
    "yaml", "jinja2", "shutil", "io", "glob", "tempfile", "urllib", "http", "requests", "platform",
    "provision.facts", "provision.ansible_facts", "provision.runner", "provision.inventory",
    "provision.catalog", "provision.resources", "provision.render", "provision.cli",
}
ALLOWED_PROVISION = {"provision.model", "provision.errors", "provision.calibration", "provision.validate", "provision.cache"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_nothing_that_does_io(module):
    imports = _imports(Path(provision.__file__).parent / module)
    bad = {name for name in imports for f in FORBIDDEN if name == f or name.startswith(f + ".")}
    assert not bad, f"{module} imports {sorted(bad)}"
    project = {n for n in imports if n.startswith("provision") and n != "provision"}
    outside = {n for n in project if not any(n == a or n.startswith(a + ".") for a in ALLOWED_PROVISION)}
    # "from provision import calibration" shows up as provision.calibration: allowed
    assert not outside, f"{module} imports {sorted(outside)}"


def test_no_open_or_dunder_import_calls_in_the_planner():
    tree = ast.parse((Path(provision.__file__).parent / "planner.py").read_text())
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not calls & {"open", "__import__", "exec", "eval", "input", "print"}


def test_the_check_catches_a_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom subprocess import run\nfrom provision.facts import gather\n")
    assert {"os", "subprocess", "provision.facts"} <= _imports(sample)
