"""The role contract is one list: meta/argument_specs.yml, and everything else tested against it.

The planned variables are the options of argument_specs that have no default (the planner gives
them), other than ``kbuild_host_plan`` (the plan itself) and ``kbuild_host_farm_address`` (an
inventory setting). ``Plan.to_role_vars()``, the role's ``__kbuild_host_planned_names``, its
defaults (each planned variable read from the role's own plan) and Molecule's explicit-variables
path must name exactly those, with the types argument_specs declares.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from provision.catalog import load_catalog
from provision.model import Goals, HostFacts
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
