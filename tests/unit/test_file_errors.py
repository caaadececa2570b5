"""Files hardway cannot use, and state files that were damaged, are one line with the fix."""

import pytest
from click.testing import CliRunner

from hardway.classroom.model import Classroom
from hardway.cli import main
from hardway.settings import HardwayError


def test_a_state_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"
    result = CliRunner().invoke(main, ["nodes", "down"],
                                env={"HARDWAY_STATE": str(state)})
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: {state}: Not a directory; part of that path is a file: " \
        "correct the path\n"


def test_a_damaged_node_json_names_the_file_and_what_to_delete(tmp_path):
    folder = tmp_path / "nodes" / "node1"
    folder.mkdir(parents=True)
    (folder / "node.json").write_text('{"name": "node1", ')
    result = CliRunner().invoke(main, ["nodes", "list"], env={"HARDWAY_STATE": str(tmp_path)})
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {folder / 'node.json'} is damaged (JSONDecodeError")
    assert result.stderr.endswith(f"then delete {folder}\n")


def classroom(tmp_path, inventory: str) -> Classroom:
    (tmp_path / "hosts.yml").write_text(inventory)
    return Classroom(name="c", folder=tmp_path, state=tmp_path / "state")


def test_a_damaged_class_record_is_named(tmp_path):
    room = classroom(tmp_path, "")
    room.state.mkdir()
    (room.state / "progress.json").write_text("{")
    with pytest.raises(HardwayError, match=r"progress.json is damaged .*: delete it"):
        room.load("progress")


@pytest.mark.parametrize("inventory", ["all: [", "- a list\n", "all: {children: {lab_nodes: 3}}\n"])
def test_a_class_inventory_that_is_not_ours_is_named(tmp_path, inventory):
    with pytest.raises(HardwayError, match="is not an inventory hardway wrote"):
        classroom(tmp_path, inventory).machines()
