"""`hardway class up`: playbooks/class.yml on every machine at once, with progress per
stage while it runs and, at the end, which machines are ready and why the others are not.

The Ansible output goes to a log file under the class's state; the progress comes from
the hardway_progress callback (callback_plugins/), one JSON event per line.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from hardway.children import ansible_env, last_line, start, tool
from hardway.classroom.model import Classroom, one_line
from hardway.settings import REPO, HardwayError, Settings, UsageError

STAGES = ("preflight", "facts", "node_prereqs", "runc", "cni_plugins", "crictl", "containerd",
          "lab_images", "kubelet", "cni_config", "ready")


@dataclass
class MachineResult:
    machine: str
    student: str
    status: str  # ready, failed, unreachable, not run
    stage: str = ""
    reason: str = ""


class Progress:
    """What the events say so far: per machine, the stage of its last result, whether that
    result was a failure (a rescued failure is followed by more results), and why."""

    def __init__(self, machines: list[str]):
        self.machines = machines
        self.reached: dict[str, int] = {}
        self.down: set[str] = set()
        self.failure: dict[str, tuple[str, str, str]] = {}
        self.stats: dict[str, dict] | None = None
        self.finished = False  # the playbook has exited

    def feed(self, event: dict) -> None:
        if event["event"] == "stats":
            self.stats = event["hosts"]
            return
        if event["event"] != "result":
            return
        host = event["host"]
        # A role outside STAGES (download) works for the role that included it.
        if event["stage"] in STAGES:
            self.reached[host] = max(self.reached.get(host, 0), STAGES.index(event["stage"]))
        if event["status"] in ("failed", "unreachable"):
            self.down.add(host)
            self.failure[host] = (STAGES[self.reached.get(host, 0)], event["task"], event["msg"])
        else:
            self.down.discard(host)

    def stage_rows(self) -> list[tuple[str, int, int, int]]:
        """Per stage: machines past it, machines working in it, machines stopped in it."""
        rows = []
        for index, stage in enumerate(STAGES):
            at = [h for h in self.machines if self.reached.get(h, -1) == index]
            stopped = [h for h in at if h in self.down]
            past = sum(1 for h in self.machines if self.reached.get(h, -1) > index)
            if self.stats is not None:
                past += len(at) - len(stopped)
                working = 0
            else:
                working = len(at) - len(stopped)
            rows.append((stage, past, working, len(stopped)))
        return rows

    def results(self, students: dict[str, str]) -> list[MachineResult]:
        out = []
        for host in self.machines:
            summary = (self.stats or {}).get(host)
            if summary is None:
                out.append(MachineResult(host, students[host], "not run",
                                         reason="the run ended before this machine was reached"))
            elif summary.get("unreachable"):
                stage, _, msg = self.failure.get(host, ("", "", ""))
                out.append(MachineResult(host, students[host], "unreachable", stage,
                                         one_line(msg) or "no SSH connection"))
            elif summary.get("failures"):
                stage, task, msg = self.failure.get(host, ("", "", ""))
                out.append(MachineResult(host, students[host], "failed", stage,
                                         f"{task}: {one_line(msg)}"))
            else:
                out.append(MachineResult(host, students[host], "ready", "ready"))
        return out


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


def up(settings: Settings, classroom: Classroom, retry_failed: bool, forks: int | None,
       show: Callable[[Progress], None], log: Callable[[str], None]) -> list[MachineResult]:
    machines = classroom.machines()
    students = {m.name: m.student for m in machines}
    names = [m.name for m in machines]
    previous = classroom.load("up")
    if retry_failed:
        if not previous:
            raise UsageError(f"no earlier `hardway class up {classroom.name}` to retry: run it "
                             "without --retry-failed first")
        names = [n for n in names if previous.get(n, {}).get("status") != "ready"]
        if not names:
            log("every machine was ready after the last run: nothing to retry")
            return [MachineResult(**previous[n]) for n in students]
    forks = forks or min(50, max(5, len(names)))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    classroom.state.mkdir(parents=True, exist_ok=True)
    events = classroom.state / f"up-{stamp}.events"
    output = classroom.state / f"up-{stamp}.log"
    command = [tool("ansible-playbook"), "-i", str(classroom.inventory), str(REPO / "playbooks/class.yml"),
               "--forks", str(forks),
               "-e", f"download_controller_cache_dir={settings.cache / 'class-downloads'}",
               "-e", f"lab_images_controller_cache_dir={settings.cache / 'class-downloads/images'}"]
    if retry_failed:
        command += ["--limit", ",".join(names)]
    log(f"provisioning {len(names)} machine(s) with {forks} forks; Ansible's output: {output}")
    process = start(command, what="provisioning the class", log=output, tied=True, cwd=REPO,
                    env=dict(ansible_env(events), ANSIBLE_NOCOLOR="1"))
    progress = Progress(names)
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
    if progress.stats is None:
        said = last_line(output.read_text(errors="replace")) or "no output"
        raise HardwayError(f"ansible-playbook stopped before any machine finished (exit "
                           f"{process.returncode}: {said}); its output is in {output}")
    merged = {n: v for n, v in previous.items() if n in students}
    merged.update({r.machine: asdict(r) for r in progress.results(students)})
    classroom.save("up", merged)
    # The whole class, in roster order: after --retry-failed too.
    return [MachineResult(**merged[n]) if n in merged else
            MachineResult(n, s, "not run", reason="never provisioned") for n, s in students.items()]
