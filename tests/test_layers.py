"""The package's layers (pyproject.toml ``[tool.importlinter]``, README "Layout"), checked for real:
``lint-imports`` passes, and fails on a planted violation; no import cycle among kprov's modules,
counting imports inside functions; such imports only where this file names them; no module longer
than about 500 lines but the figures table."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import provision

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(provision.__file__).parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

#: Modules allowed to import kprov code inside a function, and why. The command layer imports what
#: a command needs when it runs, so ``kprov plan`` never loads ansible-runner, the fleet or calibrate.
FUNCTION_IMPORTS_ALLOWED = {
    "provision.cli.": "commands load their dependencies when they run (kprov plan's start-up)",
}
LONG_MODULES_ALLOWED = {"provision.calibration": "the figures table: every constant with its source"}
MAX_LINES = 520


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        if "_data" in path.relative_to(PACKAGE).parts:  # the role and templates shipped in the wheel
            continue
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported kprov module, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            if target in modules and target != name:
                found.append((target, id(node) in inside))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {t for t, _ in _imports(name, path, modules)} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, env=env, cwd=package_parent, check=False, timeout=300,
    )


def test_the_import_contracts_hold():
    done = _lint_imports(PACKAGE.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_a_planner_module_that_imports_apply_breaks_the_contracts(tmp_path):
    copy = tmp_path / "provision"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "_data"))
    jobs = copy / "planner" / "jobs.py"
    jobs.write_text(jobs.read_text() + "\nfrom provision.apply import runner  # planted\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout and "provision.planner.jobs -> provision.apply.runner" in done.stdout


def test_no_import_cycle_among_kprovs_modules_counting_imports_inside_functions():
    graph = _graph()
    assert len(graph) >= 60 and "provision.planner.jobs" in graph["provision.planner"]
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_kprov_imports_inside_functions_only_where_allowed():
    modules = _modules()
    found = sorted(
        f"{name} -> {target}"
        for name, path in modules.items()
        if not any(name.startswith(prefix) for prefix in FUNCTION_IMPORTS_ALLOWED)
        for target, inside in _imports(name, path, modules)
        if inside
    )
    assert found == []


def test_no_module_is_longer_than_about_500_lines_but_the_figures_table():
    long = {
        name: len(path.read_text().splitlines())
        for name, path in _modules().items()
        if len(path.read_text().splitlines()) > MAX_LINES and name not in LONG_MODULES_ALLOWED
    }
    assert long == {}


@pytest.mark.parametrize("package", ["cli", "apply", "role", "fleet", "tree", "planner", "facts", "model", "rules"])
def test_each_subpackage_says_what_it_owns_and_what_it_may_import(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text())) or ""
    assert len(doc) > 120 and "import" in doc, f"provision.{package}: its docstring must say what it may import"
