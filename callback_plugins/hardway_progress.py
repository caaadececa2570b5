"""Progress events for `hardway up`, `class up` and lab steps: one JSON object per line, appended to the file
named by HARDWAY_PROGRESS_FILE. Enabled only by hardway (ANSIBLE_CALLBACKS_ENABLED).

Events: {"event": "task", "stage": ...}, {"event": "result", "host", "stage", "status",
"task", "msg" (a failure's, or a debug task's, even when skipped), "stdout"} and, at the end,
{"event": "stats", "hosts": {host: {failures, ...}}}.
The stage of a task is its play's `progress_stage` variable, else its role (under the name
the play's `progress_stage_names` gives it, if any), else "facts".
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: hardway_progress
type: aggregate
short_description: progress events for hardway up, class up and lab steps, as JSON lines
description: Appends one JSON object per event to the file named by HARDWAY_PROGRESS_FILE.
requirements: [enable in callbacks_enabled]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "hardway_progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        path = os.environ.get("HARDWAY_PROGRESS_FILE")
        self._out = open(path, "a", buffering=1) if path else None  # noqa: SIM115 - kept open
        self._play = ""
        self._names: dict = {}

    def _emit(self, **event) -> None:
        if self._out:
            event["at"] = round(time.time(), 3)
            self._out.write(json.dumps(event) + "\n")

    def _stage(self, task) -> str:
        role = task._role.get_name() if task._role else ""
        return self._play or str(self._names.get(role, role)) or "facts"

    def v2_playbook_on_play_start(self, play) -> None:
        play_vars = play.get_vars()
        self._play = str(play_vars.get("progress_stage", ""))
        names = play_vars.get("progress_stage_names", {})
        self._names = names if isinstance(names, dict) else {}

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._emit(event="task", stage=self._stage(task), task=task.get_name())

    def _result(self, result, status: str) -> None:
        task = result._task
        data = result._result
        msg = ""
        # A failure's message, and what a debug task tells the user.
        if status in ("failed", "unreachable") or task.action in ("debug", "ansible.builtin.debug"):
            msg = str(data.get("msg") or data.get("stderr") or data.get("reason") or "")
        self._emit(event="result", host=result._host.get_name(), stage=self._stage(task),
                   task=task.get_name(), status=status, msg=msg.strip()[:600],
                   stdout=str(data.get("stdout", ""))[:600])

    def v2_runner_on_ok(self, result) -> None:
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._result(result, "failed")

    def v2_runner_on_unreachable(self, result) -> None:
        self._result(result, "unreachable")

    def v2_runner_on_skipped(self, result) -> None:
        self._result(result, "skipped")

    def v2_playbook_on_stats(self, stats) -> None:
        hosts = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._emit(event="stats", hosts=hosts)
        if self._out:
            self._out.close()
            self._out = None
