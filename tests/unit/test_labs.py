"""The lab folders' contract and the check runner's decisions, without nodes."""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from hardway import labs, playbook
from hardway.settings import HardwayError, UsageError
from tests.conftest import filter_plugin

lab_pods = filter_plugin("lab_pods")

FOLDERS = sorted(p.parent for p in labs.LABS.glob("*/lab.yml"))
# Files a lab folder may hold (labs/README.md describes each).
ALLOWED = {"lab.yml", "README.md", "check.py", "solve.yml", "start.yml", "reset.yml", "vars.yml",
           "files", "partners.yml", "service.sh.j2", "service-cleanup.sh", "wire.sh.j2",
           "reset-api.yml", "no-scheduler.yml", "hostport.yml"}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_lab_folder_has_the_whole_contract(folder):
    lab = labs.load(folder / "lab.yml")
    assert lab.id == folder.name.split("-")[0]
    for required in ("README.md", "check.py", "solve.yml"):
        assert (folder / required).is_file(), f"{folder.name} lacks {required}"
    assert set(p.name for p in folder.iterdir()) - {"__pycache__"} <= ALLOWED
    for name in ("start.yml", "solve.yml", "reset.yml", "reset-api.yml"):
        if (folder / name).exists():
            tasks = yaml.safe_load((folder / name).read_text())
            assert isinstance(tasks, list) and all("name" in t for t in tasks), f"{folder.name}/{name}"
    readme = (folder / "README.md").read_text()
    assert readme.startswith(f"# Lab {lab.id}"), folder.name
    assert f"hardway lab check {lab.id}" in readme, f"{folder.name}: the README never says how to check"


def test_lab_ids_are_unique_and_in_order():
    ids = [lab.id for lab in labs.all_labs()]
    assert len(set(ids)) == len(ids) == len(FOLDERS)
    for _, members in labs.by_part(labs.all_labs()):
        numbers = [lab.number for lab in members]
        assert numbers == sorted(set(numbers))


def test_every_folder_holding_files_is_a_lab():
    """A lab folder without lab.yml would be silently left out of the course."""
    others = {p.name for p in labs.LABS.iterdir() if p.is_dir()} - {f.name for f in FOLDERS}
    assert others <= {"_common", "__pycache__"}, others


def test_the_course_is_node_by_hand_then_pod_networking_then_the_control_plane():
    grouped = [(part.name, [lab.id for lab in members])
               for part, members in labs.by_part(labs.all_labs())]
    assert grouped == [("node", ["n1", "n2", "n3", "n4", "n5"]),
                       ("pods", [f"{n:02d}" for n in range(1, 11)]),
                       ("control", ["c1", "c2", "c3", "c4", "c5"])]


def test_today_ids_still_find_their_labs():
    assert labs.find("1").folder == "01-host-network"
    assert labs.find("01").id == labs.find("01-host-network").id == "01"
    assert labs.find("N1").id == "n1"
    with pytest.raises(UsageError, match="no lab 'n9'"):
        labs.find("n9")


def test_a_lab_starts_from_its_own_parts_earlier_solutions(monkeypatch):
    steps = []
    monkeypatch.setattr(labs, "run_steps", lambda inventory, solve, stage, limit=None,
                        shortcut=None, show=None, tell=None: steps.append([lab.id for lab in solve]))
    labs.start(labs.find("01"), Path("x"))
    labs.start(labs.find("03"), Path("x"))
    labs.start(labs.find("n3"), Path("x"))
    labs.solve(labs.find("n2"), Path("x"))
    assert steps == [[], ["01", "02"], ["n1", "n2"], ["n1", "n2"]]


def test_the_parts_listing(monkeypatch):
    from click.testing import CliRunner

    from hardway.cli import main

    result = CliRunner().invoke(main, ["lab", "list", "--output", "json"])
    rows = json.loads(result.output)
    assert [(r["part"], r["id"]) for r in rows][:6] == [("node", f"n{n}") for n in range(1, 6)] + [
        ("pods", "01")]
    table = CliRunner().invoke(main, ["lab", "list"], env={"COLUMNS": "200"}).output
    assert "A node by hand" in table and "Pod networking" in table


