"""Produce every golden output in this process: ``kprov`` through its application class for one
host, the fleet functions for an inventory. Shared by ``regen.py`` and ``tests/test_golden.py``."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import cases  # noqa: E402
import hosts  # noqa: E402

from provision.fleet.plan import plan_fleet, plan_inventory
from provision.fleet.table import fleet_json, render_fleet

OUT = HERE / "out"
FIXTURES = TESTS / "fixtures"


def host_file(host: str, scratch: Path) -> Path:
    """The facts file of ``host``: a suite fixture, or a synthetic host written to ``scratch``."""
    if host in cases.FIXTURE_HOSTS:
        return FIXTURES / f"{host}.json"
    path = scratch / f"{host}.json"
    if not path.exists():
        path.write_text(json.dumps(hosts.synthetic()[host], indent=2))
    return path


def run_kprov(argv: list[str]) -> str:
    """stdout, then the exit code and stderr when either says something."""
    from provision.cli.app import Kprov

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        _, rc = Kprov.run(["kprov", *argv], exit=False)
    text = out.getvalue()
    if rc or err.getvalue():
        text += f"--- exit {rc}\n{err.getvalue()}"
    return text


def single_outputs(scratch: Path):
    """(file name, text) for every single-host case and output."""
    for host, goals in cases.CASES:
        facts = str(host_file(host, scratch))
        for kind, command in cases.OUTPUTS.items():
            yield f"{host}__{goals}.{kind}", run_kprov([*command, "--facts", facts, *cases.GOALS[goals]])


def fleet_outputs(scratch: Path):
    """(file name, text) for the fleets: a distcc farm planned from gathered facts (as ``kprov
    plan -i`` plans an inventory), and a shared compile cache with its store."""
    from test_fleet import PARITY_GROUPS, parity_hosts

    from provision.facts.catalog import load_catalog
    from provision.model.facts import HostFacts
    from provision.model.goals import Goals

    catalog = load_catalog()
    for name, goals in (("farm", Goals()), ("farm-cli-goals", Goals(zram=True, farm_allow_subnets=True))):
        plans = plan_inventory(parity_hosts(), PARITY_GROUPS, goals, catalog)
        yield f"fleet-{name}.txt", render_fleet(plans, PARITY_GROUPS)
        yield f"fleet-{name}.json", json.dumps(fleet_json(plans), indent=2, sort_keys=True) + "\n"

    groups = {"all": ["store1", "ci1", "laptop1", "far1", "pi1"], "ccache_store": ["store1"],
              "ccache_writers": ["ci1"], "distcc_servers": ["store1"], "distcc_clients": ["ci1", "pi1"]}
    shapes = {"store1": ("workstation-64c-256g", "10.89.7.5"), "ci1": ("laptop-8c-16g", "10.89.7.21"),
              "laptop1": ("laptop-8c-16g", "10.89.7.22"), "far1": ("laptop-8c-16g", None),
              "pi1": ("rpi4-4g", "10.89.7.30")}
    facts = {}
    for name, (fixture, address) in shapes.items():
        base = HostFacts.from_dict(json.loads((FIXTURES / f"{fixture}.json").read_text()))
        facts[name] = dataclasses.replace(base, hostname=name, default_ipv4=address)
    secrets = scratch / "kprov-secrets" / "ccache"
    plans = plan_fleet(facts, groups, Goals(), catalog, cache_secrets_dir=str(secrets))
    marker = str(secrets)
    yield "fleet-cache.txt", render_fleet(plans, groups).replace(marker, "SECRETS")
    yield "fleet-cache.json", (json.dumps(fleet_json(plans), indent=2, sort_keys=True) + "\n").replace(
        marker, "SECRETS")


def all_outputs():
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        yield from single_outputs(scratch)
        yield from fleet_outputs(scratch)
