"""Every lab on real nodes: start, the check fails before the student acts, solve, the
check passes; reset leaves the nodes where lab 01 begins (issue: labs 01-05)."""

from __future__ import annotations

import json
import re

import pytest

from hardway import labs
from tests.integration.conftest import hardway, wait_for

LABS = [lab.id for lab in labs.all_labs()]


@pytest.fixture(scope="module")
def clean_nodes(lab):
    """No pods from other tests: lab 01 needs port 80 on each node."""
    for node in lab.nodes:
        lab.ok(node.name, "rm -f /etc/kubernetes/manifests/*")
    for node in lab.nodes:
        wait_for(lambda n=node: ((r := lab.sh(n.name, "crictl pods --state ready -q")).stdout
                                 .strip() == "", r.stdout), 60, f"no pods left on {node.name}")
    yield lab
    hardway("lab", "reset")


def check(lab_id: str) -> dict:
    result = hardway("lab", "check", lab_id, "--output", "json", check=False)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert {n["node"] for n in report["nodes"]} == {"node1", "node2"}
    assert (result.returncode == 0) == all(n["passed"] for n in report["nodes"])
    return report


def staged_files(lab_id: str) -> set[str]:
    """The files under /root/lab/<id>/ that the lab's README tells the student to use."""
    readme = labs.find(lab_id).path / "README.md"
    return set(re.findall(rf"/root/lab/{lab_id}/[\w.-]+", readme.read_text()))


@pytest.mark.parametrize("lab_id", LABS)
def test_lab_start_check_fails_solve_check_passes(clean_nodes, lab_id):
    hardway("lab", "start", lab_id)
    for node in clean_nodes.nodes:
        missing = [f for f in staged_files(lab_id)
                   if clean_nodes.sh(node.name, f"test -e {f}").returncode != 0]
        assert missing == [], f"lab {lab_id} start left out on {node.name}: {missing}"
    before = check(lab_id)
    for node in before["nodes"]:
        assert not node["passed"], f"lab {lab_id} passes on {node['node']} before any work"
        assert node["reason"] and node["hint"], node
    hardway("lab", "solve", lab_id)
    after = check(lab_id)
    failures = [(n["node"], n["reason"]) for n in after["nodes"] if not n["passed"]]
    assert failures == [], f"lab {lab_id} still fails after its solution: {failures}"


def test_the_port_conflict_and_the_missing_network_are_observed_for_real(clean_nodes):
    hardway("lab", "solve", "02")
    log = clean_nodes.ok("node1", "crictl logs $(crictl ps -a --state exited --pod "
                                  "$(crictl pods --name static-nginx-2 --state ready -q) -q "
                                  "| head -1) 2>&1")
    assert "Address already in use" in log
    hardway("lab", "solve", "03")
    info = clean_nodes.ok("node2", "crictl info -o json")
    assert "cni plugin not initialized" in info
    assert clean_nodes.ok("node2", "crictl pods --label hardway-lab=true --state ready -q") == ""


def test_reset_leaves_the_nodes_where_lab_01_begins(clean_nodes):
    hardway("lab", "solve", "05")
    hardway("lab", "reset")
    for node in clean_nodes.nodes:
        assert clean_nodes.ok(node.name, "ls -A /etc/cni/net.d").strip() == ""
        assert clean_nodes.ok(node.name, "crictl pods --label hardway-lab=true -q").strip() == ""
        assert clean_nodes.ok(node.name, "grep -l hardway-lab /etc/kubernetes/manifests/* "
                                         "2>/dev/null || true").strip() == ""
    report = check("01")
    assert all(not n["passed"] for n in report["nodes"])


def test_unknown_lab_is_a_usage_error():
    result = hardway("lab", "check", "42", check=False)
    assert result.returncode == 2
    assert "no lab '42'" in result.stderr


def test_a_hand_made_service_follows_its_rules_and_comes_apart_cleanly(clean_nodes):
    lab = clean_nodes
    hardway("lab", "solve", "10")
    count = ("for b in backend-1 backend-2; do crictl logs $(crictl ps --pod $(crictl pods "
             "--label hardway-pod=$b --state ready -q) -q) 2>/dev/null | grep -c 'GET /' || true; done")
    before = [int(n) for n in lab.ok("node1", count).split()]
    lab.ok("node1", "iptables -t nat -D HW-SVC-WEB 1")  # backend-1 leaves the service
    answers = lab.ok("node1", "for i in $(seq 20); do curl -s -m 2 http://10.32.0.10/ | "
                              "grep -q 'Welcome to nginx' && echo ok; done").split()
    after = [int(n) for n in lab.ok("node1", count).split()]
    assert answers.count("ok") == 20
    assert after[0] == before[0], "backend-1 still got requests after leaving the service"
    assert after[1] - before[1] >= 20
    hardway("lab", "reset")
    for node in lab.nodes:
        assert "HW-" not in lab.ok(node.name, "iptables -t nat -S")
        assert lab.ok(node.name, "ip -4 route show 10.32.0.0/24").strip() == ""
        assert lab.sh(node.name, "ip -4 route show 10.240.0.0/16 | grep via").stdout == ""
