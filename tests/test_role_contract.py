"""The role contract is one list: meta/argument_specs.yml, and everything else tested against it.

The planned variables are the options of argument_specs that have no default (the planner gives
them), other than ``kbuild_host_plan`` (the plan itself) and ``kbuild_host_farm_address`` (an
inventory setting). ``Plan.to_role_vars()``, the role's ``__kbuild_host_planned_names``, its
defaults (each planned variable read from the role's own plan) and Molecule's explicit-variables
path must name exactly those, with the types argument_specs declares.

The role's modules keep the same rule: each one's DOCUMENTATION (what ansible-doc shows the users of
the collection) names exactly its argument_spec, with its types, defaults, elements and choices,
its EXAMPLES use only those options, and its RETURN documents what it returns.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from provision.facts.catalog import load_catalog
from provision.model.facts import HostFacts
from provision.model.goals import Goals
from provision.planner import plan
from provision.resources import role_dir

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
NOT_PLANNED = {"kbuild_host_plan", "kbuild_host_farm_address"}
PYTHON_TYPES = {"bool": bool, "int": int, "str": str, "list": list, "dict": dict}


def options() -> dict:
    spec = yaml.safe_load((role_dir() / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]


def planned_names() -> set[str]:
    return {name for name, opt in options().items() if "default" not in opt} - NOT_PLANNED


@pytest.mark.parametrize("fixture", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_to_role_vars_gives_exactly_the_planned_variables_with_their_types(fixture):
    facts = HostFacts.from_dict(json.loads((FIXTURES / f"{fixture}.json").read_text()))
    role_vars = plan(facts, Goals(), load_catalog()).to_role_vars()
    assert set(role_vars) - {"kbuild_host_plan"} == planned_names()
    opts = options()
    for name, value in role_vars.items():
        declared = opts[name]["type"]
        assert isinstance(value, PYTHON_TYPES[declared]), f"{name}: {type(value).__name__}, declared {declared}"
        assert not (declared == "int" and isinstance(value, bool)), name


def test_the_roles_internal_list_names_the_same_variables():
    internal = yaml.safe_load((role_dir() / "vars" / "main.yml").read_text())["__kbuild_host_planned_names"]
    assert len(internal) == len(set(internal))
    assert set(internal) == planned_names()


def test_each_planned_default_reads_the_same_name_from_the_roles_own_plan():
    text = (role_dir() / "defaults" / "main.yml").read_text()
    defaults = yaml.safe_load(text)
    from_plan = dict(re.findall(r'^(kbuild_host_\w+): "\{\{ __kbuild_host_vars\.(\w+) \| default\(none\) \}\}"$', text, re.M))
    assert set(from_plan) == planned_names()
    assert all(name == source for name, source in from_plan.items())
    # and everything with a default in argument_specs has the same default in defaults/main.yml
    for name, opt in options().items():
        if "default" in opt:
            assert defaults.get(name) == opt["default"], name


def test_moleculess_explicit_variables_path_gives_every_planned_variable():
    converge = yaml.safe_load((ROOT / "molecule" / "default" / "converge.yml").read_text())
    tasks = converge[0]["pre_tasks"]
    explicit = next(t for t in tasks if t.get("name") == "Pass the plan as explicit variables")
    given = set(explicit["ansible.builtin.set_fact"]) - {"kbuild_host_plan"}
    assert given == planned_names()


def test_python_reads_no_role_private_variable():
    """Role-private ``__kbuild_host_*`` names belong to the role. The one exception is catalog.py,
    which reads the package lists from the role's vars/<os_family>.yml, their single source."""
    found = {}
    for path in sorted((ROOT / "provision").glob("*.py")):
        names = set(re.findall(r"__kbuild_host_\w+", path.read_text()))
        if names and path.name != "catalog.py":
            found[path.name] = names
    assert found == {}


