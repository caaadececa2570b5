"""`hardway class up`: one plain ssh login per machine to learn new host keys, then
playbooks/class.yml on every machine at once, with progress per stage while it runs and, at
the end, which machines are ready and why the others are not.

The Ansible output goes to a log file under the class's state (hardway.playbook).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from hardway import labs, playbook
from hardway.children import run, tool
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


def results(progress: Progress, students: dict[str, str],
            refused: dict[str, str] | None = None) -> list[MachineResult]:
    """Each machine's outcome; an unreachable one's reason is what ssh said when `class up`
    logged in (refused, from learn_host_keys) if it could not, else Ansible's message."""
    refused = refused or {}
    out = []
    for host in progress.hosts:
        stage, task, msg = progress.failure.get(host, ("", "", ""))
        outcome = progress.outcome(host)
        if outcome == "not run":
            out.append(MachineResult(host, students[host], "not run",
                                     reason="the run ended before this machine was reached"))
        elif outcome == "unreachable":
            out.append(MachineResult(host, students[host], "unreachable", stage,
                                     refused.get(host) or one_line(msg) or "no SSH connection"))
        elif outcome == "failed":
            out.append(MachineResult(host, students[host], "failed", stage, f"{task}: {one_line(msg)}"))
        else:
            out.append(MachineResult(host, students[host], "ready", "ready"))
    return out


def learn_host_keys(inventory: Path, names: list[str]) -> dict[str, str]:
    """Trust each machine's SSH host key on first contact, as ssh's accept-new does, into the
    class's known_hosts (the inventory's ansible_ssh_common_args say both). Mitogen, which
    runs the plays, puts `StrictHostKeyChecking yes` ahead of the inventory's options, and
    ssh takes the first value it is given: a machine it has never seen would be refused.
    Returns, per machine ssh could not log in to, what ssh said (a changed host key, no
    route): clearer than what Mitogen makes of it."""
    machines = [target for target in labs.targets(inventory) if target.name in names]
    if not machines:
        return {}
    with tempfile.TemporaryDirectory(prefix="hardway-keys-") as folder:
        config = Path(folder) / "ssh_config"
        config.write_text(labs.ssh_config(machines))

        def login(machine: labs.Target) -> tuple[str, str]:
            # A connection of its own (not one a check left open, which would skip the key)
            # and no login banner in what ssh says.
            result = run(["ssh", "-F", str(config), "-o", "ControlMaster=no", "-o", "ControlPath=none",
                          "-o", "LogLevel=ERROR", machine.name, "true"], check=False,
                         timeout=30, what=f"learning {machine.name}'s host key")
            if result.returncode == 0:
                return machine.name, ""
            said = one_line(result.stdout + result.stderr)
            return machine.name, said or f"ssh exited with {result.returncode}"

        with ThreadPoolExecutor(max_workers=min(32, len(machines))) as pool:
            return {name: said for name, said in pool.map(login, machines) if said}


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
    log(f"logging in to {len(names)} machine(s) once, to learn new ones' host keys")
    refused = learn_host_keys(classroom.inventory, names)
    planes = classroom.control_plane_machines()
    progress, _ = playbook.run(command, hosts=names, stages=site_stages(bool(planes), CLASS_END),
                               control_plane_hosts=tuple(planes), state=classroom.state,
                               kind="up", show=show, log=log,
                               what=f"provisioning {len(names)} machine(s) with {forks} forks")
    merged = {n: v for n, v in previous.items() if n in students}
    merged.update({r.machine: asdict(r) for r in results(progress, students, refused)})
    classroom.save("up", merged)
    # The whole class, in roster order: after --retry-failed too.
    return [MachineResult(**merged[n]) if n in merged else
            MachineResult(n, s, "not run", reason="never provisioned") for n, s in students.items()]
