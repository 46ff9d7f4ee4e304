"""provision.apply.runner: real ansible-runner runs of throwaway playbooks, and of the role in check mode.

Nothing here mocks ansible_runner: every run starts ansible-playbook against localhost (local
connection) or an unreachable loopback port, in a private data dir under a temporary
$XDG_STATE_HOME.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from provision.apply import inventory, progress
from provision.apply.ansible_env import UNSAFE_KEY, ansible_tool, mark_unsafe, inventory_envvars, local_inventory
from provision.apply.checks import check_free_space
from provision.apply import runner
from provision.apply.runner import run_playbook
from provision.apply.converge import apply_failure
from provision.apply.converge import role_tag
from provision.apply.converge import apply
from provision.apply.runs import ApplyResult
from provision.apply.runs import RunOutcome
from provision.apply.runs import RUNS_KEPT, host_stats
from provision.errors import ApplyFailed, EnvironmentProblem, UserError
from provision.model.goals import Goals, goals_extravars
from provision.resources import playbooks_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    """Every run's private data dir goes under the test's own XDG state dir."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def project(tmp_path):
    """A playbook dir shaped like kprov's: site.yml running role r1, whose tasks/files.yml does work."""
    pdir = tmp_path / "project"
    target = tmp_path / "target"
    write(
        pdir / "site.yml",
        """
        - name: Converge the test host
          hosts: all
          gather_facts: false
          roles:
            - r1
        """,
    )
    write(
        pdir / "roles/r1/tasks/main.yml",
        """
        - name: Include the files area
          ansible.builtin.include_tasks: files.yml
        """,
    )
    write(
        pdir / "roles/r1/tasks/files.yml",
        f"""
        - name: Write the marker
          ansible.builtin.copy:
            dest: {target}/marker.txt
            content: "{{{{ marker_text | default('hello') }}}}\\n"
            mode: "0644"
        - name: Record the variables kprov passed
          ansible.builtin.copy:
            dest: {target}/vars.json
            content: "{{{{ {{'goals': kbuild_host_goals | default(None), 'zram': kbuild_host_zram_enabled | default(None)}} | to_json }}}}"
            mode: "0644"
        - name: Never on this host
          ansible.builtin.debug:
            msg: skipped
          when: false
        - name: Tolerated failure
          ansible.builtin.command: /bin/false
          changed_when: false
          ignore_errors: true
          when: tolerate_failure | default(false) | bool
        - name: Stop here when asked
          ansible.builtin.fail:
            msg: "asked to fail"
          when: must_fail | default(false) | bool
        """,
    )
    target.mkdir()
    return pdir, target


COUNTER = re.compile(r"^\[\d+\] ")


def run(pdir: Path, *, raw: bool = False, **kwargs) -> tuple[RunOutcome, list[str]]:
    """Run the throwaway playbook with every task's line shown (--verbose); counters stripped."""
    out = io.StringIO()
    kwargs.setdefault("inventory", None)
    kwargs.setdefault("verbosity", 1)
    outcome = run_playbook("site.yml", out=out, project_dir=pdir, **kwargs)
    lines = out.getvalue().splitlines()
    return outcome, lines if raw else [COUNTER.sub("", line) for line in lines]


RECAP = re.compile(r"^localhost : ok=(\d+) changed=(\d+) unreachable=0 failed=(\d+) skipped=(\d+) rescued=0 ignored=(\d+)$")


# --------------------------------------------------------------------------- progress lines, recap


def test_one_line_per_task_and_recap_then_idempotent_rerun(project):
    pdir, target = project
    outcome, lines = run(pdir, extravars={"marker_text": "first"})
    assert "[changed] localhost | files | Write the marker" in lines
    assert "[changed] localhost | files | Record the variables kprov passed" in lines
    assert "[skipped] localhost | files | Never on this host" in lines
    assert not any("Include the files area" in ln for ln in lines), "includes are not task results"
    assert lines[-2] == "PLAY RECAP"
    assert lines[-1] == "localhost : ok=3 changed=2 unreachable=0 failed=0 skipped=3 rescued=0 ignored=0"
    assert (target / "marker.txt").read_text() == "first\n"
    r = outcome.result
    assert r.ok and r.rc == 0 and r.status == "successful"
    assert r.stats == {"localhost": {"ok": 3, "changed": 2, "unreachable": 0, "failed": 0, "skipped": 3,
                                     "rescued": 0, "ignored": 0}}

    again, lines = run(pdir, extravars={"marker_text": "first"})
    assert "[ok] localhost | files | Write the marker" in lines
    assert again.result.total("changed") == 0


