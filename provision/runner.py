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

import configparser
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from provision import failures
from provision.errors import ApplyFailed, EnvironmentProblem, Interrupted, KprovError, UserError
from provision.locking import ApplyLock, playbook_wrapper
from provision.model import Goals
from provision.progress import RECAP_KEYS, ProgressPrinter, area_of, failure_text, one_line
from provision.resources import playbooks_dir

#: Run directories kept under the state dir; older ones are removed when a new run starts.
RUNS_KEPT = 20
#: ansible-runner's stats names for the recap counters that Ansible names differently.
_RUNNER_STATS_KEYS = {"unreachable": "dark", "failed": "failures"}
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class ApplyResult:
    """What one Ansible run did. ``stats`` maps host -> the recap counters (RECAP_KEYS)."""

    rc: int
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    stats: dict[str, dict[str, int]]
    artifacts_dir: str
    failed_hosts: tuple[str, ...] = ()
    unreachable_hosts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.failed_hosts and not self.unreachable_hosts

    def total(self, key: str) -> int:
        """Sum of one recap counter over every host (``total("changed") == 0`` after a re-run)."""
        return sum(s.get(key, 0) for s in self.stats.values())


@dataclass
class RunOutcome:
    """A finished run before it is judged: the result plus what a caller needs to explain it."""

    result: ApplyResult
    error_lines: list[str] = field(default_factory=list)  # ERROR lines of Ansible's own output
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> Ansible's message
    failures: dict[str, str] = field(default_factory=dict)  # host -> first failure message
    #: host -> (task name, role area, result) of its first failure, for provision.failures
    failed_tasks: dict[str, tuple[str, str, Any]] = field(default_factory=dict)


# --------------------------------------------------------------------------- public API


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
        from provision.inventory import list_inventory  # it runs playbooks through this module

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


#: Free space a local apply needs on each filesystem it writes to: apt's downloads and unpacked
#: packages land on / and /var, Ansible's module files in ~/.ansible/tmp, the run's events in the
#: state dir. Below this a run fails half-way with a message about some file; kprov names the
#: filesystem before anything changes instead.
MIN_FREE_BYTES = 256 << 20


def check_writable_as_root(role_vars: dict[str, Any]) -> None:
    """UserError when the ccache directory the user named could be turned against the host.

    The role checks every path it writes on the host itself (tasks/validate.yml); the one a user
    names on a local command line is refused here first, as bad input, before anything runs.
    """
    if not role_vars.get("kbuild_host_ccache_enabled") or not role_vars.get("kbuild_host_ccache_dir"):
        return
    from provision.facts import sysprobe

    reason = sysprobe().unsafe_path(str(role_vars["kbuild_host_ccache_dir"]))
    if reason:
        raise UserError(f"--ccache-dir: refusing to write as root: {reason}")


def apply_write_paths(role_vars: dict[str, Any]) -> list[Path]:
    """Where a local apply writes: /, /var, Ansible's tmp, kprov's runs, the ccache directory."""
    paths = [Path("/"), Path("/var"), Path.home() / ".ansible" / "tmp", state_dir()]
    if role_vars.get("kbuild_host_ccache_enabled") and role_vars.get("kbuild_host_ccache_dir"):
        paths.append(Path(str(role_vars["kbuild_host_ccache_dir"])))
    return paths


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    dev = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == dev:
        path = path.parent
    return path


def check_free_space(paths: Iterable[Path], minimum: int = MIN_FREE_BYTES) -> None:
    """EnvironmentProblem naming the first filesystem with less than ``minimum`` bytes free."""
    seen: set[int] = set()
    for wanted in paths:
        path = _existing(Path(wanted))
        try:
            st = os.statvfs(path)
            dev = path.stat().st_dev
        except OSError:
            continue
        if dev in seen:
            continue
        seen.add(dev)
        free = st.f_bavail * st.f_frsize
        if free < minimum:
            raise EnvironmentProblem(
                f"not enough space to apply: {free >> 20} MiB free on {_mount_point(path)} "
                f"(which holds {wanted}); kprov apply needs at least {minimum >> 20} MiB there"
            )


@contextlib.contextmanager
def _apply_lock(out: TextIO) -> Iterator[ApplyLock | None]:
    """kprov's apply lock for a root run (see provision.locking); a non-root run only checks."""
    if os.geteuid() != 0:
        yield None
        return
    with ApplyLock(note=lambda text: print(text, file=out, flush=True)) as lock:
        yield lock


def role_tag(tag: str) -> str:
    """``--tags zram`` means the role's area tag ``kbuild_host_zram`` (an area = a task file)."""
    return tag if tag.startswith("kbuild_host_") else f"kbuild_host_{tag}"


