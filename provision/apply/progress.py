"""What a kprov run shows while Ansible works: one line per task and host, diffs, the recap, notes.

By default a line is printed for what a user acts on - a task that changed something, failed, was
unreachable, or had something to say (a warning, or a ``kbuild_host:`` note of the role) - each
numbered by the task it belongs to (``[12]``: the run's 12th task; the role includes its task files
dynamically, so Ansible knows no total in advance). Skipped and plain ok tasks are counted in the
recap; ``show_all`` (``kprov apply --verbose``) prints them too.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TextIO

#: Longest failure message printed on a task line (Ansible's messages can be whole tracebacks).
MESSAGE_MAX_CHARS = 400


#: Lines of one task's --diff printed under it; the rest stays in the run's artifacts (job_events).
DIFF_MAX_LINES = 40


#: Context lines around each change in a --diff hunk: enough to place it, compact enough to read.
DIFF_CONTEXT_LINES = 1


#: The counters of Ansible's recap line, in its order; keys of ApplyResult.stats[host].
RECAP_KEYS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")


#: The debug action, whose ``kbuild_host:`` messages are the role's notes to the user.
_DEBUG_ACTIONS = frozenset({"debug", "ansible.builtin.debug"})


#: Task actions that only load other tasks: Ansible prints them as "included:", not as results.
_INCLUDE_ACTIONS = frozenset(
    {
        "include_tasks",
        "include_role",
        "import_tasks",
        "import_role",
        "ansible.builtin.include_tasks",
        "ansible.builtin.include_role",
        "ansible.builtin.import_tasks",
        "ansible.builtin.import_role",
        "ansible.builtin.include_vars",
    }
)


def recap_line(host: str, counters: dict[str, int], width: int = 0) -> str:
    """``localhost : ok=N changed=N unreachable=N failed=N skipped=N rescued=N ignored=N``."""
    return f"{host:<{width}} : " + " ".join(f"{k}={counters.get(k, 0)}" for k in RECAP_KEYS)


def print_recap(out: TextIO, stats: dict[str, dict[str, int]]) -> None:
    width = max((len(h) for h in stats), default=0)
    print("", file=out)
    print("PLAY RECAP", file=out)
    for host, counters in stats.items():
        print(recap_line(host, counters, width), file=out)
    out.flush()


def one_line(text: str, limit: int = MESSAGE_MAX_CHARS) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def failure_text(res: dict[str, Any]) -> str:
    """The one line that says why a task failed: its msg, and stderr's last line when there is one."""
    if not isinstance(res, dict):
        return one_line(str(res))
    results = res.get("results")
    if isinstance(results, list):
        for item in results:
            if isinstance(item, dict) and (item.get("failed") or item.get("unreachable")):
                label = item.get("_ansible_item_label", item.get("item"))
                return one_line(f"item {label}: {failure_text(item)}")
    # ansible-core 2.19 prefixes every message with "Task failed: "; the task line says so already
    msg = str(res.get("msg") or res.get("reason") or "").strip().removeprefix("Task failed: ")
    stderr = str(res.get("stderr") or res.get("module_stderr") or "").strip()
    last = stderr.splitlines()[-1].strip() if stderr else ""
    if last and last not in msg:
        msg = f"{msg}: {last}" if msg else last
    return one_line(msg or "failed (no message)")


def area_of(data: dict[str, Any]) -> str:
    """Which part of the role a task belongs to: its task file (zram.yml -> zram), else the role."""
    task_path = str(data.get("task_path") or "")
    role = str(data.get("role") or "")
    if task_path:
        path = Path(task_path.rsplit(":", 1)[0])
        if path.parent.name == "tasks" and path.stem != "main":
            return path.stem
        if path.parent.name == "handlers":
            return "handlers"
        if not role:
            return path.stem
    return role or "play"


def format_diff(diff: Any) -> list[str]:
    """Compact unified diff lines for a task's ``res.diff`` (a dict or a list of them)."""
    items = diff if isinstance(diff, list) else [diff]
    lines: list[str] = []
    for d in items:
        if not isinstance(d, dict):
            continue
        if d.get("prepared"):
            lines += [ln for ln in str(d["prepared"]).splitlines() if ln.strip()]
            continue
        if "before" not in d and "after" not in d:
            continue
        before, after = _diff_text(d.get("before", "")), _diff_text(d.get("after", ""))
        lines += difflib.unified_diff(
            before,
            after,
            fromfile=str(d.get("before_header") or "before"),
            tofile=str(d.get("after_header") or "after"),
            lineterm="",
            n=DIFF_CONTEXT_LINES,
        )
    return lines


