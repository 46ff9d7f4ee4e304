"""The pure layers do no I/O: what a layers contract cannot say (no ``os``, ``subprocess`` or
``open()`` in the planner, the rules, the model and the figures) is checked here with ast.

Which kprov packages a layer may import is import-linter's job (``[tool.importlinter]`` in
pyproject.toml, tested in test_layers.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import provision

PACKAGE = Path(provision.__file__).parent
PURE = sorted(
    str(p.relative_to(PACKAGE))
    for p in [*PACKAGE.glob("planner/*.py"), *PACKAGE.glob("rules/*.py"), *PACKAGE.glob("model/*.py"),
              PACKAGE / "calibration.py", PACKAGE / "units.py", PACKAGE / "paths.py"]
)
FORBIDDEN = {
    "psutil", "distro", "plumbum", "ansible_runner", "ansible", "subprocess", "os", "pathlib", "socket",
    "yaml", "jinja2", "shutil", "io", "glob", "tempfile", "urllib", "http", "requests", "platform",
}


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


def test_the_pure_modules_are_found():
    assert len(PURE) >= 20 and "planner/__init__.py" in PURE and "rules/addresses.py" in PURE


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_nothing_that_does_io(module):
    imports = _imports(PACKAGE / module)
    bad = {name for name in imports for f in FORBIDDEN if name == f or name.startswith(f + ".")}
    assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("module", PURE)
def test_no_open_or_dunder_import_calls_in_a_pure_module(module):
    tree = ast.parse((PACKAGE / module).read_text())
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not calls & {"open", "__import__", "exec", "eval", "input", "print"}


def test_the_check_catches_a_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom subprocess import run\nfrom provision.facts import gather\n")
    assert {"os", "subprocess", "provision.facts"} <= _imports(sample)
