"""`hardway class up`: playbooks/class.yml on every machine at once, with progress per
stage while it runs and, at the end, which machines are ready and why the others are not.

The Ansible output goes to a log file under the class's state (hardway.playbook).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from hardway import playbook
from hardway.children import tool
from hardway.classroom.model import Classroom
from hardway.playbook import CLASS_END, Progress, one_line, site_stages
from hardway.settings import REPO, Settings, UsageError


@dataclass
class MachineResult:
    machine: str
    student: str
    status: str  # ready, failed, unreachable, not run
    stage: str = ""
    reason: str = ""


def results(progress: Progress, students: dict[str, str]) -> list[MachineResult]:
    out = []
    for host in progress.hosts:
        stage, task, msg = progress.failure.get(host, ("", "", ""))
        outcome = progress.outcome(host)
        if outcome == "not run":
            out.append(MachineResult(host, students[host], "not run",
                                     reason="the run ended before this machine was reached"))
        elif outcome == "unreachable":
            out.append(MachineResult(host, students[host], "unreachable", stage,
                                     one_line(msg) or "no SSH connection"))
        elif outcome == "failed":
            out.append(MachineResult(host, students[host], "failed", stage, f"{task}: {one_line(msg)}"))
        else:
            out.append(MachineResult(host, students[host], "ready", "ready"))
    return out


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
    command = [tool("ansible-playbook"), "-i", str(classroom.inventory), str(REPO / "playbooks/class.yml"),
               "--forks", str(forks),
               "-e", f"download_controller_cache_dir={settings.cache / 'class-downloads'}"]
    if retry_failed:
        command += ["--limit", ",".join(names)]
    planes = classroom.control_plane_machines()
    progress, _ = playbook.run(command, hosts=names, stages=site_stages(bool(planes), CLASS_END),
                               control_plane_hosts=tuple(planes), state=classroom.state,
                               kind="up", show=show, log=log,
                               what=f"provisioning {len(names)} machine(s) with {forks} forks")
    merged = {n: v for n, v in previous.items() if n in students}
    merged.update({r.machine: asdict(r) for r in results(progress, students)})
    classroom.save("up", merged)
    # The whole class, in roster order: after --retry-failed too.
    return [MachineResult(**merged[n]) if n in merged else
            MachineResult(n, s, "not run", reason="never provisioned") for n, s in students.items()]