def _diff_text(value: Any) -> list[str]:
    if isinstance(value, dict):  # file/state diffs: {"path": ..., "state": "absent"}
        return [f"{k}: {v}" for k, v in sorted(value.items())]
    return str(value if value is not None else "").splitlines()


class ProgressPrinter:
    """Turns ansible-runner events into one line per task and host, then Ansible's recap."""

    INDENT = "    "

    def __init__(self, out: TextIO, *, diff: bool = False, show_all: bool = False):
        self.out = out
        self.diff = diff
        self.show_all = show_all
        self.unreachable: dict[str, str] = {}
        self.failures: dict[str, str] = {}
        self.notes: dict[str, list[str]] = {}  # host -> the role's set_stats kbuild_host_notes
        self._tasks: dict[str, int] = {}  # task uuid -> its number in this run

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def event(self, event: dict) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            name = data.get("play") or data.get("name") or ""
            if name:
                self._print(f"PLAY {name}")
            return
        if kind == "playbook_on_task_start":
            if not self._is_include(data):
                self._tasks.setdefault(str(data.get("task_uuid") or data.get("uuid") or len(self._tasks)), len(self._tasks) + 1)
            return
        if kind not in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            return
        if self._is_include(data):
            return
        res = data.get("res") or {}
        host = str(data.get("host") or "?")
        if kind == "runner_on_ok":
            label = "changed" if (res.get("changed") if isinstance(res, dict) else False) else "ok"
        elif kind == "runner_on_skipped":
            label = "skipped"
        elif kind == "runner_on_unreachable":
            label = "unreachable"
        else:
            label = "ignored" if data.get("ignore_errors") else "failed"
        number = self._tasks.get(str(data.get("task_uuid") or ""))
        counter = f"[{number}] " if number else ""
        line = f"{counter}[{label}] {host} | {area_of(data)} | {data.get('task') or data.get('task_action') or '?'}"
        note = self._note(data, res)
        if label in ("ok", "skipped") and not self.show_all and not note and not (isinstance(res, dict) and res.get("warnings")):
            self._remember_notes(host, res)
            return
        if note:
            line += f": {note}"
        if label in ("failed", "ignored", "unreachable"):
            why = failure_text(res)
            line += f": {why}"
            if label == "unreachable":
                self.unreachable.setdefault(host, why)
            elif label == "failed":
                self.failures.setdefault(host, f"{data.get('task') or '?'}: {why}")
        self._print(line)
        self._remember_notes(host, res)
        if isinstance(res, dict):
            for warning in res.get("warnings") or ():
                self._print(f"{self.INDENT}warning: {one_line(warning)}")
            if self.diff and label == "changed" and res.get("diff"):
                diff_lines = format_diff(res["diff"])
                for diff_line in diff_lines[:DIFF_MAX_LINES]:
                    self._print(f"{self.INDENT}{diff_line}")
                if len(diff_lines) > DIFF_MAX_LINES:
                    self._print(f"{self.INDENT}... {len(diff_lines) - DIFF_MAX_LINES} more lines in the run's artifacts")

    @staticmethod
    def _is_include(data: dict) -> bool:
        return data.get("task_action") in _INCLUDE_ACTIONS or data.get("resolved_action") in _INCLUDE_ACTIONS

    @staticmethod
    def _note(data: dict, res: Any) -> str:
        """A debug task's ``kbuild_host: ...`` message: the role telling the user something."""
        if not isinstance(res, dict) or (data.get("resolved_action") or data.get("task_action")) not in _DEBUG_ACTIONS:
            return ""
        msg = res.get("msg")
        if isinstance(msg, str) and msg.startswith("kbuild_host: "):
            return one_line(msg[len("kbuild_host: "):])
        return ""

    def _remember_notes(self, host: str, res: Any) -> None:
        if isinstance(res, dict):
            for note in role_notes(res.get("ansible_stats")):
                self.notes.setdefault(host, []).append(note)

    def recap(self, stats: dict[str, dict[str, int]]) -> None:
        print_recap(self.out, stats)
        if self.notes:
            self._print("")
            self._print("NOTES")
            for host, notes in sorted(self.notes.items()):
                for note in notes:
                    self._print(f"{host} : {one_line(note)}")


def role_notes(stats: Any) -> list[str]:
    """The notes a set_stats task of the role left (kbuild_host_notes): why zram was not activated..."""
    data = stats.get("data") if isinstance(stats, dict) else None
    notes = data.get("kbuild_host_notes") if isinstance(data, dict) else None
    return [str(n) for n in notes if str(n).strip()] if isinstance(notes, list) else []