def test_by_default_only_what_changed_failed_or_speaks_is_shown_numbered_by_task(project):
    pdir, _ = project
    outcome, lines = run(pdir, raw=True, verbosity=0, extravars={"marker_text": "quiet"})
    tasks = [line for line in lines if line.startswith("[")]
    assert tasks == [
        "[1] [changed] localhost | files | Write the marker",
        "[2] [changed] localhost | files | Record the variables kprov passed",
    ], lines
    # The skipped tasks are not shown but still counted in the recap.
    assert lines[-1] == "localhost : ok=3 changed=2 unreachable=0 failed=0 skipped=3 rescued=0 ignored=0"
    _, again = run(pdir, raw=True, verbosity=0, extravars={"marker_text": "quiet"})
    assert not [line for line in again if line.startswith("[")], "a converged re-run prints no task line"
    _, failed = run(pdir, raw=True, verbosity=0, extravars={"marker_text": "quiet", "must_fail": True})
    assert any(re.match(r"^\[\d+\] \[failed\] localhost \| files \| Stop here when asked: asked to fail$", line)
               for line in failed), failed


def test_a_role_note_is_shown_on_an_ok_task(tmp_path):
    pdir = tmp_path / "project"
    write(pdir / "site.yml", """
        - name: Notes
          hosts: all
          gather_facts: false
          tasks:
            - name: Say something
              ansible.builtin.debug:
                msg: "kbuild_host: zram0 is the user's; left as it is"
            - name: Say nothing useful
              ansible.builtin.debug:
                msg: "plain debug"
    """)
    _, lines = run(pdir, raw=True, verbosity=0)
    assert [line for line in lines if line.startswith("[")] == [
        "[1] [ok] localhost | site | Say something: zram0 is the user's; left as it is",
    ]


def test_check_mode_changes_nothing_and_diff_is_printed_under_the_task(project):
    pdir, target = project
    outcome, lines = run(pdir, extravars={"marker_text": "checked"}, check=True, diff=True)
    assert not (target / "marker.txt").exists()
    i = lines.index("[changed] localhost | files | Write the marker")
    diff = lines[i + 1 : i + 5]
    assert all(ln.startswith("    ") for ln in diff)
    assert "    +checked" in diff
    assert outcome.result.stats["localhost"]["changed"] == 2


def test_extra_vars_are_data_never_templates(project, tmp_path):
    """A plan value that looks like a template reaches the role as text: nothing runs."""
    pdir, target = project
    pwned = tmp_path / "pwned"
    payload = "{{ lookup('ansible.builtin.pipe', 'touch " + str(pwned) + "') }}"
    goals = {"ccache_dir": payload, "host_entries": [{"address": "10.0.0.1", "names": [payload]}]}
    outcome, lines = run(pdir, extravars={"marker_text": payload, "kbuild_host_goals": goals}, check=False)
    assert outcome.result.ok, lines
    assert not pwned.exists(), "a templated extra var ran a command"
    assert (target / "marker.txt").read_text() == payload + "\n"
    recorded = json.loads((target / "vars.json").read_text())
    assert recorded["goals"] == goals


def test_mark_unsafe_marks_every_string_and_keeps_numbers_and_keys():
    marked = mark_unsafe({"a": "x", "n": 3, "b": True, "l": ["y", 1, {"k": "z"}], "none": None})
    u = UNSAFE_KEY
    assert marked == {"a": {u: "x"}, "n": 3, "b": True, "l": [{u: "y"}, 1, {"k": {u: "z"}}], "none": None}


def test_ignored_failure_is_its_own_label_and_counter(project):
    pdir, _ = project
    outcome, lines = run(pdir, extravars={"tolerate_failure": True})
    assert any(ln.startswith("[ignored] localhost | files | Tolerated failure: ") for ln in lines)
    assert outcome.result.ok
    assert outcome.result.stats["localhost"]["ignored"] == 1


