"""Text from outside is data (issue 13): roster fields, node output and check reasons reach
the terminal as they are, never as Rich markup."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hardway import cli, labs
from hardway.classroom.report import Cell, Report, StudentRow
from hardway.labs import Lab, NodeResult
from hardway.settings import UsageError

MARKUP = "[/red] [bold]x[/bold] :thumbs_up:"


def run(tmp_path: Path, *args: str):
    env = {"HARDWAY_CLASSES": str(tmp_path / "classes"), "HARDWAY_STATE": str(tmp_path / "state"),
           "HARDWAY_CACHE": str(tmp_path / "cache"), "NO_COLOR": "1"}
    return CliRunner().invoke(cli.main, list(args), env=env)


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def test_an_error_message_is_printed_as_it_is(tmp_path):
    roster = tmp_path / "roster[draft].csv"
    roster.write_text("student,machine1,port\nada,192.0.2.1,[/red]\n")
    result = run(tmp_path, "class", "init", str(roster), "--name", "k8s")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    [line] = error_lines(result)
    assert f"error: {roster}: 1 problem(s)" in line
    assert "row 2: port '[/red]' is not a port" in result.output


def test_the_handled_decorator_does_not_parse_the_exception(capsys):
    @cli.handled
    def fails() -> None:
        raise UsageError(MARKUP)

    try:
        fails()
    except SystemExit as exc:
        assert exc.code == 2
    assert capsys.readouterr().err == f"error: {MARKUP}\n"


def test_a_check_reason_from_a_node_is_printed_as_it_is(tmp_path, monkeypatch):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all: {}\n")
    monkeypatch.setattr(labs, "check", lambda *a, **k: [
        NodeResult(node="n1", passed=False, reason=MARKUP, hint=MARKUP),
        NodeResult(node="n2", passed=False, reason=MARKUP, starting=True)])
    result = run(tmp_path, "lab", "check", "01", "-i", str(inventory))
    assert result.exit_code == 1, result.output
    assert f"FAIL n1: {MARKUP}" in result.output and f"hint: {MARKUP}" in result.output
    assert f"WAIT n2: {MARKUP}" in result.output


def test_tables_and_the_class_report_print_data_as_it_is(capsys):
    cli.print_table(f"class {MARKUP}", ["machine", "reason"], [["m1", MARKUP]], "table")
    lab = Lab(id="01", folder="01-x", title=MARKUP, goal="g", hint=MARKUP)
    cli.print_report(Report(name=MARKUP, generated=0, labs=[lab], students=[
        StudentRow(MARKUP, {"m1": MARKUP}, "01", {"01": Cell("fail", MARKUP, MARKUP, "m1")})]))
    out = capsys.readouterr().out
    # Two titles, the table cell, the student cell, and five lines under the report.
    assert out.count("[/red]") == out.count(":thumbs_up:") == 9
    assert f"{MARKUP}: m1 unreachable: {MARKUP}" in out and f"hint: {MARKUP}" in out