@pytest.mark.parametrize("folder, parts_text, message", [
    ("x1-thing", None, "no part in"),
    ("n-thing", None, "a lab folder is named <id>-<slug>"),
    ("n1-thing", "- {name: node, prefix: n}\n", "must be a list of parts"),
    ("n1-thing", "- {name: a, prefix: n, title: A}\n- {name: b, prefix: n, title: B}\n",
     "the same prefix"),
])
def test_a_malformed_part_or_folder_is_named_in_one_line(tmp_path, monkeypatch, folder,
                                                         parts_text, message):
    if parts_text is not None:
        monkeypatch.setattr(labs, "PARTS", tmp_path / "parts.yml")
        labs.PARTS.write_text(parts_text)
    meta = tmp_path / folder / "lab.yml"
    meta.parent.mkdir()
    meta.write_text("id: n1\ntitle: T\ngoal: G\nhint: H\n")
    with pytest.raises(HardwayError) as caught:
        labs.load(meta)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_no_shared_file_names_a_lab():
    """The shared playbooks and the Python never know a lab by name or by its settings."""
    shared = [labs.LABS.parent / "playbooks/lab.yml", *sorted((labs.LABS / "_common").iterdir()),
              Path(labs.__file__)]
    for path in shared:
        text = path.read_text()
        assert not re.search(r"\b(lab ?|labs/)(0[1-9]|10|n[1-9])\b", text, re.I), path
        assert "10.32.0" not in text and "lab_service" not in text, path


@pytest.mark.parametrize("content, message", [
    ("id: '01'\ntitle: T\ngoal: G\n", "lacks hint"),
    ("- a list\n", "must be a mapping"),
    ("id: '01'\ntitle: [unclosed\n", "cannot be read as YAML"),
    ("id: '02'\ntitle: T\ngoal: G\nhint: H\n", "its folder says '01'"),
    ("id: '01'\ntitle: T\ngoal: G\nhint: H\nnodes: 0\n", "nodes must be"),
    (b"\xff\xfe", "cannot be read as YAML"),
])
def test_a_malformed_lab_yml_is_named_in_one_line(tmp_path, content, message):
    meta = tmp_path / "01-example" / "lab.yml"
    meta.parent.mkdir()
    meta.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(HardwayError) as caught:
        labs.load(meta)
    assert message in str(caught.value) and str(meta) in str(caught.value)
    assert "\n" not in str(caught.value)


INVENTORY = {
    "_meta": {"hostvars": {
        "alice-1": {"ansible_host": "192.0.2.11", "ansible_user": "debian",
                    "ansible_ssh_private_key_file": "/keys/a b",
                    "ansible_ssh_common_args": "-o 'UserKnownHostsFile=/cls/my class/known_hosts' "
                                               "-o StrictHostKeyChecking=accept-new"},
        "bob-1": {"ansible_host": "192.0.2.12", "ansible_port": 2202},
        "carol-1": {"ansible_host": "192.0.2.13"},
    }},
    "all": {"children": ["lab_nodes", "ungrouped"]},
    "lab_nodes": {"children": ["alice", "bob", "carol"]},
    "alice": {"hosts": ["alice-1"]}, "bob": {"hosts": ["bob-1"]}, "carol": {"hosts": ["carol-1"]},
}