def test_tags_and_skip_tags_reach_ansible(project):
    pdir, target = project
    outcome, lines = run(pdir, tags=("nothing-has-this-tag",))
    assert outcome.result.ok
    assert not any(ln.startswith("[changed]") for ln in lines)
    assert not (target / "marker.txt").exists()


def test_private_data_dir_per_run_under_xdg_state(project, state_home):
    pdir, _ = project
    first, _ = run(pdir, extravars={"marker_text": "x"})
    second, _ = run(pdir, extravars={"marker_text": "x"})
    a, b = Path(first.result.artifacts_dir), Path(second.result.artifacts_dir)
    assert a != b
    for art in (a, b):
        run_dir = art.parent
        assert run_dir.parent == state_home / "kprov" / "runs"
        assert re.fullmatch(r"\d{8}T\d{6}Z-%d(-\d+)?" % os.getpid(), run_dir.name)
        assert (art / "stdout").is_file() and (art / "job_events").is_dir()
        assert oct(run_dir.stat().st_mode & 0o777) == "0o700"
        # extravars, inventory and envvars went in as arguments; ansible-runner recorded them
        assert json.loads((run_dir / "env" / "extravars").read_text()) == {"marker_text": {"__ansible_unsafe": "x"}}
        assert "ansible_connection=local" in (run_dir / "inventory" / "hosts").read_text()


def test_old_runs_are_pruned(project, state_home):
    pdir, _ = project
    runs = state_home / "kprov" / "runs"
    runs.mkdir(parents=True)
    for i in range(RUNS_KEPT + 5):
        (runs / f"20000101T0000{i:02d}Z-1").mkdir()
    (runs / "not-a-run").mkdir()
    run(pdir)
    kept = sorted(p.name for p in runs.iterdir())
    assert len([k for k in kept if k.startswith("2000")]) == RUNS_KEPT - 1
    assert "20000101T000000Z-1" not in kept
    assert "not-a-run" in kept


# --------------------------------------------------------------------------- apply()


@pytest.fixture
def kprov_playbooks(project, monkeypatch):
    """Point apply() at the throwaway playbooks instead of kprov's own."""
    pdir, target = project
    monkeypatch.setattr(runner, "playbooks_dir", lambda: pdir)
    return pdir, target


def test_apply_failure_raises_apply_failed_with_host_reason_and_artifacts(kprov_playbooks):
    _, target = kprov_playbooks
    out = io.StringIO()
    with pytest.raises(ApplyFailed) as info:
        apply(role_vars={"must_fail": True}, goals=None, inventory=None, check=True, out=out)
    msg = str(info.value)
    assert info.value.exit_code == 1
    assert msg.startswith("apply failed at 'Stop here when asked': asked to fail (run artifacts: "), msg
    artifacts = Path(msg.rsplit("run artifacts: ", 1)[1].rstrip(")"))
    assert (artifacts / "stdout").is_file() and (artifacts / "rc").read_text().strip() != "0"
    assert "[failed] localhost | files | Stop here when asked: asked to fail" in out.getvalue()
    assert "localhost : ok=3 changed=2 unreachable=0 failed=1" in out.getvalue()


@pytest.mark.skipif(os.geteuid() != 0, reason="a real local apply needs root")
def test_apply_local_passes_role_vars_as_extravars(kprov_playbooks):
    _, target = kprov_playbooks
    result = apply(role_vars={"kbuild_host_zram_enabled": True, "marker_text": "applied"},
                          goals=Goals(jobs=3), inventory=None, out=io.StringIO())
    assert result.ok and result.total("changed") == 2
    assert (target / "marker.txt").read_text() == "applied\n"
    assert json.loads((target / "vars.json").read_text()) == {"goals": None, "zram": True}


def local_inventory_file(tmp_path: Path) -> Path:
    return write(tmp_path / "inv.ini", f"""
        [builders]
        b1 ansible_connection=local ansible_python_interpreter={sys.executable}
        """)


