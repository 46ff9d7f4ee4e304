"""Rendering: every fixture's plan renders through the StrictUndefined templates."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from provision import render
from provision.catalog import load_catalog
from provision.model import HostFacts, Goals
from provision.planner import plan

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.json"))


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
    assert yaml.safe_load(render.render_yaml(p.to_role_vars()))["kbuild_host_plan"]["jobs"] == p.to_dict()["jobs"]


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
