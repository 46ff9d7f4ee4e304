"""One apply at a time, and an ansible-playbook that dies with kprov (provision/apply/locking.py).

The kill test is real: a kprov process runs a playbook through ansible-runner, is SIGKILLed (which
it cannot catch), and its ansible-playbook and the module it was running must be gone soon after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from provision.apply import locking
from provision.errors import EnvironmentProblem

ROOT = Path(__file__).resolve().parent.parent
KPROV = Path(sys.executable).parent / "kprov"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lock directory must be root's")


def hold_lock(directory: Path, seconds: int = 60) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from provision.apply.locking import ApplyLock
        with ApplyLock(Path({str(directory)!r})):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@needs_root
def test_a_second_apply_fails_naming_the_holder(tmp_path):
    holder = hold_lock(tmp_path / "run")
    try:
        with pytest.raises(EnvironmentProblem, match=rf"another kprov apply is running \(pid {holder.pid}\)"):
            with locking.ApplyLock(tmp_path / "run"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with locking.ApplyLock(tmp_path / "run") as lock:  # free again once the holder is gone
        assert (tmp_path / "run" / "apply.lock").read_text().strip() == str(os.getpid())
        assert lock.playbook_lock == tmp_path / "run" / "playbook.lock"


@needs_root
def test_the_lock_directory_must_be_roots_and_not_a_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(EnvironmentProblem, match="is not a directory"):
        with locking.ApplyLock(tmp_path / "link"):
            pass
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o777)
    open_dir.chmod(0o777)
    with pytest.raises(EnvironmentProblem, match="writable by root only"):
        with locking.ApplyLock(open_dir):
            pass
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o755)
    (planted / "apply.lock").symlink_to(tmp_path / "victim")
    with pytest.raises(EnvironmentProblem, match="is a symlink"):
        with locking.ApplyLock(planted):
            pass
    assert not (tmp_path / "victim").exists()


@needs_root
def test_a_new_run_waits_for_a_killed_runs_playbook_then_gives_up(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o755)
    # What a killed run leaves: a process (its ansible-playbook's worker) holding the playbook lock.
    leftover = subprocess.Popen(["flock", "--no-fork", str(directory / "playbook.lock"), "sleep", "60"])
    try:
        time.sleep(0.5)
        notes: list[str] = []
        with pytest.raises(EnvironmentProblem, match="still holds .*playbook.lock after 1 s"):
            with locking.ApplyLock(directory, wait_seconds=1, note=notes.append):
                pass
        assert notes == ["kprov: waiting for the ansible-playbook of an earlier, stopped kprov apply to exit"]
        # The apply lock was given back: the next run is not blocked by this one.
        leftover.kill()
        leftover.wait()
        with locking.ApplyLock(directory, wait_seconds=1):
            pass
    finally:
        leftover.kill()


def _pids_with(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


def _wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def long_task_project(tmp_path: Path, marker: str) -> Path:
    """A playbook dir whose one task runs for 5 minutes as a process named by ``marker``."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "site.yml").write_text(textwrap.dedent(f"""
        - name: A long task
          hosts: all
          gather_facts: false
          tasks:
            - name: Sleep
              ansible.builtin.command: python3 -c "import time; time.sleep(300)" {marker}
              changed_when: false
    """))
    return project


@needs_root
def test_ansible_playbook_and_its_module_die_with_a_sigkilled_kprov(tmp_path):
    marker = f"kprov-sleep-{os.getpid()}-{time.monotonic_ns()}"
    project = long_task_project(tmp_path, marker)
    lockdir = tmp_path / "run"
    lockdir.mkdir(mode=0o755)
    code = textwrap.dedent(f"""
        from pathlib import Path
        from provision.apply import runner
        runner.run_playbook("site.yml", inventory=None, project_dir=Path({str(project)!r}),
                            playbook_lock=Path({str(lockdir / "playbook.lock")!r}))
    """)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    kprov = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        assert _wait_until(lambda: _pids_with(marker), 120), "the task never started"
        # ansible-playbook and its workers (forks of it) name the run's inventory under the state dir.
        playbooks = _pids_with(str(tmp_path / "state"))
        assert playbooks
        kprov.send_signal(signal.SIGKILL)
        kprov.wait()
        assert _wait_until(lambda: not _pids_with(marker), 30), "the module outlived kprov"
        assert _wait_until(lambda: not _pids_with(str(tmp_path / "state")), 30), "ansible-playbook outlived kprov"
        # Nothing of the killed run holds the playbook lock any more: a new apply starts at once.
        with locking.ApplyLock(lockdir, wait_seconds=5):
            pass
    finally:
        kprov.kill()
        for pid in _pids_with(marker):
            os.kill(pid, signal.SIGKILL)


@needs_root
def test_kprov_apply_refuses_to_run_beside_another(tmp_path):
    if not KPROV.exists():
        pytest.skip(f"{KPROV} is not installed")
    holder = hold_lock(locking.LOCK_DIR)
    try:
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
        proc = subprocess.run([str(KPROV), "apply", "--check", "--tags", "buildenv"], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"kprov: another kprov apply is running (pid {holder.pid}): wait for it to finish, or stop it"
    )
    assert not (tmp_path / "state" / "kprov" / "runs").exists() or not any((tmp_path / "state" / "kprov" / "runs").iterdir())


def test_the_wrapper_execs_the_real_ansible_playbook_with_its_arguments(tmp_path):
    fake = tmp_path / "fake-playbook"
    fake.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    fake.chmod(0o755)
    wrapper = locking.playbook_wrapper(tmp_path / "bin", str(fake), tmp_path / "playbook.lock")
    out = subprocess.run([str(wrapper), "a b", "--check", "$HOME"], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["a b", "--check", "$HOME"]
    assert "--pdeathsig TERM" in wrapper.read_text() and "--no-fork" in wrapper.read_text()


@needs_root
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM])
def test_an_interrupted_apply_stops_its_playbook_and_frees_the_lock(tmp_path, sig):
    """Ctrl-C, a lost SSH session or a plain kill in the middle of a run: nothing goes on alone."""
    marker = f"kprov-{sig.name}-{os.getpid()}-{time.monotonic_ns()}"
    project = long_task_project(tmp_path, marker)
    lockdir = tmp_path / "run"
    # Drive runner.apply directly under the CLI's error handling, as kprov apply does.
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from provision.apply import converge, locking, runner
        from provision.cli.app import KprovApp
        locking.LOCK_DIR = Path({str(lockdir)!r})
        runner.playbooks_dir = lambda: Path({str(project)!r})

        class Apply(KprovApp):
            def main(self):
                converge.apply(role_vars={{}}, goals=None, inventory=None)
                return 0

        Apply.run(["apply"])
    """)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    kprov = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_until(lambda: _pids_with(marker), 120), "the task never started"
        kprov.send_signal(sig)
        out, err = kprov.communicate(timeout=60)
        assert kprov.returncode == 130, out + err
        assert "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith(f"kprov: interrupted by {sig.name}: ansible-playbook was stopped; "), err
        assert _wait_until(lambda: not _pids_with(marker), 30), f"the module outlived a {sig.name}"
        assert _wait_until(lambda: not _pids_with(str(tmp_path / "state")), 30), "ansible-playbook outlived it"
        with locking.ApplyLock(lockdir, wait_seconds=5):
            pass
    finally:
        kprov.kill()
        for pid in _pids_with(marker):
            os.kill(pid, signal.SIGKILL)