def test_apply_inventory_passes_only_the_goals_the_user_set(kprov_playbooks, tmp_path):
    _, target = kprov_playbooks
    inv = local_inventory_file(tmp_path)
    out = io.StringIO()
    result = apply(role_vars=None, goals=Goals(zram=True, jobs=3), inventory=str(inv),
                          limit="builders", check=False, out=out)
    assert result.stats["b1"]["changed"] == 2
    assert json.loads((target / "vars.json").read_text()) == {"goals": {"zram": True, "jobs": 3}, "zram": None}
    assert "[changed] b1 | files | Write the marker" in out.getvalue()


def test_apply_inventory_without_goals_leaves_inventory_goals_alone(kprov_playbooks, tmp_path):
    _, target = kprov_playbooks
    inv = write(tmp_path / "inv.ini", f"""
        b1 ansible_connection=local ansible_python_interpreter={sys.executable} kbuild_host_goals='{{"jobs": 7}}'
        """)
    apply(role_vars=None, goals=Goals(), inventory=str(inv), out=io.StringIO())
    assert json.loads((target / "vars.json").read_text())["goals"] == {"jobs": 7}


def test_unreachable_host_is_apply_failed_naming_it(kprov_playbooks, tmp_path):
    port = free_port()
    inv = write(tmp_path / "inv.ini", f"""
        ghost ansible_host=127.0.0.1 ansible_port={port} ansible_connection=ssh ansible_user=nobody
        """)
    out = io.StringIO()
    with pytest.raises(ApplyFailed) as info:
        apply(role_vars=None, goals=None, inventory=str(inv), out=out)
    assert "apply failed: ghost is unreachable: " in str(info.value)
    assert "run artifacts: " in str(info.value)
    assert "[unreachable] ghost |" in out.getvalue()
    assert re.search(r"^ghost : ok=\d+ changed=0 unreachable=1 failed=0 ", out.getvalue(), re.M)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- bad input: exit 2


def test_missing_inventory_is_user_error(tmp_path, state_home):
    with pytest.raises(UserError) as info:
        apply(role_vars=None, goals=None, inventory=str(tmp_path / "nope.ini"), out=io.StringIO())
    assert str(info.value) == f"inventory file not found: {tmp_path / 'nope.ini'}"
    assert info.value.exit_code == 2
    assert not state_home.exists(), "nothing runs, nothing is written"


def test_unparsable_inventory_is_user_error(tmp_path):
    bad = write(tmp_path / "bad.ini", "[web\nhost1 x=\n")
    with pytest.raises(UserError) as info:
        inventory.list_inventory(str(bad))
    assert str(info.value).startswith(f"inventory {bad} could not be parsed: ")
    assert "\n" not in str(info.value)


def test_limit_that_matches_nothing_is_user_error(tmp_path):
    inv = local_inventory_file(tmp_path)
    with pytest.raises(UserError, match="--limit nosuchhost matches no host"):
        apply(role_vars=None, goals=None, inventory=str(inv), limit="nosuchhost", out=io.StringIO())


def test_limit_without_inventory_is_user_error():
    with pytest.raises(UserError, match="--limit needs -i INVENTORY"):
        apply(role_vars={}, goals=None, inventory=None, limit="x", check=True, out=io.StringIO())


def test_missing_ansible_tool_is_environment_problem():
    with pytest.raises(EnvironmentProblem, match="ansible-kprov-nonexistent not found"):
        ansible_tool("ansible-kprov-nonexistent")


