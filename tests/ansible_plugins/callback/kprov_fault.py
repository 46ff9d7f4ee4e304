"""Fault injection for kprov's crash-consistency tests: SIGKILL kprov and ansible-playbook.

Enabled only by the tests (``ANSIBLE_CALLBACKS_ENABLED=kprov_fault`` with this directory on
``ANSIBLE_CALLBACK_PLUGINS``). ``KPROV_FAULT_AT`` says where to strike:

* ``N``         after the Nth task of the run that ran on some host (ok or changed);
* ``AREA:N``    after the Nth such task of the role's ``tasks/AREA.yml`` (packages, zram, ...).

When the task's result arrives, the plugin writes the task's area and name to ``KPROV_FAULT_MARK``
(if set), then SIGKILLs its parent - the kprov process that started ansible-playbook - and
ansible-playbook itself: the two deaths a user gets from ``kill -9`` or the OOM killer, which no
handler can soften.

``KPROV_FAULT_CENSUS=FILE`` (with or without a strike) appends one line per counted task to FILE:
its number in the run, its area and its name - the task boundaries a run has.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kprov_fault"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        spec = os.environ.get("KPROV_FAULT_AT", "")
        area, _, number = spec.rpartition(":")
        self.area = area or None
        self.number = int(number) if number.isdigit() else 0
        self.mark = os.environ.get("KPROV_FAULT_MARK")
        self.census = os.environ.get("KPROV_FAULT_CENSUS")
        self.seen: dict[str, list[str]] = {}  # area (or "" for the whole run) -> task uuids seen
        self.counted: list[str] = []  # every task that ran, in order (the census)

    @staticmethod
    def _area(task) -> str:
        path = (task.get_path() or "").rsplit(":", 1)[0]
        return Path(path).stem if Path(path).parent.name == "tasks" else Path(path).stem

    def _count(self, result) -> None:
        task = result._task
        if self.census and task._uuid not in self.counted:
            self.counted.append(task._uuid)
            with open(self.census, "a") as f:
                f.write(f"{len(self.counted)}\t{self._area(task)}\t{task.get_name()}\n")
        if not self.number:
            return
        key = self.area if self.area is not None else ""
        if self.area is not None and self._area(task) != self.area:
            return
        uuids = self.seen.setdefault(key, [])
        if task._uuid not in uuids:
            uuids.append(task._uuid)
        if len(uuids) == self.number:
            if self.mark:
                Path(self.mark).write_text(f"{self._area(task)}\t{task.get_name()}\n")
            os.kill(os.getppid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)

    def v2_runner_on_ok(self, result):
        self._count(result)