def test_the_roles_distcc_port_is_kprovs():
    from provision import calibration as cal

    internal = yaml.safe_load((role_dir() / "vars" / "main.yml").read_text())
    assert internal["__kbuild_host_distcc_port"] == cal.DISTCC_PORT
    handlers = (role_dir() / "handlers" / "main.yml").read_text()
    assert "3632" not in handlers and "__kbuild_host_distcc_port" in handlers


# --------------------------------------------------------------------------- the role's modules
#
# Each module's DOCUMENTATION is the contract of its argument_spec, as meta/argument_specs.yml is
# the role's: ansible-doc shows it to the users of the collection, and validate-modules compares
# the two only when ansible-test runs (tests/test_collection_sanity.py). Here the argument spec is
# taken from the module itself, by running its main() with a stand-in for AnsibleModule.

MODULES = sorted(p.stem for p in (role_dir() / "library").glob("*.py"))
#: Ansible's common return values: every module may return them without documenting them.
COMMON_RETURNS = {"changed", "failed", "msg", "rc", "stderr"}
#: What a doc says when it says nothing (Ansible's own defaults for an option).
DOC_DEFAULTS = {"type": "str", "required": False, "default": None, "elements": None, "choices": None}


class _Done(Exception):
    """Raised by the stand-in AnsibleModule: what the module passed to it or returned."""

    def __init__(self, kind: str, values: dict) -> None:
        super().__init__(kind)
        self.kind, self.values = kind, values


class _SpecOnly:
    """Records AnsibleModule's arguments and stops the module there."""

    def __init__(self, **kwargs) -> None:
        raise _Done("spec", kwargs)


class _Run:
    """Just enough of AnsibleModule to run a read-only module here: parameters from their defaults
    and ``params``, no tool found on PATH, exit_json/fail_json raised as _Done."""

    params_given: ClassVar[dict] = {}

    def __init__(self, argument_spec: dict, **_kwargs) -> None:
        self.params = {name: opt.get("default") for name, opt in argument_spec.items()}
        self.params.update(self.params_given)
        self.check_mode = False

    def get_bin_path(self, _name, *_args, **_kwargs):
        return None

    def run_command(self, *args, **kwargs):
        raise AssertionError(f"the module ran a command: {args}")

    def exit_json(self, **kwargs):
        raise _Done("exit", kwargs)

    def fail_json(self, **kwargs):
        raise _Done("fail", kwargs)


