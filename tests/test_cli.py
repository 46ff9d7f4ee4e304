"""The kprov command line, through the plumbum app and through the installed entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provision.cli.app import Kprov

FIXTURES = Path(__file__).parent / "fixtures"
KPROV = [sys.executable, "-m", "provision.cli"]


def fixture(name: str) -> str:
    return str(FIXTURES / name)


def kprov(*args: str, env: dict | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, *KPROV, *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )


def run_app(capsys, *args: str) -> tuple[int, str, str]:
    _, rc = Kprov.run(["kprov", *args], exit=False)
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------------- plan outputs


def test_plan_json_has_the_contract_fields(capsys):
    rc, out, err = run_app(capsys, "plan", "--facts", fixture("laptop-8c-16g.json"), "--json")
    assert rc == 0, err
    plan = json.loads(out)
    assert plan["schema"] == 1
    assert plan["host"]["usable_cpus"] == 8
    assert plan["host"]["memory_bytes"] == 16 * 2**30
    assert 1 <= plan["jobs"]["value"] <= 8
    assert plan["jobs"]["load"] is None  # a load limit only when asked (--load N)
    assert plan["jobs"]["reason"]
    for area in ("zram", "ccache", "distcc"):
        assert isinstance(plan[area]["enabled"], bool)
    assert "algorithm" in plan["zram"] and "percent" in plan["zram"]
    assert plan["ccache"]["max_size_bytes"] > 0
    assert plan["config"]["target"]
    assert isinstance(plan["packages"], list) and "flex" in plan["packages"]
    assert isinstance(plan["warnings"], list)


def test_container_limits_are_honoured_not_the_host_cores(capsys):
    rc, out, _ = run_app(capsys, "plan", "--facts", fixture("container-4c-4g-on-32c.json"), "--json")
    assert rc == 0
    plan = json.loads(out)
    assert plan["host"]["usable_cpus"] == 4
    assert plan["host"]["memory_bytes"] == 4 * 2**30
    assert plan["jobs"]["value"] <= 4


def test_plan_text_report_explains_every_section(capsys):
    rc, out, _ = run_app(capsys, "plan", "--facts", fixture("vps-1cpu-2g.json"))
    assert rc == 0
    for heading in ("Jobs", "zram swap", "ccache", "distcc", "Kernel config", "Build deps", "Build with:"):
        assert heading in out
    assert "make -j1" in out
    assert out.count("why:") >= 4


def test_plan_yaml_is_role_variables(capsys):
    rc, out, _ = run_app(capsys, "plan", "--facts", fixture("rpi4-4g.json"), "--yaml")
    assert rc == 0
    from ansible.parsing.yaml.loader import AnsibleLoader

    data = yaml.load(out, Loader=AnsibleLoader)  # noqa: S506 - Ansible's own loader, as host_vars are read
    assert data["kbuild_host_zram_algorithm"] in data["kbuild_host_plan"]["host"]["zram_compressors"]
    assert all(key.startswith("kbuild_host_") for key in data)
    assert data["kbuild_host_plan"]["schema"] == 1


def test_overrides_are_reported(capsys):
    rc, out, _ = run_app(
        capsys, "plan", "--facts", fixture("workstation-64c-256g.json"), "--json",
        "--jobs", "3", "--zram", "--zram-percent", "25", "--ccache-size", "3G",
    )
    assert rc == 0
    plan = json.loads(out)
    assert plan["jobs"]["value"] == 3 and plan["jobs"]["overridden"]
    assert plan["zram"]["enabled"] and plan["zram"]["percent"] == 25
    assert plan["ccache"]["max_size_bytes"] == 3 * 2**30
    assert {"jobs", "zram", "zram_percent", "ccache_size"} <= set(plan["overrides"])


def test_distcc_server_and_client_switches(capsys):
    rc, out, err = run_app(
        capsys, "plan", "--facts", fixture("laptop-8c-16g.json"), "--json",
        "--distcc-server", "--allow", "10.1.2.0/24", "--listen", "10.1.2.5",
        "--distcc-hosts", "build1/8", "--distcc-hosts", "build2:3633/4",
        "--host-entry", "10.1.2.6=build1,build1.lab",
    )
    assert rc == 0, err
    d = json.loads(out)["distcc"]
    assert d["enabled"] and d["server"] and d["client"]
    assert d["allow"] == ["10.1.2.0/24"] and d["listen"] == "10.1.2.5"
    assert any(h.startswith("build1") and h.endswith("/8") for h in d["hosts"])
    assert d["total_jobs"] > 8
    assert d["host_entries"] == [{"address": "10.1.2.6", "names": ["build1", "build1.lab"]}]


def test_env_exports_evaluate_in_a_shell(tmp_path):
    result = kprov("env", "--facts", fixture("laptop-8c-16g.json"))
    assert result.returncode == 0, result.stderr
    script = tmp_path / "env.sh"
    script.write_text(result.stdout + 'printf "%s|%s" "$MAKEFLAGS" "$KBUILD_BUILD_TIMESTAMP"\n')
    shown = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True).stdout
    makeflags, timestamp = shown.split("|")
    assert makeflags.startswith("-j")
    assert timestamp  # a fixed timestamp makes ccache hit across rebuilds


def test_facts_json_round_trips_into_plan(tmp_path):
    facts = kprov("facts", "--json")
    assert facts.returncode == 0, facts.stderr
    path = tmp_path / "host.json"
    path.write_text(facts.stdout)
    local = kprov("plan", "--json")
    from_file = kprov("plan", "--json", "--facts", str(path))
    assert local.returncode == 0 and from_file.returncode == 0
    a, b = json.loads(local.stdout), json.loads(from_file.stdout)
    # two reads of a live host: the numbers agree, the reasons may quote a different MemAvailable
    assert (a["jobs"]["value"], a["jobs"]["load"]) == (b["jobs"]["value"], b["jobs"]["load"])
    assert a["zram"]["enabled"] == b["zram"]["enabled"] and a["zram"]["algorithm"] == b["zram"]["algorithm"]
    assert a["host"] == b["host"]


# --------------------------------------------------------------------------- this host, for real


def test_plan_on_this_host_offers_only_what_the_kernel_has():
    result = kprov("plan", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    offered = plan["host"]["zram_compressors"]
    if plan["zram"]["enabled"]:
        assert plan["zram"]["algorithm"] in offered
    assert plan["host"]["usable_cpus"] == len(os.sched_getaffinity(0))


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_plan_under_taskset_one_cpu_gives_one_job():
    result = kprov("plan", "--json", prefix=("taskset", "-c", "0"))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["host"]["usable_cpus"] == 1
    assert plan["jobs"]["value"] == 1


def test_plan_does_not_import_ansible_runner():
    code = (
        "import sys; from provision.cli import Kprov; import io, contextlib\n"
        "with contextlib.redirect_stdout(io.StringIO()): Kprov.run(['kprov', 'plan', '--json'], exit=False)\n"
        "print('ansible_runner' in sys.modules, 'ansible' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --------------------------------------------------------------------------- bad input


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD_INPUT = {
    "unknown target": (["--target", "bogusconfig"], "--target"),
    "unknown compiler": (["--compiler", "icc"], "--compiler"),
    "zram percent too high": (["--zram-percent", "201"], "201"),
    "zram percent zero": (["--zram-percent", "0"], "0"),
    "algorithm not offered": (["--zram-algorithm", "zstd"], "zstd"),
    "malformed cidr": (["--distcc-server", "--allow", "10.0.0.300/24", "--listen", "10.0.0.5"], "10.0.0.300/24"),
    "world open": (["--distcc-server", "--allow", "0.0.0.0/0", "--listen", "10.0.0.5"], "0.0.0.0/0"),
    "server without allow": (["--distcc-server", "--listen", "10.0.0.5"], "allow"),
    "malformed distcc host": (["--distcc-hosts", "build1/zero"], "build1/zero"),
    "bad ccache size": (["--ccache-size", "lots"], "lots"),
    "contradicting flags": (["--zram", "--no-zram"], "--zram"),
    "bad jobs": (["--jobs", "0"], "--jobs"),
    "bad host entry": (["--host-entry", "nonsense"], "nonsense"),
    "unknown switch": (["--frobnicate"], "--frobnicate"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(case):
    args, needle = BAD_INPUT[case]
    result = kprov("plan", "--facts", fixture("debian12-2c-24g.json"), *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kprov")
    assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_facts_files(tmp_path):
    cases = {
        "missing": str(tmp_path / "nope.json"),
        "not json": write(tmp_path, "bad.json", "{not json"),
        "wrong shape": write(tmp_path, "shape.json", json.dumps({"hostname": "x", "cpu": 4})),
        "wrong schema": write(tmp_path, "schema.json", json.dumps({"schema": 99})),
    }
    for what, path in cases.items():
        result = kprov("plan", "--facts", path)
        assert result.returncode == 2, what
        assert len(result.stderr.strip().splitlines()) == 1, (what, result.stderr)
        assert "Traceback" not in result.stderr


def test_tree_that_is_not_a_kernel_tree(tmp_path):
    (tmp_path / "Makefile").write_text("all:\n\ttrue\n")
    result = kprov("plan", "--tree", str(tmp_path))
    assert result.returncode == 2
    assert "--tree" in result.stderr or str(tmp_path) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_inventory_is_bad_input(tmp_path):
    result = kprov("plan", "-i", str(tmp_path / "missing.ini"))
    assert result.returncode == 2
    assert "missing.ini" in result.stderr


def test_no_subcommand_is_a_usage_error_on_stderr():
    result = kprov()
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kprov: ") and "kprov plan" in lines[0]


def test_help_is_on_stdout_and_succeeds():
    result = kprov("--help")
    assert result.returncode == 0
    assert "plan" in result.stdout and result.stderr == ""


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--jobs", "\u0663"], "--jobs: '\u0663' is not valid (expected a whole number in 1..4096)"),
        (["--zram-percent", "12a"], "--zram-percent: '12a' is not valid (expected a whole number)"),
        (["--builds-to-keep", "101"], "--builds-to-keep: '101' is not valid (expected a whole number in 1..100)"),
        (["--ccache-size", " "], "--ccache-size: ' ' is not valid (expected a size such as 8G)"),
        (["--tree", "/usr/src/linux"], "--tree reads a tree on this host"),
    ],
)
def test_switch_values_are_checked_before_any_fact_is_read(capsys, args, needle):
    rc, out, err = run_app(capsys, "plan", "--facts", fixture("laptop-8c-16g.json"), *args)
    assert rc == 2 and out == ""
    assert needle in err


def test_whole_numbers_are_ascii_digits_in_range():
    from provision.cli.app import Whole

    jobs = Whole(1, 4096)
    assert jobs("8") == 8 and jobs(" 4096 ") == 4096
    for text in ("0", "4097", "\u0663", "\uff18", "8.0", "-1", "+8", "1_0", "9" * 400, ""):
        with pytest.raises(ValueError):
            jobs(text)


def test_an_inventory_that_is_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "inventory"
    os.mkfifo(fifo)
    for command in (["plan"], ["apply", "--check"]):
        rc, _, err = run_app(capsys, *command, "-i", str(fifo))
        assert rc == 2, err
        assert "not a regular file or a directory" in err

