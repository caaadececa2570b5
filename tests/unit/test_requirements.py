"""requirements.yml names every collection the Ansible content uses, and what is installed
satisfies it."""

import json
import re
from pathlib import Path

import ansible_collections
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.conftest import REPO

REQUIREMENTS = yaml.safe_load((REPO / "requirements.yml").read_text())["collections"] or []
# A module or plugin named by its FQCN: namespace.collection.name, as a task key or in Jinja.
FQCN = re.compile(r"\b([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b")
CONTENT = ["site.yml", "playbooks", "roles", "labs", "molecule"]


def installed_version(name: str) -> str | None:
    namespace, collection = name.split(".")
    for root in ansible_collections.__path__:
        manifest = Path(root) / namespace / collection / "MANIFEST.json"
        if manifest.exists():
            return json.loads(manifest.read_text())["collection_info"]["version"]
    return None


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=[r["name"] for r in REQUIREMENTS])
def test_the_installed_collection_satisfies_requirements_yml(requirement):
    version = installed_version(requirement["name"])
    assert version is not None, f"{requirement['name']} is not installed: make venv"
    wanted = SpecifierSet(requirement.get("version", ">=0"))
    assert Version(version) in wanted, f"{requirement['name']} {version} is not {wanted}"


def used_collections() -> set[str]:
    files = [p for entry in CONTENT for p in (
        [REPO / entry] if (REPO / entry).is_file() else (REPO / entry).rglob("*.yml"))]
    used = set()
    for path in files:
        for namespace, collection in FQCN.findall(path.read_text()):
            if installed_version(f"{namespace}.{collection}") or namespace in {"ansible", "community"}:
                used.add(f"{namespace}.{collection}")
    return used


def test_requirements_yml_names_exactly_the_collections_the_content_uses():
    declared = {r["name"] for r in REQUIREMENTS}
    assert used_collections() - {"ansible.builtin"} == declared
