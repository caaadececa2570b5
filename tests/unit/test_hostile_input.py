"""Text from outside is data (issue 13): roster fields, node output and check reasons reach
the terminal as they are, never as Rich markup."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hardway import cli, labs
from hardway.classroom import report
from hardway.classroom.report import Cell, Report, StudentRow
from hardway.labs import Lab, NodeResult
from hardway.settings import UsageError

MARKUP = "[/red] [bold]x[/bold] :thumbs_up:"


def run(tmp_path: Path, *args: str, **env: str):
    env = {"HARDWAY_CLASSES": str(tmp_path / "classes"), "HARDWAY_STATE": str(tmp_path / "state"),
           "HARDWAY_CACHE": str(tmp_path / "cache"), "NO_COLOR": "1", **env}
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


HEADER = "student,machine1,machine2,user,port,key\n"


def lines(*rows: str) -> bytes:
    return (HEADER + "".join(f"{row}\n" for row in rows)).encode()


BAD_INIT = [
    # (id, roster bytes, extra options, env changes, what the error says)
    ("binary", bytes(range(256)) * 4, [], {},
     "holds NUL bytes, so it is binary or UTF-16: save the roster as CSV UTF-8"),
    ("nul-in-field", lines("ada,192.0.2.1\0,,,,"), [], {}, "holds NUL bytes"),
    ("latin-1", lines("adé,192.0.2.1,,,,").decode().encode("latin-1"), [], {},
     "is not UTF-8 text (byte 0xe9 at offset 42): save the roster as CSV UTF-8"),
    ("huge-field", lines(f"ada,{'a' * 140_000},,,,"), [], {},
     "row 2: a field is longer than 4096 characters"),
    ("huge-file", lines(*[f"s{i},192.0.2.1,,,{'#' * 200}," for i in range(6000)]), [], {},
     "is larger than 1 MiB"),
    ("markup-port", lines("ada,192.0.2.1,,,[/red],"), [], {}, "row 2: port '[/red]' is not a port"),
    ("template-user", lines("ada,127.0.0.1,,\"{{ lookup('pipe','id > PWNED; echo root') }}\",1,"),
     [], {}, "row 2: user \"{{ lookup('pipe','id > PWNED; echo root') }}\" is not a login name"),
    ("option-user", lines("ada,127.0.0.1,,-oProxyCommand=id,,"), [], {},
     "row 2: user '-oProxyCommand=id' is not a login name"),
    ("template-key", lines("ada,127.0.0.1,,,,\"{{lookup('pipe','touch X')}}\""), [], {},
     "row 2: key path \"{{lookup('pipe','touch X')}}\" holds {{, {%, {# or a double quote"),
    ("superscript-port", lines("ada,192.0.2.1,,,²,"), [], {}, "row 2: port '²' is not a port"),
    ("scoped-address", lines("ada,fe80::1%$(id),,,,"), [], {},
     "row 2: machine1 'fe80::1%$(id)' has a scope (%...), which hardway does not take"),
    ("control-char", lines("ada,192.0.2.1,,ro\x1b[2Jot,,"), [], {},
     "row 2: a control character in user"),
    ("machine-in-service-range", lines("ada,10.32.0.5,,,,"), [], {},
     "row 2: machine 10.32.0.5 lies in lab_service_cidr 10.32.0.0/24"),
    ("utf-16", "student,machine1\n".encode("utf-16"), [], {}, "holds NUL bytes"),
    ("loopback-pod-range", lines("ada,192.0.2.1,,,,"), ["--pod-range", "127.0.0.0/16"], {},
     "--pod-range 127.0.0.0/16 overlaps 127.0.0.0/8 (loopback)"),
    ("metadata-pod-range", lines("ada,192.0.2.1,,,,"), ["--pod-range", "169.254.0.0/16"], {},
     "link-local, with the cloud metadata address"),
    ("zero-pod-range", lines("ada,192.0.2.1,,,,"), ["--pod-range", "0.0.0.0/16"], {},
     "'this network', which no host can use"),
    ("reserved-pod-range", lines("ada,192.0.2.1,,,,"), ["--pod-range", "240.0.0.0/16"], {},
     "240.0.0.0/4 (reserved)"),
    ("service-pod-range", lines("ada,192.0.2.1,,,,"), ["--pod-range", "10.32.0.0/16"], {},
     "overlaps lab_service_cidr 10.32.0.0/24"),
    ("path-name", lines("ada,192.0.2.1,,,,"), ["--name", "../outside"], {},
     "class name '../outside' is not usable as a folder name"),
    ("classes-is-a-file", lines("ada,192.0.2.1,,,,"), [], {"HARDWAY_CLASSES": "file"},
     "is a file: point it at a folder"),
    ("subnet-in-local-pods", lines("ada,192.0.2.1,,,,"), [], {"HARDWAY_SUBNET": "10.240.1.0/24"},
     "HARDWAY_SUBNET=10.240.1.0/24: 10.240.1.0/24 overlaps the local pod networks 10.240.0.0/16"),
    ("latin-1-vars", lines("ada,192.0.2.1,,,,"), ["--vars", "vars.yml"], {},
     "--vars vars.yml: cannot read it as YAML"),
    ("no-roster", None, [], {}, "no roster at"),
]


@pytest.mark.parametrize(("roster", "options", "env", "message"),
                         [case[1:] for case in BAD_INIT], ids=[case[0] for case in BAD_INIT])
def test_class_init_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, monkeypatch, roster,
                                                                    options, env, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "vars.yml").write_bytes("note: café\n".encode("latin-1"))
    if roster is not None:
        (tmp_path / "roster.csv").write_bytes(roster)
    result = run(tmp_path, "class", "init", "roster.csv", "--name", "k8s", *options, **env)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert len(error_lines(result)) == 1, result.output
    assert message in result.output
    assert not (tmp_path / "classes").exists() and not (tmp_path / "PWNED").exists()
    assert (tmp_path / "file").read_text() == "not a folder\n"


def test_a_roster_saved_with_a_bom_is_read(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_bytes(b"\xef\xbb\xbf" + lines("ada,192.0.2.1,192.0.2.2,,,"))
    result = run(tmp_path, "class", "init", str(roster), "--name", "k8s")
    assert result.exit_code == 0, result.output
    assert "ada-2" in (tmp_path / "classes/k8s/hosts.yml").read_text()


def test_class_report_refuses_a_missing_html_folder_before_checking_machines(tmp_path,
                                                                             monkeypatch):
    roster = tmp_path / "roster.csv"
    roster.write_bytes(lines("ada,192.0.2.1,192.0.2.2,,,"))
    assert run(tmp_path, "class", "init", str(roster), "--name", "k8s").exit_code == 0
    monkeypatch.setattr(report, "collect", lambda *a: pytest.fail("checked the machines"))
    result = run(tmp_path, "class", "report", "k8s", "--html", str(tmp_path / "no/such/r.html"))
    assert result.exit_code == 2, result.output
    assert error_lines(result) == [f"error: --html {tmp_path}/no/such/r.html: the folder "
                                   f"{tmp_path}/no/such does not exist: create it, or write the "
                                   "page elsewhere"]


@pytest.mark.parametrize("command", [["up", "k8s"], ["report", "k8s"]])
def test_classes_folder_that_is_a_file_is_named(tmp_path, command):
    (tmp_path / "file").write_text("")
    result = run(tmp_path, "class", *command, HARDWAY_CLASSES=str(tmp_path / "file"))
    assert result.exit_code == 2
    assert error_lines(result) == [f"error: HARDWAY_CLASSES={tmp_path}/file is a file: point it "
                                   "at a folder (or unset it for inventories/)"]
