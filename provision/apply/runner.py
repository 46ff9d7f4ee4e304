"""Run kprov's playbooks through ansible-runner: ``kprov apply`` and inventory fact gathering.

Only ``kprov apply`` and ``kprov plan -i`` import this module, and it imports ``ansible_runner``
only inside :func:`run_playbook`, so nothing else pays for Ansible's start-up.

Every run gets a fresh private data dir under the user's XDG state dir
(``$XDG_STATE_HOME/kprov/runs/<UTC timestamp>-<pid>/``). Inventory, extra vars, env vars and the
command line go to ``ansible_runner.run`` as arguments; ansible-runner keeps what it ran and every
event under ``artifacts/`` there, so a failed run can be examined after the fact. Ansible's own
output is silenced (``quiet``): an event handler prints one line per task and host instead, and
the recap is computed from the run's final stats.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from provision.apply.ansible_env import (
    ansible_tool,
    base_envvars,
    inventory_envvars,
    local_inventory,
    mark_unsafe,
    playbook_cmdline,
)
from provision.apply.locking import playbook_wrapper
from provision.apply.progress import ProgressPrinter
from provision.apply.runs import (
    ApplyResult,
    RunOutcome,
    collect_failures,
    error_lines_of,
    host_stats,
    new_run_dir,
)
from provision.errors import EnvironmentProblem, Interrupted, KprovError
from provision.resources import playbooks_dir


def failure_message(what: str, outcome: RunOutcome) -> str:
    """One line naming the failed and unreachable hosts (or Ansible's error) and the artifacts."""
    r = outcome.result
    parts = []
    if r.failed_hosts:
        parts.append("failed on " + ", ".join(_with_reason(h, outcome.failures) for h in r.failed_hosts))
    if r.unreachable_hosts:
        parts.append("unreachable: " + ", ".join(_with_reason(h, outcome.unreachable) for h in r.unreachable_hosts))
    if not parts:
        if r.status in ("canceled", "timeout"):
            parts.append(f"the run was {r.status}")
        elif outcome.error_lines:
            parts.append(outcome.error_lines[0])
        else:
            parts.append(f"ansible-playbook exited with {r.rc}")
    return f"{what} failed: {'; '.join(parts)}; run artifacts: {r.artifacts_dir}"






def run_playbook(
    playbook: str,
    *,
    inventory: str | None,
    extravars: dict[str, Any] | None = None,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    tags: Iterable[str] = (),
    skip_tags: Iterable[str] = (),
    verbosity: int = 0,
    out: TextIO | None = None,
    on_event: Callable[[dict], None] | None = None,
    extra_env: dict[str, str] | None = None,
    project_dir: Path | None = None,
    playbook_lock: Path | None = None,
) -> RunOutcome:
    """Run one of kprov's playbooks (a name in playbooks/) in a fresh private data dir.

    ``inventory`` None means this host over the local connection. Progress lines go to ``out``
    (None: silent); ``on_event`` sees every ansible-runner event (fact gathering collects results
    with it); ``project_dir`` replaces playbooks/ (tests use throwaway playbooks). Never raises for a failed run: the caller judges the outcome.
    """
    try:
        import ansible_runner
    except ImportError as exc:
        raise EnvironmentProblem(f"ansible-runner is not installed ({exc}): pip install kprov") from None

    project = Path(project_dir) if project_dir is not None else playbooks_dir()
    if not (project / playbook).is_file():
        raise EnvironmentProblem(f"kprov's playbook {playbook} is missing from {project}")
    real_playbook = ansible_tool("ansible-playbook")  # fail early and clearly
    run_dir = new_run_dir()
    artifacts = run_dir / "artifacts"

    envvars = base_envvars(project)
    # ansible-playbook dies with kprov, even when kprov is SIGKILLed, and holds the playbook lock.
    wrapper = playbook_wrapper(run_dir / "bin", real_playbook, playbook_lock)
    envvars["PATH"] = f"{wrapper.parent}:{envvars['PATH']}"
    if inventory is None:
        inventory_arg: str = local_inventory()
    else:
        inventory_arg = str(Path(inventory).resolve())
        envvars.update(inventory_envvars())
    envvars.update(extra_env or {})

    # --verbose once: every task's line; twice or more: Ansible's own output at -v(N-1).
    own_output = verbosity >= 2
    printer = ProgressPrinter(out, diff=diff, show_all=verbosity == 1) if out is not None and not own_output else None

    #: The terminal went away (closed pipe, full disk): the run goes on unseen, kprov says so after.
    lost_output: list[KprovError] = []

    def handle(event: dict) -> bool:
        try:
            if printer is not None and not lost_output:
                printer.event(event)
            if on_event is not None:
                on_event(event)
        except KprovError as exc:
            lost_output.append(exc)
        except Exception as exc:  # noqa: BLE001 - a display problem must not abort a half-done run
            if out is not None and not lost_output:
                with contextlib.suppress(Exception):
                    print(f"kprov: could not show an Ansible event ({type(exc).__name__}: {exc})", file=out)
        return True  # keep the event in artifacts/job_events

    with _forwarded_signals() as interrupted:
        runner = _run(
            ansible_runner,
            private_data_dir=str(run_dir),
            project_dir=str(project),
            artifact_dir=str(run_dir),
            ident="artifacts",
            playbook=playbook,
            inventory=inventory_arg,
            extravars=mark_unsafe(extravars or {}),
            envvars=envvars,
            cmdline=" ".join(playbook_cmdline(check=check, diff=diff)) or None,
            limit=limit or None,
            tags=",".join(tags) or None,
            skip_tags=",".join(skip_tags) or None,
            verbosity=(verbosity - 1) if own_output else None,
            quiet=not own_output or out is None,
            event_handler=handle,
        )
    stats = host_stats(getattr(runner, "stats", None) or {})
    if interrupted:
        name = signal.Signals(interrupted[0]).name
        raise Interrupted(f"interrupted by {name}: ansible-playbook was stopped; run artifacts: {artifacts}")
    if lost_output:
        raise lost_output[0]
    if printer is not None:  # with --verbose, Ansible's own output ends with its own recap
        printer.recap(stats)
    result = ApplyResult(
        rc=int(runner.rc if runner.rc is not None else 1),
        status=str(runner.status),
        stats=stats,
        artifacts_dir=str(artifacts),
        failed_hosts=tuple(h for h, s in stats.items() if s["failed"]),
        unreachable_hosts=tuple(h for h, s in stats.items() if s["unreachable"]),
    )
    outcome = RunOutcome(result=result, error_lines=error_lines_of(artifacts / "stdout"))
    collect_failures(artifacts, outcome)
    return outcome


def _run(ansible_runner: Any, **kwargs: Any) -> Any:
    # kprov handles SIGINT/SIGTERM/SIGHUP itself (_forwarded_signals): ansible-runner's own
    # cancel SIGKILLs ansible-playbook's process group, which leaves its workers - each in a
    # session of its own - and their modules running.
    return ansible_runner.run(cancel_callback=lambda: False, **kwargs)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields and int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


@contextlib.contextmanager
def _forwarded_signals() -> Iterator[list[int]]:
    """While a playbook runs, SIGINT, SIGTERM and SIGHUP to kprov become SIGTERM to its
    ansible-playbook, which stops its workers and their modules; the run then ends and kprov
    reports it (exit 130). The signals received are yielded."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        for pid in _children(os.getpid()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)

    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in wanted}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _with_reason(host: str, reasons: dict[str, str]) -> str:
    return f"{host} ({reasons[host]})" if host in reasons else host