def goals_extravars(goals: Goals | None) -> dict[str, Any]:
    """The goals the user set (fields that differ from Goals()), as the role's kbuild_host_goals.

    Only what differs is passed, so an empty command line leaves the inventory's own
    ``kbuild_host_goals`` (host or group vars) in charge.
    """
    if goals is None:
        return {}
    default = Goals().to_dict()
    return {k: v for k, v in goals.to_dict().items() if default.get(k) != v}


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


def apply_failure(outcome: RunOutcome, err: TextIO) -> str:
    """The last line of a failed apply: the step and its cause (provision.failures), then where
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


def _with_reason(host: str, reasons: dict[str, str]) -> str:
    return f"{host} ({reasons[host]})" if host in reasons else host


# --------------------------------------------------------------------------- running a playbook


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
            extravars=inert(extravars or {}),
            envvars=envvars,
            cmdline=" ".join(_cmdline(check=check, diff=diff)) or None,
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
    outcome = RunOutcome(result=result, error_lines=_error_lines(artifacts / "stdout"))
    _collect_failures(artifacts, outcome)
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


#: The key Ansible's JSON decoder reads as "this string is data, never a template".
UNSAFE_KEY = "__ansible_unsafe"


def inert(value: Any) -> Any:
    """``value`` with every string marked unsafe, so Ansible never templates it.

    Ansible templates extra vars: a ``{{ lookup('pipe', ...) }}`` in a plan value (a path, a
    hostname from a facts file) would run as root, even under ``--check``. ansible-runner writes
    extra vars as JSON (``env/extravars``), where ``{"__ansible_unsafe": "..."}`` is Ansible's
    spelling of an unsafe string. Keys stay plain strings: the validator allows only fixed names.
    """
    if isinstance(value, str):
        return {UNSAFE_KEY: value}
    if isinstance(value, dict):
        return {str(k): inert(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [inert(v) for v in value]
    return value


def _cmdline(*, check: bool, diff: bool) -> list[str]:
    args = []
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    return args


def base_envvars(project: Path) -> dict[str, str]:
    """Environment for every run: kprov's roles, no colour codes in events, no retry files."""
    roles = str(project / "roles")
    user_roles = os.environ.get("ANSIBLE_ROLES_PATH")
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {
        "ANSIBLE_ROLES_PATH": f"{roles}:{user_roles}" if user_roles else roles,
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_FORCE_COLOR": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_PYTHON_INTERPRETER": os.environ.get("ANSIBLE_PYTHON_INTERPRETER", "auto_silent"),
        # the Ansible tools that belong to this Python first (sudo resets PATH to secure_path)
        "PATH": f"{bin_dir}:{path}" if bin_dir not in path.split(":") else path,
        # ansible-runner turns SSH host key checking off unless told; local runs use no SSH
        "ANSIBLE_HOST_KEY_CHECKING": os.environ.get("ANSIBLE_HOST_KEY_CHECKING", "True"),
    }


def inventory_envvars() -> dict[str, str]:
    """What an inventory run adds: the user's ./ansible.cfg, their host key checking, pipelining.

    ansible-runner starts ansible-playbook in kprov's playbooks dir, where the user's
    ./ansible.cfg (remote_user, private_key_file, ...) would not be found, and it turns SSH host
    key checking off unless told otherwise. kprov keeps the user's settings for both.

    Pipelining is on unless the user's environment or ansible.cfg says otherwise: a module is then
    one SSH round trip instead of four (temp dir, copy, chmod, run), which is most of a converged
    re-run's time. It needs a sudo without ``requiretty`` where the inventory uses become
    (README: set ANSIBLE_PIPELINING=False for such hosts).
    """
    env: dict[str, str] = {}
    config = os.environ.get("ANSIBLE_CONFIG")
    cwd_config = Path.cwd() / "ansible.cfg"
    if not config and cwd_config.is_file() and not _world_writable(Path.cwd()):
        config = str(cwd_config)
        env["ANSIBLE_CONFIG"] = config
    if "ANSIBLE_HOST_KEY_CHECKING" not in os.environ:
        env["ANSIBLE_HOST_KEY_CHECKING"] = str(_config_host_key_checking(config))
    if "ANSIBLE_PIPELINING" not in os.environ and not _config_sets_pipelining(config):
        env["ANSIBLE_PIPELINING"] = "True"
    return env


def _world_writable(path: Path) -> bool:
    """Ansible itself ignores ansible.cfg in a world-writable directory; so does kprov."""
    try:
        return bool(path.stat().st_mode & 0o002)
    except OSError:
        return True


