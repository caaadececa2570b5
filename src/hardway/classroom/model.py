"""One class on disk: its inventory folder (written by `class init`) and its state (the
last `class up` and every lab pass seen by `class report`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hardway.settings import HardwayError, Settings, UsageError


def one_line(text: str) -> str:
    """One line of an Ansible failure message; for a failed SSH connection, what ssh said."""
    text = " ".join(text.split()).removeprefix("Task failed: ")
    changed = re.search(r"Host key for (\S+) has changed", text)
    offending = re.search(r"Offending \S+ key in (\S+):\d+", text)
    if changed and offending:
        return (f"the SSH host key of {changed[1]} changed since the class first reached it "
                f"(a reinstalled machine?); if that is expected: ssh-keygen -R {changed[1]} "
                f"-f {offending[1]}")
    if "ssh: " in text:
        text = text[text.rindex("ssh: "):]
    return text[:300]


@dataclass(frozen=True)
class Machine:
    name: str
    student: str
    address: str


@dataclass(frozen=True)
class Classroom:
    name: str
    folder: Path
    state: Path

    @classmethod
    def open(cls, settings: Settings, name: str) -> Classroom:
        folder = settings.classes / name
        if not (folder / "hosts.yml").exists():
            known = sorted(p.parent.name for p in settings.classes.glob("*/roster.csv"))
            raise UsageError(f"no class {name!r} in {settings.classes}: create it with "
                             "`hardway class init ROSTER.csv --name NAME`"
                             + (f" (classes here: {', '.join(known)})" if known else ""))
        return cls(name=name, folder=folder, state=settings.state / "classes" / name)

    @property
    def inventory(self) -> Path:
        return self.folder / "hosts.yml"

    def machines(self) -> list[Machine]:
        try:
            data = yaml.safe_load(self.inventory.read_text()) or {}
            hosts = data.get("all", {}).get("children", {}).get("lab_nodes", {}).get("hosts") or {}
        except (yaml.YAMLError, AttributeError) as exc:
            raise HardwayError(f"{self.inventory} is not an inventory hardway wrote "
                               f"({type(exc).__name__}): fix it, or re-run `hardway class init "
                               "--force`") from None
        if not isinstance(hosts, dict) or not hosts:
            raise HardwayError(f"{self.inventory} has no machines in group lab_nodes: "
                               "re-run `hardway class init --force`")
        return [Machine(name=name, student=str((v or {}).get("lab_student", name)),
                        address=str((v or {}).get("ansible_host", name)))
                for name, v in hosts.items()]

    def students(self) -> dict[str, list[Machine]]:
        found: dict[str, list[Machine]] = {}
        for machine in self.machines():
            found.setdefault(machine.student, []).append(machine)
        return found

    def load(self, what: str) -> dict:
        path = self.state / f"{what}.json"
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise HardwayError(f"{path} is damaged ({exc}): delete it to start this record "
                               "over") from None

    def save(self, what: str, data: dict) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        path = self.state / f"{what}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, path)
