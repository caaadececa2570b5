"""A playbook run with progress: Ansible's output goes to a log file, the hardway_progress
callback (callback_plugins/) appends one JSON event per line to a second file, and the
caller is shown per-stage counts of hosts while it runs. Used by `hardway up` (site.yml),
`hardway class up` (playbooks/class.yml) and the lab steps (playbooks/lab.yml).

The stage of a task is its play's `progress_stage` variable, else its role.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hardway.children import ansible_env, last_line, start
from hardway.settings import REPO, HardwayError

# site.yml's stages in order; class.yml adds its last check.
STAGES = ("preflight", "node_prereqs", "download", "runc", "cni_plugins", "crictl", "containerd",
          "lab_images", "kubelet", "cni_config")
# site.yml's control_plane play, only on the hosts in that group (its download role is
# named apart by the play's progress_stage_names).
CONTROL_PLANE_STAGES = ("pki", "control_plane_download", "etcd", "kube_apiserver",
                        "kube_controller_manager", "kube_scheduler")
# class.yml ends with a check of its own on each machine.
CLASS_END = ("ready",)
# Runs kept per kind in a state folder: enough to compare today's with yesterday's.
KEEP = 10


def site_stages(control_plane: bool, after: tuple[str, ...] = ()) -> tuple[str, ...]:
    """site.yml's (or class.yml's) stages: the control plane's right after the preflight when
    some host has one (its node's kubelet joins it), and then what the play adds at the end."""
    stages = STAGES[:1] + CONTROL_PLANE_STAGES + STAGES[1:] if control_plane else STAGES
    return (*stages, *after)


class Progress:
    """What the events say so far: per host, the stage of its last result, whether that
    result was a failure (a rescued failure is followed by more results), and why. Only
    the control_plane_hosts go through the control plane's stages."""

    def __init__(self, hosts: list[str], stages: tuple[str, ...] = STAGES,
                 control_plane_hosts: tuple[str, ...] = ()):
        self.hosts = hosts
        self.stages = stages
        self.control_plane_hosts = control_plane_hosts
        self.reached: dict[str, int] = {}
        self.down: set[str] = set()
        self.failure: dict[str, tuple[str, str, str]] = {}  # host -> (stage, task, msg)
        self.stats: dict[str, dict] | None = None
        self.finished = False  # the playbook has exited
        self.task = ""  # the task under way
        self.notes: list[tuple[str, str]] = []  # (host, message) of each debug task

    def feed(self, event: dict) -> None:
        if event["event"] == "stats":
            self.stats = event["hosts"]
            return
        if event["event"] == "task":
            self.task = printable(event["task"])
            return
        if event["event"] != "result":
            return
        host = event["host"]
        # A message may quote what a node holds (a file's name, a command's output).
        event = dict(event, task=printable(event["task"]), msg=printable(event["msg"]))
        if event["status"] in ("ok", "changed") and event["msg"]:
            self.notes.append((host, event["msg"]))
        if event["stage"] in self.stages:
            self.reached[host] = max(self.reached.get(host, 0), self.stages.index(event["stage"]))
        if event["status"] in ("failed", "unreachable"):
            self.down.add(host)
            self.failure[host] = (self.stages[self.reached.get(host, 0)], event["task"], event["msg"])
        else:
            self.down.discard(host)

    def stage_rows(self) -> list[tuple[str, int, int, int]]:
        """Per stage: hosts past it, hosts working in it, hosts stopped in it (of the hosts
        that go through it)."""
        rows = []
        for index, stage in enumerate(self.stages):
            hosts = [h for h in self.hosts
                     if stage not in CONTROL_PLANE_STAGES or h in self.control_plane_hosts]
            at = [h for h in hosts if self.reached.get(h, -1) == index]
            stopped = [h for h in at if h in self.down]
            past = sum(1 for h in hosts if self.reached.get(h, -1) > index)
            if self.stats is not None:
                past += len(at) - len(stopped)
                working = 0
            else:
                working = len(at) - len(stopped)
            rows.append((stage, past, working, len(stopped)))
        return rows

    def outcome(self, host: str) -> str:
        """ok, failed, unreachable, or not run (the playbook ended before this host)."""
        summary = (self.stats or {}).get(host)
        if summary is None:
            return "not run"
        if summary.get("unreachable"):
            return "unreachable"
        return "failed" if summary.get("failures") else "ok"


def printable(text: str) -> str:
    """Text with every control character but newline and tab written as an escape, so that
    nothing a node said can steer the terminal it is shown on."""
    return "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)


def first_failure(progress: Progress, limit: int = 300) -> str:
    """The first host that did not get through, its outcome, task and message on one line
    (at most limit characters of the message), and how many others did not; or ""."""
    bad = [(name, progress.outcome(name)) for name in progress.hosts
           if progress.outcome(name) != "ok"]
    if not bad:
        return ""
    name, outcome = bad[0]
    stage, task, msg = progress.failure.get(name, ("", "", ""))
    said = f"{outcome} at {stage}: {task}: {one_line(msg, limit)}" if task else outcome
    others = f" (and {len(bad) - 1} other node(s))" if len(bad) > 1 else ""
    return f"{name} {said}{others}"


def one_line(text: str, limit: int = 300) -> str:
    """One line of an Ansible failure message, at most limit characters; for a failed SSH
    connection, what ssh said."""
    text = " ".join(text.split()).removeprefix("Task failed: ")
    changed = re.search(r"Host key for (\S+) has changed", text)
    # The known_hosts path may have spaces (a class folder's).
    offending = re.search(r"Offending \S+ key in (.+?):\d+", text)
    if changed and offending:
        return (f"the SSH host key of {changed[1]} changed since Ansible first reached it "
                f"(a reinstalled machine?); if that is expected: ssh-keygen -R {changed[1]} "
                f"-f {shlex.quote(offending[1])}")
    if "ssh: " in text:
        text = text[text.rindex("ssh: "):]
    return text[:limit]


def _tail(path: Path, progress: Progress, stop: threading.Event) -> None:
    """Feed the events file to progress until stop is set and the file is drained."""
    while not path.exists() and not stop.is_set():
        time.sleep(0.1)
    if not path.exists():
        return
    with path.open() as events:
        pending = ""
        while True:
            chunk = events.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    progress.feed(json.loads(pending))
                    pending = ""
                continue
            if stop.is_set():
                return
            time.sleep(0.2)


def _prune(folder: Path, kind: str) -> None:
    for old in sorted(folder.glob(f"{kind}-*.log"))[:-KEEP]:
        old.unlink(missing_ok=True)
        old.with_suffix(".events").unlink(missing_ok=True)


def run(command: list[str], *, hosts: list[str], stages: tuple[str, ...], state: Path, kind: str,
        what: str, show: Callable[[Progress], None], log: Callable[[str], None],
        control_plane_hosts: tuple[str, ...] = ()) -> tuple[Progress, Path]:
    """Run an ansible-playbook command to its end; the progress it made and its log file.
    Raises only when the playbook ended before any host finished (it could not start, or
    its input was refused): the log's last line says why."""
    # Two runs may start in the same second (lab steps share one folder): the pid parts them.
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    state.mkdir(parents=True, exist_ok=True)
    events = state / f"{kind}-{stamp}.events"
    output = state / f"{kind}-{stamp}.log"
    log(f"{what}; Ansible's output: {output}")
    process = start(command, what=what, log=output, tied=True, cwd=REPO,
                    env=dict(ansible_env(events), ANSIBLE_NOCOLOR="1"))
    progress = Progress(hosts, stages, control_plane_hosts)
    stop = threading.Event()
    reader = threading.Thread(target=_tail, args=(events, progress, stop), daemon=True)
    reader.start()
    while process.poll() is None:
        show(progress)
        time.sleep(0.5)
    stop.set()
    reader.join()
    progress.finished = True
    show(progress)
    _prune(state, kind)
    if progress.stats is None:
        said = last_line(output.read_text(errors="replace")) or "no output"
        raise HardwayError(f"ansible-playbook stopped before any host finished (exit "
                           f"{process.returncode}: {said}); its output is in {output}")
    return progress, output