def _config_host_key_checking(config: str | None) -> bool:
    try:
        from ansible.config.manager import ConfigManager

        return bool(ConfigManager(conf_file=config).get_config_value("HOST_KEY_CHECKING"))
    except Exception:  # noqa: BLE001 - any trouble reading the config: keep Ansible's default
        return True


def _config_sets_pipelining(config: str | None) -> bool:
    """Whether the ansible.cfg the run reads (config, or the one Ansible's search finds) says
    anything about pipelining, in [defaults] or [connection]."""
    try:
        from ansible.config.manager import find_ini_config_file

        path = config or find_ini_config_file()
    except Exception:  # noqa: BLE001 - no Ansible to ask: leave pipelining to Ansible
        return True
    if not path:
        return False
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return True  # a config kprov cannot read: leave pipelining to Ansible
    return any(parser.has_option(section, "pipelining") for section in ("defaults", "connection"))


def local_inventory() -> str:
    """This host over the local connection, with a Python that has the distro's apt/dnf bindings."""
    python = SYSTEM_PYTHON if Path(SYSTEM_PYTHON).exists() else sys.executable
    return f"localhost ansible_connection=local ansible_python_interpreter={python}\n"


def ansible_tool(name: str) -> str:
    """Path of an Ansible command: the one next to this Python first (the venv kprov lives in)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise EnvironmentProblem(f"{name} not found: install ansible-core (pip install kprov installs it)")
    return found


def state_dir() -> Path:
    """kprov's XDG state dir: $XDG_STATE_HOME/kprov, else ~/.local/state/kprov."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "kprov"


def new_run_dir() -> Path:
    """A fresh private data dir, ``runs/<UTC timestamp>-<pid>[-n]``, readable by its owner only."""
    runs = state_dir() / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create kprov's run directory {runs}: {exc.strerror}") from None
    _prune_runs(runs)
    stem = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    for n in range(1, 1000):
        path = runs / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            continue
    raise EnvironmentProblem(f"cannot create a fresh run directory in {runs}")


_RUN_NAME = re.compile(r"^\d{8}T\d{6}Z-\d+(-\d+)?$")


def _prune_runs(runs: Path) -> None:
    """Keep the newest RUNS_KEPT - 1 runs (the new one makes RUNS_KEPT)."""
    try:
        names = sorted(p.name for p in runs.iterdir() if p.is_dir() and _RUN_NAME.match(p.name))
    except OSError:
        return
    for name in names[: max(0, len(names) - (RUNS_KEPT - 1))]:
        shutil.rmtree(runs / name, ignore_errors=True)


def host_stats(stats: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """ansible-runner's stats (counter -> host -> n) as host -> Ansible's recap counters."""
    hosts: set[str] = set()
    for key in (*RECAP_KEYS, "dark", "failures", "processed"):
        hosts.update((stats.get(key) or {}).keys())
    return {
        host: {key: int((stats.get(_RUNNER_STATS_KEYS.get(key, key)) or {}).get(host, 0)) for key in RECAP_KEYS}
        for host in sorted(hosts)
    }


def _error_lines(stdout_file: Path) -> list[str]:
    """Ansible's ERROR lines (a syntax error, a missing role) from the run's saved stdout."""
    try:
        text = stdout_file.read_text(errors="replace")
    except OSError:
        return []
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = []
    for ln in text.splitlines():
        s = ln.strip()
        if s.startswith(("ERROR!", "[ERROR]:")):
            lines.append(one_line(s.removeprefix("ERROR!").removeprefix("[ERROR]:").strip()))
    return lines


def _collect_failures(artifacts: Path, outcome: RunOutcome) -> None:
    """Failure messages and the failed tasks' results, from the events the run saved."""
    events_dir = artifacts / "job_events"
    try:
        files = sorted(events_dir.glob("*.json"), key=lambda p: int(p.name.split("-", 1)[0]))
    except (OSError, ValueError):
        return
    for f in files:
        try:
            event = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        data = event.get("event_data") or {}
        host = data.get("host")
        if event.get("event") == "runner_on_unreachable" and host:
            outcome.unreachable.setdefault(host, failure_text(data.get("res") or {}))
        elif event.get("event") == "runner_on_failed" and host and not data.get("ignore_errors"):
            res = data.get("res") or {}
            outcome.failures.setdefault(host, f"{data.get('task') or '?'}: {failure_text(res)}")
            outcome.failed_tasks.setdefault(host, (str(data.get("task") or ""), area_of(data), res))


# --------------------------------------------------------------------------- progress lines


