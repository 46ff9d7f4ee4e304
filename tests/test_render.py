"""Rendering: every fixture's plan renders through the StrictUndefined templates."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from provision import render
from provision.errors import UserError
from provision.facts.catalog import load_catalog
from provision.model.facts import HostFacts
from provision.model.goals import Goals
from provision.planner import plan

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.json"))


class _RoleVarsLoader(yaml.SafeLoader):
    """The role-variable YAML tags strings ``!unsafe`` (Ansible's loader reads them as text)."""


_RoleVarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_role_vars(text: str):
    return yaml.load(text, Loader=_RoleVarsLoader)  # noqa: S506 - a SafeLoader with one more tag


def plan_for(path: Path, **goals):
    facts = HostFacts.from_dict(json.loads(path.read_text()))
    return plan(facts, Goals(**goals), load_catalog())


def test_human_bytes_uses_binary_units():
    assert render.human_bytes(3 * 2**30) == "3.0 GiB"
    assert render.human_bytes(1536 * 2**20) == "1.5 GiB"
    assert render.human_bytes(512 * 2**20) == "512 MiB"
    assert render.human_bytes(None) == "-"


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_every_fixture_renders_all_outputs(path):
    p = plan_for(path)
    report = render.render_report(p)
    assert f"make -j{p.jobs.value} " in report
    assert p.config.make_command in report
    assert p.jobs.reason in report
    for warning in p.warnings:
        assert warning in report
    assert json.loads(render.render_json(p.to_dict()))["jobs"]["value"] == p.jobs.value
    assert load_role_vars(render.render_yaml(p.to_role_vars()))["kbuild_host_plan"]["jobs"] == p.to_dict()["jobs"]


def test_env_is_shell_safe(tmp_path):
    p = plan_for(FIXTURES[0])
    tricky = {"KPROV_TEST": "it's a \"quoted\" $value; rm -rf /"}
    text = render.render_template("env.sh.j2", plan=p, env={**p.env, **tricky})
    script = tmp_path / "env.sh"
    script.write_text(text + 'printf %s "$KPROV_TEST"\n')
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True).stdout
    assert out == tricky["KPROV_TEST"]


def test_disabled_areas_say_off_and_why():
    p = plan_for(next(f for f in FIXTURES if "workstation" in f.name), zram=False, ccache=False)
    report = render.render_report(p)
    zram_section = report.split("zram swap")[1].split("ccache")[0]
    assert "off" in zram_section and "why:" in zram_section


def test_escaped_escapes_what_acts_on_a_terminal_and_keeps_the_rest():
    assert render.escaped("plain host-1.lab") == "plain host-1.lab"
    assert render.escaped("h\u00f6st \u0663") == "h\u00f6st \u0663"  # printable non-ASCII stays
    assert render.escaped("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert render.escaped("\x1b[2J\x07\x7f\x9b") == "\\x1b[2J\\x07\\x7f\\x9b"
    assert render.escaped("left\u202eright\u200b\u2028") == "left\\u202eright\\u200b\\u2028"
    assert render.escaped("bad\udcffbyte") == "bad\\udcffbyte"  # what os.fsdecode makes of a non-UTF-8 byte


def test_every_template_value_passes_through_escaped():
    p = plan_for(FIXTURES[0])
    hostile = dataclasses.replace(
        p,
        host=dataclasses.replace(p.host, hostname="a\x1b]0;t\x07", distro="deb\nian", arch="x86\r64"),
        warnings=("w\x1b[31m",),
    )
    report = render.render_report(hostile)
    assert "\x1b" not in report and "\x07" not in report and "\r" not in report
    assert "kprov plan for a\\x1b]0;t\\x07: deb\\nian" in report
    assert all(line.isprintable() for line in report.splitlines())


def test_env_prints_nothing_foreign_outside_quotes():
    p = plan_for(FIXTURES[0])
    hostile = dataclasses.replace(p, host=dataclasses.replace(p.host, hostname="x\nrm -rf ~\n"))
    text = render.render_env(hostile)
    assert "rm -rf" not in text
    assert all(line.startswith(("#", "export ")) for line in text.splitlines())


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LD_PRELOAD": "/tmp/x.so"}, "LD_PRELOAD"),
        ({"A B": "1"}, "not a shell variable name"),
        ({"MAKEFLAGS": "-j8\nid"}, "control characters"),
        ({"CCACHE_DIR": "/tmp/$(id)"}, "CCACHE_DIR"),
    ],
)
def test_env_refuses_names_and_values_a_shell_would_misread(env, message):
    p = plan_for(FIXTURES[0])
    with pytest.raises(UserError) as err:
        render.render_env(dataclasses.replace(p, env={**p.env, **env}))
    assert message in str(err.value)
