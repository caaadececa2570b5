"""One way to run a child: every way a child can go wrong is one line with its fix."""

import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hardway import children
from hardway.children import ChildError
from hardway.cli import main
from hardway.nodes import cgroups
from hardway.nodes.lifecycle import LocalLab, Node
from hardway.settings import HardwayError, Settings

PY = sys.executable


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    assert isinstance(error.value, HardwayError)  # the CLI prints it and exits 1
    return message


def test_a_failing_command_says_what_how_its_last_words_and_the_fix():
    script = "import sys; print('working'); print('bad thing\\n\\n', file=sys.stderr); sys.exit(3)"
    with pytest.raises(ChildError) as error:
        children.run([PY, "-c", script], what="doing the thing", fix="fix the thing")
    message = one_line(error)
    assert message.startswith("doing the thing failed: ")
    assert "exited 3: bad thing; fix the thing" in message


def test_the_last_words_of_a_logged_command_come_from_its_log(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("an earlier run's line\n")
    script = "print('compiling'); print('  undefined:   foo  '); raise SystemExit(1)"
    with pytest.raises(ChildError) as error:
        children.run([PY, "-c", script], what="building", fix=f"see {log}", log=log)
    assert one_line(error).endswith(f"exited 1: undefined: foo; see {log}")
    assert log.read_text().splitlines() == ["an earlier run's line", "compiling",
                                            "  undefined:   foo  "]


def test_output_that_is_not_utf8_is_still_one_line():
    script = "import sys; sys.stderr.buffer.write(b'bad byte \\xff\\n'); sys.exit(1)"
    with pytest.raises(ChildError) as error:
        children.run([PY, "-c", script], what="reading", fix="look")
    assert one_line(error).endswith("exited 1: bad byte \ufffd; look")


def test_a_timeout_is_one_line_with_the_fix():
    script = "import sys, time; print('waiting for the node', file=sys.stderr, flush=True); " \
             "time.sleep(30)"
    with pytest.raises(ChildError) as error:
        children.run([PY, "-c", script], what="asking node1", fix="check that node1 is up",
                     timeout=1)
    message = one_line(error)
    assert "timed out after 1 s: waiting for the node; check that node1 is up" in message


def test_without_check_a_timeout_is_a_result_the_caller_judges():
    result = children.run([PY, "-c", "import time; time.sleep(30)"], what="probing",
                          check=False, timeout=0.5)
    assert result.returncode != 0
    assert "timed out after 0.5 s" in result.stderr


def test_a_missing_program_names_the_package_to_install():
    with pytest.raises(ChildError) as error:
        children.run(["ssh-keygen-not-here"], what="making a key")
    assert "ssh-keygen-not-here is not installed; install the package that provides" \
        in one_line(error)
    children.PACKAGES["ssh-keygen-not-here"] = "openssh-client"
    try:
        with pytest.raises(ChildError) as error:
            children.run(["ssh-keygen-not-here"], what="making a key")
    finally:
        del children.PACKAGES["ssh-keygen-not-here"]
    assert one_line(error) == "making a key failed: ssh-keygen-not-here is not installed; " \
        "install openssh-client"


def test_a_missing_program_started_in_the_background_is_one_line(tmp_path):
    with pytest.raises(ChildError) as error:
        children.start([str(tmp_path / "nspawn")], what="booting node1", log=tmp_path / "log")
    assert "booting node1 failed: nspawn is not installed" in one_line(error)


def test_output_that_is_not_json_is_one_line():
    with pytest.raises(ChildError) as error:
        children.run_json([PY, "-c", "print('{\"a\": 1'); print('oops')"], what="listing",
                          fix="run it by hand")
    assert "printed no JSON" in one_line(error) and "oops; run it by hand" in str(error.value)
    assert children.run_json([PY, "-c", "print('[1, 2]')"], what="listing") == [1, 2]


# --- end to end: the CLI prints a failing child as one line and exits 1 ------------------


def fake_program(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


def test_nodes_restart_prints_a_failing_systemd_run_as_one_line(tmp_path, monkeypatch):
    state = tmp_path / "state"
    LocalLab(Settings.from_env({"HARDWAY_STATE": str(state), "HARDWAY_BRIDGE": "hwt9"}), print).save(
        Node(name="node1", index=1, machine="hwt9-node1", address="10.77.0.11", base="/base"))
    fake_program(tmp_path / "bin", "systemd-run",
                 "echo 'Failed to start transient service unit: Unit hardway-hwt9-node1.service "
                 "already exists.' >&2; exit 1")
    monkeypatch.setattr(cgroups, "systemd_is_pid1", lambda: True)
    result = CliRunner().invoke(main, ["nodes", "restart", "node1"], env={
        "HARDWAY_STATE": str(state), "HARDWAY_BRIDGE": "hwt9",
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is not None  # SystemExit
    console = state / "nodes/node1/console.log"
    progress, error = result.stderr.splitlines()
    assert progress == "node1: booting 10.77.0.11 (hwt9-node1)"
    assert error == (
        "error: booting node1 failed: systemd-run exited 1: Failed to start transient service "
        f"unit: Unit hardway-hwt9-node1.service already exists.; its console log is {console}")


def test_doctor_on_a_host_without_iproute2_names_the_package(tmp_path):
    fake_program(tmp_path / "bin", "true", "exit 0")  # a PATH with no ip on it
    result = CliRunner().invoke(main, ["doctor"], env={
        "PATH": str(tmp_path / "bin"), "HARDWAY_CACHE": str(tmp_path),
        "HARDWAY_STATE": str(tmp_path)})
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: `ip -j -d link show` failed: ip is not installed; "
                                    "install iproute2")
