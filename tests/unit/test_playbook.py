"""A playbook run with progress (hardway.playbook), as `hardway up` uses it: real
ansible-playbook, a node that refuses SSH on loopback; nothing leaves this machine."""

from __future__ import annotations

import pytest

from hardway import provision
from hardway.playbook import CONTROL_PLANE_STAGES, STAGES, Progress, site_stages
from hardway.settings import HardwayError, Settings


def test_a_failed_site_yml_is_one_line_naming_node_stage_and_log(tmp_path, monkeypatch):
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    # Port 1 on loopback refuses at once: the node is unreachable at the first task.
    (inventory / "hosts.yml").write_text(
        "lab_nodes:\n  hosts:\n    node1:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n")
    monkeypatch.setenv("HARDWAY_INVENTORY", str(inventory))
    settings = Settings.from_env({"HARDWAY_STATE": str(tmp_path / "state")})
    shown: list[Progress] = []
    logged: list[str] = []
    with pytest.raises(HardwayError) as error:
        provision.provision(settings, ["node1"], [], shown.append, logged.append)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("site.yml: node1 unreachable at preflight: ")
    assert "port 1: Connection refused" in message
    logs = sorted((tmp_path / "state/provision").glob("site-*.log"))
    assert len(logs) == 1 and f"Ansible's output is in {logs[0]}" in message
    assert "Connection refused" in logs[0].read_text()
    assert logged == [f"provisioning 1 node(s) with site.yml; Ansible's output: {logs[0]}"]
    assert shown[-1].finished
    assert shown[-1].stage_rows()[0] == ("preflight", 0, 0, 1)


def test_progress_counts_a_stage_past_when_a_later_one_is_reached():
    progress = Progress(["node1", "node2"], STAGES)
    for stage in ("preflight", "runc", "download", "containerd"):
        progress.feed({"event": "result", "host": "node1", "stage": stage, "status": "ok",
                       "task": "t", "msg": ""})
    progress.feed({"event": "result", "host": "node2", "stage": "preflight", "status": "ok",
                   "task": "t", "msg": ""})
    rows = {stage: counts for stage, *counts in progress.stage_rows()}
    assert rows["preflight"] == [1, 1, 0]
    assert rows["runc"] == [1, 0, 0]
    assert rows["containerd"] == [0, 1, 0]
    assert progress.outcome("node1") == "not run"  # no stats yet: the run has not ended


def test_only_the_control_planes_hosts_count_in_its_stages():
    # node1 runs the control plane, node2 and node3 do not.
    progress = Progress(["node1", "node2", "node3"], site_stages(True), ("node1",))
    for host, stage in (("node1", "etcd"), ("node2", "node_prereqs"), ("node3", "preflight")):
        progress.feed({"event": "result", "host": host, "stage": stage, "status": "ok",
                       "task": "t", "msg": ""})
    rows = {stage: counts for stage, *counts in progress.stage_rows()}
    assert rows["preflight"] == [2, 1, 0]
    assert rows["pki"] == [1, 0, 0]  # node2, past it in the order, never went through it
    assert rows["etcd"] == [0, 1, 0]
    assert rows["kube_scheduler"] == [0, 0, 0]
    assert rows["node_prereqs"] == [0, 1, 0]
    # Each stage is named once: the control plane's download is told from the node's.
    assert len(set(progress.stages)) == len(progress.stages)
    assert "control_plane_download" in CONTROL_PLANE_STAGES