@pytest.fixture
def inventory(tmp_path, monkeypatch):
    path = tmp_path / "hosts.yml"
    path.write_text("# stand-in\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(labs, "inventory_data", lambda inv: INVENTORY)
    return path


@pytest.mark.parametrize("limit, names", [
    (None, ["alice-1", "bob-1", "carol-1"]),
    ("alice-1,bob-1", ["alice-1", "bob-1"]),          # the form lab 08's hint uses
    ("bob", ["bob-1"]),                                # a group
    ("*-1", ["alice-1", "bob-1", "carol-1"]),          # a pattern
])
def test_limit_takes_names_groups_and_patterns(inventory, limit, names):
    assert [t.name for t in labs.targets(inventory, limit)] == names


def test_an_unknown_limit_is_a_usage_error(inventory):
    with pytest.raises(UsageError, match="'dave' matches no lab node"):
        labs.targets(inventory, "alice-1,dave")


def test_targets_carry_login_and_the_labs_own_settings(inventory):
    alice, bob, _ = labs.targets(inventory)
    assert (alice.user, alice.port, alice.key) == ("debian", 22, "/keys/a b")
    assert (bob.user, bob.port) == ("root", 2202)
    assert alice.variables["lab_service_ip"] == labs.lab_variables()["lab_service_ip"]
    assert alice.variables["groups"]["lab_nodes"] == ["alice-1", "bob-1", "carol-1"]


def test_the_ssh_config_shares_one_connection_and_survives_spaces(inventory, tmp_path):
    text = labs.ssh_config(labs.targets(inventory))
    block = text.split("Host ")[1]
    settings = dict(shlex.split(line)[:2] for line in block.splitlines()[1:])
    assert settings["UserKnownHostsFile"] == "/cls/my class/known_hosts"
    assert settings["IdentityFile"] == "/keys/a b"
    assert settings["ControlMaster"] == "auto" and settings["ControlPersist"] == "60s"
    assert settings["User"] == "debian"


def test_ssh_options_other_than_dash_o_are_refused():
    with pytest.raises(HardwayError, match="only `-o Key=Value`"):
        labs._ssh_options("-J jumphost")


def test_a_value_that_would_break_the_ssh_config_is_refused(inventory):
    target = labs.targets(inventory)[0]
    bad = labs.Target(**{**target.__dict__, "address": "x\n  ProxyCommand touch /tmp/pwned"})
    with pytest.raises(HardwayError, match="cannot be used in an ssh configuration"):
        labs.ssh_config([bad])


def junit(*cases: tuple[str, str | None]) -> ET.Element:
    suite = ET.Element("testsuite")
    for name, failure in cases:
        case = ET.SubElement(suite, "testcase", name=name)
        if failure is not None:
            ET.SubElement(case, "failure", message=failure)
    return suite


def test_results_keep_the_first_failure_and_tell_starting_from_failing():
    lab = labs.find("01")
    tree = junit(("test_a[ssh://node1?ssh_config=/x/y&timeout=5]", None),
                 ("test_b[ssh://node1?ssh_config=/x/y&timeout=5]", "AssertionError: b broke\nmore"),
                 ("test_c[ssh://node1?ssh_config=/x/y&timeout=5]", "AssertionError: c broke"),
                 ("test_a[ssh://node2?ssh_config=/x/y&timeout=5]",
                  "AssertionError: still starting: pod x: retry in 5 s"),
                 ("test_a[ssh://node3?ssh_config=/x/y&timeout=5]", None))
    results = labs.parse_results(lab, tree)
    assert results["node1"].passed is False and results["node1"].reason == "b broke"
    assert results["node1"].hint == lab.hint and not results["node1"].starting
    assert [c["passed"] for c in results["node1"].checks] == [True, False, False]
    assert results["node2"].starting and not results["node2"].passed
    assert results["node3"].passed and results["node3"].reason == ""
    assert json.loads(json.dumps(results["node2"].as_dict()))["starting"] is True


def seen(*sandboxes: tuple[str, str, str], running: tuple[str, ...] = ()) -> list[str]:
    """A node's two lines for lab_pods_waiting: ready sandboxes (id, pod, run), running ones."""
    pods = [{"id": i, "labels": {"hardway-pod": pod}, "annotations": {"hardway-lab/run": run}}
            for i, pod, run in sandboxes]
    return [json.dumps({"items": pods}), json.dumps({"containers": [{"podSandboxId": i} for i in running]})]


def test_a_solution_waits_for_the_copy_of_its_own_run_not_an_old_one():
    waiting = lab_pods.lab_pods_waiting
    old = ("sb-old", "busybox-pod", "111")
    assert waiting(seen(old, running=("sb-old",)), ["busybox-pod"], "222") == ["busybox-pod"]
    new = ("sb-new", "busybox-pod", "222")
    assert waiting(seen(old, new, running=("sb-old",)), ["busybox-pod"], "222") == ["busybox-pod"]
    assert waiting(seen(old, new, running=("sb-new",)), ["busybox-pod", "busybox-host"], 222) \
        == ["busybox-host"]
    assert waiting(["crictl: connection refused"], ["busybox-pod"], "222") == ["busybox-pod"]


def progress_of(*events: dict) -> playbook.Progress:
    progress = playbook.Progress(["node1", "node2"], (labs.STEP_STAGE,))
    for event in events:
        progress.feed(event)
    return progress


def result(host: str, status: str, task: str = "a task", msg: str = "") -> dict:
    return {"event": "result", "host": host, "stage": labs.STEP_STAGE, "status": status,
            "task": task, "msg": msg, "stdout": ""}


def stats(failures: dict[str, int] | None = None, unreachable: dict[str, int] | None = None) -> dict:
    return {"event": "stats", "hosts": {
        host: {"failures": (failures or {}).get(host, 0), "unreachable": (unreachable or {}).get(host, 0)}
        for host in ("node1", "node2")}}


def step(monkeypatch, progress: playbook.Progress) -> tuple[list[str], list[list[str]]]:
    """labs.reset on node1 and node2 with the playbook's run replaced by progress: what it
    told the student and the ansible-playbook command it ran."""
    told: list[str] = []
    commands: list[list[str]] = []

    def run(command, **_):
        commands.append(command)
        return progress, Path("/logs/lab-1.log")

    monkeypatch.setattr(labs.playbook, "run", run)
    monkeypatch.setattr(labs, "targets", lambda inventory, limit=None: [
        labs.Target(name, name, "root", 22, "", (), {}) for name in ("node1", "node2")])
    labs.reset(Path("hosts.yml"), limit="node*", tell=told.append)
    return told, commands


REFUSED = ("node2 runs no control plane, and this part's labs work on one: limit the lab to "
           "the node that does (`--limit control_plane`), or make one with `hardway up "
           "--control-plane` (a local lab: its first node) or `hardway class init "
           "--control-plane` then `hardway class up` (a class: each student's first machine).")


def test_a_failed_lab_step_is_one_line_with_the_node_task_whole_message_and_log(monkeypatch):
    assert len(REFUSED) > 300  # longer than a provisioning failure's cut
    moved = "Moved your own files out of the way: /etc/cni/net.d/mine.conf ..."
    progress = progress_of(result("node1", "ok"), result("node2", "ok", "Tell", moved),
                           result("node2", "failed", "Control plane | This node runs one", REFUSED),
                           stats({"node2": 1}))
    with pytest.raises(HardwayError) as failed:
        step(monkeypatch, progress)
    assert str(failed.value) == (
        f"the lab step: node2 failed at lab: Control plane | This node runs one: {REFUSED[:-1]}. "
        "Ansible's output is in /logs/lab-1.log")
    # What the step told the student before it failed is not lost.
    told, _ = step(monkeypatch, progress_of(result("node1", "ok", "Tell", moved), stats()))
    assert told == [moved]


def test_a_lab_step_runs_ansible_on_the_nodes_the_check_would_look_at(monkeypatch):
    _, [command] = step(monkeypatch, progress_of(result("node1", "failed", msg="rescued"),
                                                 result("node1", "ok"), stats()))
    assert command[command.index("--limit") + 1] == "node1,node2"


def test_an_unreachable_node_is_named_with_what_ssh_said_and_the_others_are_counted(monkeypatch):
    progress = progress_of(result("node1", "unreachable", "Gathering Facts",
                                  "Task failed: EOF on stream; last 100 lines received:\n"
                                  "ssh: connect to host 10.0.0.9 port 22: No route to host"))
    progress.feed({"event": "stats", "hosts": {"node1": {"failures": 0, "unreachable": 1}}})
    with pytest.raises(HardwayError) as failed:
        step(monkeypatch, progress)
    assert str(failed.value) == (
        "the lab step: node1 unreachable at lab: Gathering Facts: ssh: connect to host "
        "10.0.0.9 port 22: No route to host (and 1 other node(s)). Ansible's output is in "
        "/logs/lab-1.log")


def test_what_a_node_said_reaches_the_terminal_without_its_control_characters():
    progress = progress_of(result("node1", "ok", "Tell", "moved \x1b]0;owned\x07\x1b[2Jmine.conf"))
    assert progress.notes == [("node1", "moved \\x1b]0;owned\\x07\\x1b[2Jmine.conf")]
