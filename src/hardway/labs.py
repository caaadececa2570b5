"""The labs under labs/: list them, run their Ansible steps, and run their checks.

A lab is a folder `labs/NN-slug/` with lab.yml, README.md, files/, start.yml (optional),
solve.yml and check.py; nothing here knows any lab by name.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from hardway.children import ansible_env, run_tied, tool
from hardway.settings import REPO, HardwayError, UsageError

LABS = REPO / "labs"


@dataclass(frozen=True)
class Lab:
    id: str
    folder: str
    title: str
    goal: str
    hint: str

    @property
    def path(self) -> Path:
        return LABS / self.folder


def all_labs() -> list[Lab]:
    labs = []
    for meta in sorted(LABS.glob("[0-9][0-9]-*/lab.yml")):
        data = yaml.safe_load(meta.read_text())
        labs.append(Lab(id=str(data["id"]), folder=meta.parent.name, title=data["title"],
                        goal=data["goal"], hint=" ".join(str(data["hint"]).split())))
    return labs


def find(lab_id: str) -> Lab:
    labs = all_labs()
    wanted = lab_id.zfill(2) if lab_id.isdigit() else lab_id
    for lab in labs:
        if wanted in (lab.id, lab.folder):
            return lab
    raise UsageError(f"no lab {lab_id!r}: choose one of {', '.join(lab.id for lab in labs)} "
                     "(`hardway lab list`)")


def run_steps(inventory: Path, reset: bool, solve: list[Lab], stage: Lab | None,
              limit: str | None = None, shortcut: Lab | None = None) -> None:
    extra = {"lab_run": str(time.time_ns()), "lab_reset": reset,
             "lab_shortcut_id": shortcut.id if shortcut else "",
             "lab_solve": [lab.folder for lab in solve],
             "lab_stage": stage.id if stage else "", "lab_dir": stage.folder if stage else ""}
    command = [tool("ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks/lab.yml"),
               "-e", yaml.safe_dump(extra, default_flow_style=True).strip()]
    if limit:
        command += ["--limit", limit]
    if run_tied(command, REPO, ansible_env()) != 0:
        raise HardwayError("the lab step failed on at least one node (see above)")


def start(lab: Lab, inventory: Path, limit: str | None = None) -> None:
    """Reset, apply every earlier lab's solution, set the stage for this one."""
    earlier = [other for other in all_labs() if other.id < lab.id]
    run_steps(inventory, reset=True, solve=earlier, stage=lab, limit=limit)


def solve(lab: Lab, inventory: Path, limit: str | None = None) -> None:
    """Reach this lab's end state: on a node where the lab was started, its own solution;
    anywhere else, reset and every solution up to it."""
    upto = [other for other in all_labs() if other.id <= lab.id]
    run_steps(inventory, reset=True, solve=upto, stage=None, limit=limit, shortcut=lab)


def reset(inventory: Path, limit: str | None = None) -> None:
    run_steps(inventory, reset=True, solve=[], stage=None, limit=limit)


@dataclass
class NodeResult:
    node: str
    passed: bool
    reason: str = ""
    hint: str = ""
    checks: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


_ID = re.compile(r"^(?P<test>[^\[]+)\[(?:ansible://)?(?P<node>[^\]]+)\]$")


def _reason(failure: ET.Element) -> str:
    """The assertion's own message, without pytest's introspection."""
    text = failure.get("message") or failure.text or "failed"
    first = text.strip().splitlines()[0]
    return first.removeprefix("AssertionError: ").strip()


def check(lab: Lab, inventory: Path, limit: str | None = None) -> list[NodeResult]:
    """Run the lab's check on every node; one result per node, failures with a reason."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        hosts = f"ansible://{limit or 'lab_nodes'}"
        command = [tool("pytest"), str(lab.path / "check.py"), f"--hosts={hosts}",
                   f"--ansible-inventory={inventory}", "-p", "no:cacheprovider",
                   "-q", "--tb=no", f"--junitxml={report}", "-o", "junit_family=xunit2",
                   f"--rootdir={LABS}"]
        result = subprocess.run(command, cwd=LABS, env=ansible_env(), capture_output=True, text=True)
        if not report.exists():
            raise HardwayError(f"the check for lab {lab.id} could not run:\n"
                               f"{(result.stdout + result.stderr)[-2000:]}")
        tree = ET.parse(report)
    results: dict[str, NodeResult] = {}
    for case in tree.iter("testcase"):
        match = _ID.match(case.get("name", ""))
        if not match:
            continue
        node, test = match["node"], match["test"].removeprefix("test_").replace("_", " ")
        entry = results.setdefault(node, NodeResult(node=node, passed=True))
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        entry.checks.append({"check": test, "passed": failure is None,
                             "reason": _reason(failure) if failure is not None else ""})
        if failure is not None and entry.passed:
            entry.passed, entry.reason, entry.hint = False, _reason(failure), lab.hint
    if not results:
        raise HardwayError(f"the check for lab {lab.id} found no nodes in {inventory} "
                           f"(group lab_nodes):\n{(result.stdout + result.stderr)[-1500:]}")
    return [results[name] for name in sorted(results)]