def _load_module(name: str, monkeypatch, stand_in: type):
    """The role's module ``name`` loaded from its file, its AnsibleModule replaced by ``stand_in``
    and its module_utils imported from the role (as Ansible packs them for a managed host)."""
    from ansible.module_utils import basic

    for path in sorted((role_dir() / "module_utils").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"ansible.module_utils.{path.stem}", path)
        utils = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(utils)
        monkeypatch.setitem(sys.modules, spec.name, utils)
    monkeypatch.setattr(basic, "AnsibleModule", stand_in)
    spec = importlib.util.spec_from_file_location(f"kprov_contract_{name}", role_dir() / "library" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_main(module) -> _Done:
    with pytest.raises(_Done) as done:
        module.main()
    return done.value


def _doc(module, part: str):
    return yaml.safe_load(getattr(module, part))


@pytest.mark.parametrize("name", MODULES)
def test_each_modules_documentation_is_its_argument_spec(name, monkeypatch):
    module = _load_module(name, monkeypatch, _SpecOnly)
    called = _run_main(module).values
    spec = called["argument_spec"]
    doc = _doc(module, "DOCUMENTATION")
    assert doc["module"] == name
    documented = doc.get("options") or {}
    assert set(documented) == set(spec), f"{name}: documented options differ from the argument_spec"
    for option, opt in spec.items():
        said = {key: documented[option].get(key, default) for key, default in DOC_DEFAULTS.items()}
        real = {key: opt.get(key, default) for key, default in DOC_DEFAULTS.items()}
        assert said == real, f"{name}: option {option}"
        assert documented[option].get("description"), f"{name}: option {option} has no description"
    check_mode = doc["attributes"]["check_mode"]["support"]
    assert (check_mode in ("full", "partial")) == bool(called.get("supports_check_mode")), name


@pytest.mark.parametrize("name", MODULES)
def test_each_modules_examples_use_its_documented_options(name, monkeypatch):
    module = _load_module(name, monkeypatch, _SpecOnly)
    options = _doc(module, "DOCUMENTATION").get("options") or {}
    required = {option for option, opt in options.items() if opt.get("required")}
    uses = [task[key] for task in _doc(module, "EXAMPLES") for key in (name, f"kprov.kbuild.{name}") if key in task]
    assert uses, f"{name}: no example runs the module"
    for args in uses:
        assert isinstance(args, dict), f"{name}: an example gives the module {args!r}, not options"
        assert set(args) <= set(options), f"{name}: an example uses {set(args) - set(options)}"
        assert required <= set(args), f"{name}: an example lacks {required - set(args)}"


def _returned_keys(source: str) -> set[str]:
    """The result keys a module's source can return: the keywords of its exit_json/fail_json calls
    and, for a dict they take as ``**name``, the keywords of ``name = dict(...)`` and the keys of
    ``name["key"] = ...``."""
    tree = ast.parse(source)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in ("exit_json", "fail_json")]
    keys = {kw.arg for call in calls for kw in call.keywords if kw.arg}
    splat = {kw.value.id for call in calls for kw in call.keywords if kw.arg is None and isinstance(kw.value, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) in splat for t in node.targets):
            if isinstance(node.value, ast.Call) and getattr(node.value.func, "id", None) == "dict":
                keys.update(kw.arg for kw in node.value.keywords if kw.arg)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and getattr(node.value, "id", None) in splat:
            assert isinstance(node.slice, ast.Constant), f"line {node.lineno}: a result key that is not a constant"
            keys.add(node.slice.value)
    return keys


@pytest.mark.parametrize("name", MODULES)
def test_each_modules_return_documents_what_it_returns(name, monkeypatch):
    module = _load_module(name, monkeypatch, _SpecOnly)
    documented = set(_doc(module, "RETURN"))
    returned = _returned_keys((role_dir() / "library" / f"{name}.py").read_text())
    assert returned - COMMON_RETURNS == documented - COMMON_RETURNS, name


def _undocumented(value, doc: dict, where: str) -> list[str]:
    """Keys of ``value`` (and of the dicts in it) that ``doc``'s ``contains`` does not name, and the
    other way round, for every documented dict and list of dicts."""
    if "contains" not in doc or value is None:
        return []
    items = value if isinstance(value, list) else [value]
    problems = []
    for item in items:
        if set(item) != set(doc["contains"]):
            problems.append(f"{where}: returned {sorted(item)}, documented {sorted(doc['contains'])}")
            continue
        for key, sub in doc["contains"].items():
            problems += _undocumented(item[key], sub, f"{where}.{key}")
    return problems


def test_the_probe_modules_return_documents_every_field_of_a_real_probe(monkeypatch):
    """kbuild_host_probe run on this host (the tools of its toolchain option taken as absent)."""
    module = _load_module("kbuild_host_probe", monkeypatch, _Run)
    done = _run_main(module)
    assert done.kind == "exit", done.values
    doc = _doc(module, "RETURN")
    assert _undocumented(done.values["probe"], doc["probe"], "probe") == []
    assert set(done.values["probe"]["toolchain"]) == {tool for tool, _ in module.TOOLS}


def test_the_paths_modules_return_documents_every_field(monkeypatch, tmp_path):
    (tmp_path / "record.json").write_text('{"backend": "redis"}')
    monkeypatch.setattr(_Run, "params_given", {"paths": [str(tmp_path / "new")], "records": [str(tmp_path / "record.json")],
                                               "kprov_files": {str(tmp_path): "0700"}})
    module = _load_module("kbuild_host_paths", monkeypatch, _Run)
    done = _run_main(module)
    assert done.kind == "exit", done.values
    assert set(done.values) - COMMON_RETURNS == set(_doc(module, "RETURN"))