NON_ROOT_APPLY = """
import sys
from provision.apply import converge
from provision.errors import KprovError
try:
    converge.apply(role_vars={"kbuild_host_zram_enabled": True}, goals=None, inventory=None, check=CHECK)
except KprovError as exc:
    print(f"kprov: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def run_as_nobody(code: str, state: Path) -> subprocess.CompletedProcess:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run a process as nobody")
    env = {"PATH": "/usr/bin:/bin", "XDG_STATE_HOME": str(state), "HOME": str(state), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        env=env, capture_output=True, text=True, timeout=300, cwd="/",
    )


def test_non_root_apply_is_refused_before_anything_runs(tmp_path):
    state = tmp_path / "nobody-state"
    state.mkdir(mode=0o777)
    state.chmod(0o777)  # nobody could write here: the refusal must come first
    proc = run_as_nobody(NON_ROOT_APPLY.replace("CHECK", "False"), state)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "kprov: kprov apply changes the system: run it as root (sudo kprov apply), or use --check"
    )
    assert list(state.iterdir()) == []


# --------------------------------------------------------------------------- pure helpers


def test_goals_extravars_keeps_only_what_differs_from_the_defaults():
    assert goals_extravars(None) == {}
    assert goals_extravars(Goals()) == {}
    assert goals_extravars(Goals(zram=False, jobs=4, allow=("10.0.0.0/24",))) == {
        "zram": False, "jobs": 4, "allow": ["10.0.0.0/24"]}


def test_host_stats_maps_runner_names_to_recap_names():
    stats = {"ok": {"a": 3}, "changed": {"a": 1}, "dark": {"b": 1}, "failures": {"a": 1},
             "skipped": {}, "processed": {"a": 1, "b": 1}}
    got = host_stats(stats)
    assert got["a"] == {"ok": 3, "changed": 1, "unreachable": 0, "failed": 1, "skipped": 0, "rescued": 0, "ignored": 0}
    assert got["b"]["unreachable"] == 1
    assert progress.recap_line("a", got["a"]) == "a : ok=3 changed=1 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0"


def test_failure_text_is_one_line_with_stderr_and_loop_items():
    assert progress.failure_text({"msg": "Task failed: non-zero return code", "stderr": "x\nE: no such package\n"}) == (
        "non-zero return code: E: no such package")
    looped = {"msg": "One or more items failed", "results": [{"item": "a", "changed": False},
                                                            {"item": "b", "failed": True, "msg": "bad\nthing"}]}
    assert progress.failure_text(looped) == "item b: bad thing"
    assert len(progress.failure_text({"msg": "x" * 5000})) == progress.MESSAGE_MAX_CHARS


def test_format_diff_handles_text_state_and_prepared_diffs():
    text = progress.format_diff([{"before": "a\nb\n", "after": "a\nc\n", "before_header": "/etc/f", "after_header": "/etc/f"}])
    assert text[:2] == ["--- /etc/f", "+++ /etc/f"] and "-b" in text and "+c" in text
    state = progress.format_diff({"before": {"path": "/d", "state": "absent"}, "after": {"path": "/d", "state": "directory"}})
    assert "-state: absent" in state and "+state: directory" in state
    assert progress.format_diff({"prepared": "The following NEW packages will be installed:\n  ccache\n"}) == [
        "The following NEW packages will be installed:", "  ccache"]


def test_area_of_names_the_task_file():
    assert progress.area_of({"task_path": "/r/roles/kbuild_host/tasks/zram.yml:12", "role": "kbuild_host"}) == "zram"
    assert progress.area_of({"task_path": "/r/roles/kbuild_host/tasks/main.yml:3", "role": "kbuild_host"}) == "kbuild_host"
    assert progress.area_of({"task_path": "/r/roles/kbuild_host/handlers/main.yml:3", "role": "kbuild_host"}) == "handlers"
    assert progress.area_of({"task_path": "/r/site.yml:5"}) == "site"


def test_local_inventory_prefers_the_system_python():
    line = local_inventory()
    expected = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    assert line == f"localhost ansible_connection=local ansible_python_interpreter={expected}\n"


def test_user_ansible_cfg_and_host_key_checking_are_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    monkeypatch.delenv("ANSIBLE_HOST_KEY_CHECKING", raising=False)
    (tmp_path / "ansible.cfg").write_text("[defaults]\nhost_key_checking = False\n")
    tmp_path.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANSIBLE_PIPELINING", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ansible.cfg of this machine's
    env = inventory_envvars()
    assert env == {"ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"), "ANSIBLE_HOST_KEY_CHECKING": "False",
                   "ANSIBLE_PIPELINING": "True"}
    (tmp_path / "ansible.cfg").unlink()
    assert inventory_envvars() == {"ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_PIPELINING": "True"}


@pytest.mark.parametrize("cfg", ["[defaults]\npipelining = False\n", "[connection]\npipelining = no\n",
                                 "[defaults]\npipelining = True\n"])
def test_pipelining_is_on_unless_the_user_says_otherwise(tmp_path, monkeypatch, cfg):
    """Whatever the user's ansible.cfg or environment says about pipelining, kprov keeps."""
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    monkeypatch.delenv("ANSIBLE_PIPELINING", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    tmp_path.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ansible.cfg").write_text(cfg)
    assert "ANSIBLE_PIPELINING" not in inventory_envvars()
    (tmp_path / "ansible.cfg").unlink()
    monkeypatch.setenv("ANSIBLE_PIPELINING", "False")
    assert "ANSIBLE_PIPELINING" not in inventory_envvars()


# --------------------------------------------------------------------------- the real role, check mode


def role_ready() -> bool:
    return (playbooks_dir() / "site.yml").is_file() and (playbooks_dir() / "roles/kbuild_host/tasks/main.yml").is_file()


@pytest.mark.skipif(not role_ready(), reason="playbooks/site.yml and the kbuild_host role are not there")
def test_real_role_check_mode_on_localhost_changes_nothing():
    planner = pytest.importorskip("provision.planner")
    from provision.facts.catalog import load_catalog
    from provision.facts.local import gather

    plan = planner.plan(gather(), Goals(), load_catalog())
    before = {p: Path(p).exists() for p in ("/etc/ccache.conf", "/etc/kprov/plan.json", "/etc/profile.d/kprov-kbuild.sh")}
    out = io.StringIO()
    result = apply(role_vars=plan.to_role_vars(), goals=None, inventory=None, check=True, out=out)
    text = out.getvalue()
    assert result.ok, text
    assert re.search(r"^localhost : ok=\d+ changed=\d+ unreachable=0 failed=0", text, re.M)
    assert any(re.match(r"^\[\d+\] \[(ok|changed|skipped)\] localhost \| \w+ \| ", ln) for ln in text.splitlines())
    assert {p: Path(p).exists() for p in before} == before, "check mode wrote files"


@pytest.mark.skipif(not (playbooks_dir() / "roles/kbuild_host/tasks/zram.yml").is_file(), reason="the role is not there")
def test_area_names_map_to_the_role_tags():
    assert role_tag("zram") == "kbuild_host_zram"
    assert role_tag("kbuild_host_ccache") == "kbuild_host_ccache"


def test_the_areas_are_the_role_mains_tagged_includes():
    """provision.rules.names.AREAS is what --tags accepts: the role's tasks/main.yml must agree."""
    import yaml

    from provision.rules.names import AREAS

    main = yaml.safe_load((playbooks_dir() / "roles/kbuild_host/tasks/main.yml").read_text())
    tagged = [t["tags"][0][len("kbuild_host_"):] for t in main if t["tags"] != ["always"]]
    assert tuple(tagged) == AREAS


def test_tags_are_areas_repeated_or_comma_separated():
    from provision.rules.names import check_area_tags

    assert check_area_tags(["packages,ccache", "kbuild_host_zram", "ccache"], "--tags") == ("packages", "ccache", "zram")
    for bad in ("plan", "always", "ccache,", "pakages"):
        with pytest.raises(UserError, match="not an area of kprov apply"):
            check_area_tags([bad], "--tags")


def test_long_diffs_are_cut_with_a_pointer_to_the_artifacts():
    out = io.StringIO()
    printer = progress.ProgressPrinter(out, diff=True)
    after = "".join(f"line {i}\n" for i in range(progress.DIFF_MAX_LINES * 2))
    printer.event({"event": "runner_on_ok", "event_data": {
        "host": "h", "task": "Write", "role": "r", "task_path": "/x/roles/r/tasks/buildenv.yml:1",
        "res": {"changed": True, "diff": {"before": "", "after": after, "after_header": "/etc/x"}}}})
    lines = out.getvalue().splitlines()
    assert lines[0] == "[changed] h | buildenv | Write"
    assert len(lines) == 1 + progress.DIFF_MAX_LINES + 1
    assert lines[-1].endswith("more lines in the run's artifacts")


def test_non_root_kprov_apply_console_script_exits_2_and_writes_no_run(tmp_path):
    kprov = Path(sys.executable).parent / "kprov"
    if not kprov.exists():
        pytest.skip(f"{kprov} is not installed")
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run a process as nobody")
    state, home = tmp_path / "state", tmp_path / "home"
    for d in (state, home):
        d.mkdir()
        d.chmod(0o777)
    env = {"PATH": "/usr/bin:/bin", "XDG_STATE_HOME": str(state), "HOME": str(home)}
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(kprov), "apply"],
                          env=env, capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().endswith("run it as root (sudo kprov apply), or use --check")
    assert list(state.iterdir()) == []


