"""A non-root login with passwordless sudo: every play that touches a node becomes root,
and every task that runs on the controller stays the controller's user (its HOME, its
cache), never root there."""

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PLAYBOOKS = sorted([REPO / "site.yml", *(REPO / "playbooks").glob("*.yml")])
TASK_FILES = sorted([*(REPO / "roles").glob("*/tasks/*.yml"), *(REPO / "roles").glob("*/handlers/*.yml"),
                     *(REPO / "playbooks" / "tasks").glob("*.yml")])
BLOCKS = ("block", "rescue", "always")


def plays(path: Path) -> list[dict]:
    return [p for p in yaml.safe_load(path.read_text()) or [] if "hosts" in p]


def tasks(items: list[dict] | None):
    """Every task, blocks opened up."""
    for item in items or []:
        if any(key in item for key in BLOCKS):
            for key in BLOCKS:
                yield from tasks(item.get(key))
        else:
            yield item


def on_controller(task: dict) -> dict | None:
    """The keywords a task runs with when it runs on the controller, else None."""
    include = task.get("ansible.builtin.include_tasks")
    apply = include.get("apply", {}) if isinstance(include, dict) else {}
    for keywords in (task, apply):
        if "local_action" in keywords or "localhost" in str(keywords.get("delegate_to", "")):
            return keywords
    return None


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.name)
def test_every_node_play_becomes_root(path):
    for play in plays(path):
        if play["hosts"] != "localhost":
            assert play.get("become") is True, f"{path.name}: play {play['name']!r}"


@pytest.mark.parametrize("path", [*PLAYBOOKS, *TASK_FILES], ids=lambda p: str(p.relative_to(REPO)))
def test_controller_tasks_do_not_become_root_there(path):
    found = [*tasks(yaml.safe_load(path.read_text()) or [])] if path in TASK_FILES else [
        task for play in plays(path) for key in ("pre_tasks", "tasks", "post_tasks", "handlers")
        for task in tasks(play.get(key))]
    for task in found:
        keywords = on_controller(task)
        if keywords is not None:
            assert keywords.get("become") is False, f"{path.name}: {task['name']}"


def test_the_scan_sees_the_controller_tasks():
    names = [task["name"] for path in TASK_FILES for task in tasks(yaml.safe_load(path.read_text()))
             if on_controller(task) is not None]
    assert "fetch | Once for every host, on the controller" in names
    assert "fetch | Unpacked once, on the controller" in names


def test_the_controller_cache_lives_in_the_controller_users_home():
    value = yaml.safe_load((REPO / "roles/download/defaults/main.yml").read_text())[
        "download_controller_cache_dir"]
    assert value.startswith("{{ lookup('ansible.builtin.env', 'HOME') }}/"), value
