"""`hardway class report`: where every student is in the labs, checked on their machines.

Each machine says which lab it is in (/var/lib/hardway-lab/lab, written by `hardway lab
start|solve`); each lab's check runs once over all the machines in it, the labs at once.
A lab that passed once stays passed (kept in the class's state), so a student who moved on keeps the credit.
Per student and lab: pass; fail (with the check's reason and the lab's hint); skipped (a
later lab of the same part was started before this one passed: each part begins from the
provisioned node, so an earlier part is never skipped, only not reached); not reached;
unreachable.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hardway import labs
from hardway.children import ansible_env, last_line, run, tool
from hardway.classroom.model import ClassMachine, Classroom
from hardway.playbook import one_line
from hardway.settings import REPO, HardwayError

MARKER = "/var/lib/hardway-lab/lab"
STATUSES = ("pass", "fail", "skipped", "not reached", "unreachable")


@dataclass
class Cell:
    status: str
    reason: str = ""
    hint: str = ""
    machine: str = ""


@dataclass
class StudentRow:
    student: str
    machines: dict[str, str]  # machine -> "ok" or why it could not be reached
    current: str | None
    labs: dict[str, Cell] = field(default_factory=dict)


@dataclass
class Report:
    name: str
    generated: float
    labs: list[labs.Lab]
    students: list[StudentRow]

    def as_dict(self) -> dict:
        return {
            "class": self.name,
            "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.generated)),
            "parts": [{"name": part.name, "title": part.title, "labs": [lab.id for lab in members]}
                      for part, members in labs.by_part(self.labs)],
            "labs": [{"id": lab.id, "part": lab.part, "title": lab.title, "hint": lab.hint}
                     for lab in self.labs],
            "students": [{"student": s.student, "machines": s.machines, "current": s.current,
                          "labs": {k: asdict(v) for k, v in s.labs.items()}}
                         for s in self.students],
        }

    def counts(self) -> dict[str, dict[str, int]]:
        """Per lab: how many students are in each status."""
        out = {lab.id: dict.fromkeys(STATUSES, 0) for lab in self.labs}
        for row in self.students:
            for lab_id, cell in row.labs.items():
                out[lab_id][cell.status] += 1
        return out


def where(classroom: Classroom, machines: list[ClassMachine]) -> dict[str, tuple[str | None, str]]:
    """Per machine: (the lab it is in or None, "ok" or why it could not be reached)."""
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events"
        command = [tool("ansible"), "lab_nodes",
                   "-i", str(classroom.inventory), "--forks", str(min(50, len(machines))),
                   "-m", "ansible.builtin.shell",
                   "-a", f"cat {MARKER} 2>/dev/null || true"]
        # Unreachable machines make ansible exit non-zero: the events say which they are.
        result = run(command, what=f"asking the machines of {classroom.name} for their lab",
                     check=False, cwd=REPO, env=ansible_env(events))
        lines = events.read_text().splitlines() if events.exists() else []
    found: dict[str, tuple[str | None, str]] = {}
    for line in lines:
        event = json.loads(line)
        if event.get("event") != "result":
            continue
        if event["status"] in ("ok", "changed"):
            lab_id = event["stdout"].strip()
            found[event["host"]] = (lab_id or None, "ok")
        else:
            found[event["host"]] = (None, one_line(event["msg"]) or event["status"])
    if not found:
        said = last_line(result.stderr) or last_line(result.stdout) or "no output"
        raise HardwayError(f"could not ask the machines of {classroom.name} anything "
                           f"(ansible exited {result.returncode}: {said}); `ansible lab_nodes -i "
                           f"{classroom.inventory} -m ping` shows why")
    return found


def _check(lab: labs.Lab, classroom: Classroom, machines: list[str]) -> dict[str, labs.NodeResult]:
    """One run of the lab's check over every machine that is in it."""
    try:
        results = {r.node: r for r in labs.check(lab, classroom.inventory, limit=",".join(machines))}
    except HardwayError as exc:
        results = {}
        reason = str(exc).splitlines()[0]
    else:
        reason = "the check saw no result"
    return {m: results.get(m) or labs.NodeResult(node=m, passed=False, reason=reason, hint=lab.hint)
            for m in machines}


def collect(classroom: Classroom, parallel: int = 10) -> Report:
    all_labs = labs.all_labs()
    by_id = {lab.id: lab for lab in all_labs}
    # Lab ids do not sort in course order (n1 comes before 01): their place in the course does.
    place = {lab.id: index for index, lab in enumerate(all_labs)}
    students = classroom.students()
    machines = [m for ms in students.values() for m in ms]
    seen = where(classroom, machines)
    # The lab each student is in: the furthest lab on any of their machines.
    current: dict[str, str | None] = {}
    to_check: list[tuple[str, str]] = []  # (lab id, machine)
    for student, ms in students.items():
        ids = [i for i in (seen.get(m.name, (None, ""))[0] for m in ms) if i is not None and i in by_id]
        furthest = current[student] = max(ids, key=place.__getitem__) if ids else None
        to_check += [(furthest, m.name) for m in ms
                     if furthest and seen.get(m.name, (None, ""))[0] == furthest]
    by_lab: dict[str, list[str]] = {}
    for lab_id, machine in to_check:
        by_lab.setdefault(lab_id, []).append(machine)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        done = pool.map(lambda job: _check(by_id[job[0]], classroom, job[1]), by_lab.items())
        found = {machine: result for results in done for machine, result in results.items()}
    checked = {(lab_id, machine): found[machine] for lab_id, machine in to_check}
    history = classroom.load("progress")
    now = time.time()
    rows = []
    for student, ms in students.items():
        reach = {m.name: seen.get(m.name, (None, "no answer"))[1] for m in ms}
        passed = history.setdefault(student, {})
        lab_now = current[student]
        results = [r for (lab_id, _), r in checked.items()
                   if lab_id == lab_now and r.node in reach]
        row = StudentRow(student=student, machines=reach, current=lab_now)
        if lab_now and results and all(r.passed for r in results):
            passed.setdefault(lab_now, {"at": now, "machines": [r.node for r in results]})
        for lab in all_labs:
            if lab.id in passed:
                row.labs[lab.id] = Cell("pass", machine=",".join(passed[lab.id]["machines"]))
            elif lab.id == lab_now:
                bad = next(r for r in results if not r.passed)
                row.labs[lab.id] = Cell("fail", bad.reason, lab.hint, bad.node)
            elif all(state != "ok" for state in reach.values()):
                row.labs[lab.id] = Cell("unreachable", "; ".join(
                    f"{name}: {state}" for name, state in reach.items()))
            elif lab_now and lab.part == by_id[lab_now].part and place[lab.id] < place[lab_now]:
                row.labs[lab.id] = Cell("skipped", f"lab {lab_now} was started before this one "
                                        "passed a check", lab.hint)
            else:
                row.labs[lab.id] = Cell("not reached")
        rows.append(row)
    classroom.save("progress", history)
    return Report(name=classroom.name, generated=now, labs=all_labs, students=rows)
