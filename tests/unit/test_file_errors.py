"""Files hardway cannot use, and state files that were damaged, are one line with the fix."""

from click.testing import CliRunner

from hardway.cli import main


def test_a_state_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"
    result = CliRunner().invoke(main, ["nodes", "restart", "node1"],
                                env={"HARDWAY_STATE": str(state)})
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: {state}: Not a directory; part of that path is a file: " \
        "correct the path\n"