def test_role_notes_are_printed_after_the_recap(project):
    pdir, _target = project
    with (pdir / "roles/r1/tasks/files.yml").open("a") as handle:
        handle.write(textwrap.dedent(
            """
            - name: Leave a note for the summary
              ansible.builtin.set_stats:
                data:
                  kbuild_host_notes: ["zram activation skipped: no /dev/zram0"]
                per_host: true
            """
        ))
    outcome, lines = run(pdir)
    assert outcome.result.rc == 0
    recap_at = next(i for i, line in enumerate(lines) if RECAP.match(line))
    assert lines[recap_at + 1:] == ["", "NOTES", "localhost : zram activation skipped: no /dev/zram0"]


@pytest.fixture
def full_tmpfs(tmp_path):
    """A 4 MiB tmpfs, nearly full: what a full /var or home looks like to apply."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "kprov-test-full", str(mnt)], check=True)
    try:
        (mnt / "filler").write_bytes(b"\0" * (3 << 20))
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_filesystem_stops_apply_before_anything_runs_naming_it(full_tmpfs, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(full_tmpfs / "state"))
    with pytest.raises(EnvironmentProblem) as info:
        apply(role_vars={"kbuild_host_ccache_enabled": False}, goals=None, inventory=None, out=io.StringIO())
    message = str(info.value)
    assert message.startswith("not enough space to apply: ") and f"free on {full_tmpfs} " in message
    assert "needs at least 256 MiB there" in message
    assert not (full_tmpfs / "state").exists(), "a run directory was created"
    # The ccache directory counts too: a cache on a full filesystem is named as such.
    with pytest.raises(EnvironmentProblem, match=f"free on {full_tmpfs} \\(which holds {full_tmpfs}/cache\\)"):
        check_free_space([tmp_path, full_tmpfs / "cache"])
    check_free_space([tmp_path], minimum=1)  # a roomy filesystem passes


def test_each_failed_host_gets_its_own_cause_line_and_the_last_line_sums_up():
    result = ApplyResult(rc=2, status="failed", stats={}, artifacts_dir="/runs/x/artifacts",
                                failed_hosts=("b1", "b2"), unreachable_hosts=("b3",))
    outcome = RunOutcome(result=result, unreachable={"b3": "ssh: connect to host b3 port 22: No route to host"})
    outcome.failed_tasks["b1"] = ("Install the packages", "packages",
                                  {"msg": "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem."})
    outcome.failed_tasks["b2"] = ("Start distccd", "distcc", {"msg": "bind: Address already in use"})
    err = io.StringIO()
    last = apply_failure(outcome, err)
    lines = err.getvalue().splitlines()
    assert [ln.split(" ")[1] for ln in lines] == ["b1:", "b2:", "apply"]
    assert lines[0].startswith("kprov: b1: apply failed at 'Install the packages': dpkg was interrupted")
    assert "3632" in lines[1] or "in use" in lines[1]
    assert lines[2] == "kprov: apply failed: b3 is unreachable: ssh: connect to host b3 port 22: No route to host"
    assert last == "apply failed on 3 hosts (b1, b2, b3), each named above; run artifacts: /runs/x/artifacts"
    assert all(len(ln) <= 220 for ln in lines)


def test_no_repair_reaches_the_role_in_both_modes(kprov_playbooks, tmp_path, state_home):
    inv = write(tmp_path / "inv.ini", f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    for kwargs in ({"role_vars": {"marker_text": "x"}, "goals": None, "inventory": None},
                   {"role_vars": None, "goals": Goals(jobs=3), "inventory": str(inv)}):
        result = apply(check=True, repair=False, out=io.StringIO(), **kwargs)
        extravars = json.loads((Path(result.artifacts_dir).parent / "env" / "extravars").read_text())
        assert extravars["kbuild_host_packages_repair"] is False
