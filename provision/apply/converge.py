"""``kprov apply``: converge this host, or an inventory's hosts, with playbooks/site.yml.

It checks what it can before Ansible starts (an inventory that lists no host, paths that are not
root's, free space), holds the one-apply-at-a-time lock, runs the playbook through
:mod:`provision.apply.runner` and turns a failed run into one line.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

from provision.apply import failures
from provision.apply.checks import (
    apply_write_paths,
    check_free_space,
    check_writable_as_root,
)
from provision.apply.inventory import list_inventory
from provision.apply.locking import ApplyLock
from provision.apply.progress import one_line
from provision.apply.runner import failure_message, run_playbook
from provision.apply.runs import ApplyResult, RunOutcome
from provision.errors import ApplyFailed, UserError
from provision.model.goals import Goals, goals_extravars


def apply(
    *,
    role_vars: dict | None,
    goals: Goals | None,
    inventory: str | None,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    tags: Iterable[str] = (),
    skip_tags: Iterable[str] = (),
    verbosity: int = 0,
    out: TextIO | None = None,
    repair: bool = True,
) -> ApplyResult:
    """Converge this host (``inventory`` None) or an inventory's hosts with playbooks/site.yml.

    Local mode passes the plan's role variables (``Plan.to_role_vars()``) as extra vars; inventory
    mode passes only the user's goals (``kbuild_host_goals``) and lets the role plan each host from
    its own facts. ``repair`` False passes ``kbuild_host_packages_repair: false`` (--no-repair). Returns the result when every host converged; raises ApplyFailed (exit 1) naming
    the failed and unreachable hosts and the run's artifacts dir otherwise, UserError (exit 2) for
    bad input found before anything ran.
    """
    out = sys.stdout if out is None else out
    if inventory is None:
        if limit:
            raise UserError("--limit needs -i INVENTORY")
        if not check and os.geteuid() != 0:
            raise UserError("kprov apply changes the system: run it as root (sudo kprov apply), or use --check")
        extravars = dict(role_vars or {})
        if not repair:
            extravars["kbuild_host_packages_repair"] = False
    else:
        list_inventory(inventory, limit)  # bad inventory or a --limit that matches nothing: exit 2
        extravars = {}
        goal_vars = goals_extravars(goals)
        if goal_vars:
            extravars["kbuild_host_goals"] = goal_vars
        if not repair:
            extravars["kbuild_host_packages_repair"] = False
    if inventory is None:
        check_writable_as_root(role_vars or {})
    if inventory is None and not check:
        check_free_space(apply_write_paths(role_vars or {}))
    with _apply_lock(out) as lock:
        outcome = run_playbook(
            "site.yml",
            inventory=inventory,
            extravars=extravars,
            limit=limit,
            check=check,
            diff=diff,
            tags=[role_tag(t) for t in tags],
            skip_tags=[role_tag(t) for t in skip_tags],
            verbosity=verbosity,
            out=out,
            playbook_lock=lock.playbook_lock if lock else None,
        )
    result = outcome.result
    if not result.ok:
        raise ApplyFailed(apply_failure(outcome, out if out is not sys.stdout else sys.stderr))
    return result


@contextlib.contextmanager
def _apply_lock(out: TextIO) -> Iterator[ApplyLock | None]:
    """kprov's apply lock for a root run (see provision.apply.locking); a non-root run only checks."""
    if os.geteuid() != 0:
        yield None
        return
    with ApplyLock(note=lambda text: print(text, file=out, flush=True)) as lock:
        yield lock


def role_tag(tag: str) -> str:
    """``--tags zram`` means the role's area tag ``kbuild_host_zram`` (an area = a task file)."""
    return tag if tag.startswith("kbuild_host_") else f"kbuild_host_{tag}"


def apply_failure(outcome: RunOutcome, err: TextIO) -> str:
    """The last line of a failed apply: the step and its cause (provision.apply.failures), then where
    the full log is. With several failed hosts each gets its own line on ``err`` first, so one
    host's failure never hides another's."""
    r = outcome.result
    artifacts = f"run artifacts: {r.artifacts_dir}"
    causes: list[tuple[str, str]] = [
        (host, failures.cause_line(*outcome.failed_tasks[host])) for host in r.failed_hosts if host in outcome.failed_tasks
    ]
    causes += [
        (host, f"apply failed: {host} is unreachable: {one_line(outcome.unreachable.get(host, 'no answer'), 160)}")
        for host in r.unreachable_hosts
    ]
    if not causes:
        return failure_message("kprov apply", outcome)
    if len(causes) == 1:
        (host, line), = causes
        if host != "localhost" and host in r.failed_hosts:
            line = line.replace("apply failed", f"apply failed on {host}", 1)
        return f"{line} ({artifacts})"
    for host, line in causes:
        print(f"kprov: {line if host in r.unreachable_hosts else f'{host}: {line}'}", file=err, flush=True)
    hosts = [host for host, _ in causes]
    return f"apply failed on {len(hosts)} hosts ({', '.join(hosts)}), each named above; {artifacts}"


