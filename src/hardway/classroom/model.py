"""One class on disk: its inventory folder (written by `class init`) and its state (the
last `class up` and every lab pass seen by `class report`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hardway.files import atomic_write
from hardway.settings import HardwayError, Settings, UsageError


class Unsafe(str):
    """A string Ansible must never template: written to an inventory with the !unsafe tag."""


class _Dumper(yaml.SafeDumper):
    pass


class _Loader(yaml.SafeLoader):
    pass


_Dumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", value))


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


_Loader.add_constructor("!unsafe", _construct_unsafe)


def unsafe(data):
    """Every string value in data (not the mapping keys) marked Unsafe."""
    if isinstance(data, str):
        return Unsafe(data)
    if isinstance(data, dict):
        return {key: unsafe(value) for key, value in data.items()}
    if isinstance(data, list):
        return [unsafe(value) for value in data]
    return data


def dump_yaml(data) -> str:
    """YAML for Ansible, Unsafe strings tagged !unsafe."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False)


def load_yaml(text: str):
    """YAML as dump_yaml writes it: !unsafe strings read as plain strings."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader with one more tag


_CLASS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")


def check_class_name(name: str) -> None:
    """A class name is a folder name under the classes folder and under the state, never a path."""
    if not _CLASS.match(name):
        raise UsageError(f"class name {name!r} is not usable as a folder name: use lower-case "
                         "letters, digits, dashes and underscores, e.g. k8s-net-2026")


@dataclass(frozen=True)
class ClassMachine:
    """A machine as a class's inventory holds it, for `class up` and `class report`."""

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
        check_class_name(name)
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

    def _group(self, group: str) -> dict:
        """The hosts of one group of the inventory (empty if it has none)."""
        try:
            data = load_yaml(self.inventory.read_text()) or {}
            hosts = data.get("all", {}).get("children", {}).get(group, {}).get("hosts") or {}
        except (yaml.YAMLError, AttributeError) as exc:
            raise HardwayError(f"{self.inventory} is not an inventory hardway wrote "
                               f"({type(exc).__name__}): fix it, or re-run `hardway class init "
                               "--force`") from None
        return hosts

    def control_plane_machines(self) -> list[str]:
        return list(self._group("control_plane"))

    def machines(self) -> list[ClassMachine]:
        hosts = self._group("lab_nodes")
        if not isinstance(hosts, dict) or not hosts:
            raise HardwayError(f"{self.inventory} has no machines in group lab_nodes: "
                               "re-run `hardway class init --force`")
        return [ClassMachine(name=name, student=str((v or {}).get("lab_student", name)),
                        address=str((v or {}).get("ansible_host", name)))
                for name, v in hosts.items()]

    def students(self) -> dict[str, list[ClassMachine]]:
        found: dict[str, list[ClassMachine]] = {}
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
        atomic_write(self.state / f"{what}.json", json.dumps(data, indent=2, sort_keys=True).encode())
