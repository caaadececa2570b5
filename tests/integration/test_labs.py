"""Pod networking on real nodes, as a student meets it: on ONE node (the README's default),
each lab starts, its check fails, a plausible mistake fails too, the solution (or the
student's own correct variant) passes; lab 08 on two nodes. Reset keeps what the student
wrote, moved aside. The node part is test_node_part.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardway import labs
from tests.integration.conftest import hardway
from tests.integration.walk import DECOY_ON_80, ONE, check, node_result, walk

SINGLE = [lab.id for lab in labs.all_labs() if lab.part == "pods" and lab.nodes == 1]


@pytest.mark.parametrize("lab_id", SINGLE)
def test_on_one_node_the_check_fails_a_mistake_and_passes_the_solution(nodes, lab_id):
    walk(nodes, lab_id)


def test_lab_08_on_one_node_says_it_needs_two(nodes):
    started = hardway("lab", "start", "08", "--limit", ONE, check=False)
    assert started.returncode == 1
    said = " ".join(started.stderr.split())
    assert "Lab 08 needs node1 and a partner node" in said and "hardway up --count 2" in said, said
    # One line, not Ansible's output: that is in the log the line names.
    assert started.stdout == "" and len(started.stderr.strip().splitlines()) == 1, started.stderr
    log = said.rsplit("Ansible's output is in ", 1)[1]
    assert "TASK [Lab 08 | Two nodes are needed]" in Path(log).read_text()


def test_lab_08_on_two_nodes_fails_one_way_routes_and_passes_both(nodes):
    hardway("lab", "start", "08")
    before = check("08", limit="node1,node2")
    assert {n["node"] for n in before["nodes"]} == {"node1", "node2"}
    assert not any(n["passed"] for n in before["nodes"])
    # peers.txt: a comment, then "<node>  pod network <cidr>  via <address>" per partner
    partner = nodes.ok("node1", "grep -v '^#' /root/lab/08/peers.txt").split()
    assert partner[0] == "node2", partner
    cidr, via = partner[3], partner[5]
    nodes.ok("node1", f"ip route add {cidr} via {via}")  # one direction only
    one_way = check("08", limit="node1,node2")
    assert not node_result(one_way, "node2")["passed"]
    assert "no route to node1's pod network" in node_result(one_way, "node2")["reason"]
    hardway("lab", "solve", "08")
    after = check("08", limit="node1,node2")
    assert all(n["passed"] for n in after["nodes"]), after


def test_reset_keeps_the_students_own_manifest_aside_and_leaves_the_start_state(nodes):
    hardway("lab", "solve", "05", "--limit", ONE)
    nodes.ok(ONE, "rm -rf /root/hardway-saved")  # what earlier tests' files were kept as
    nodes.ok(ONE, DECOY_ON_80 + "\ncp /etc/kubernetes/manifests/busybox-pod.yaml "
                                "/etc/kubernetes/manifests/busybox-pod.yaml~")
    reset = hardway("lab", "reset", "--limit", ONE)
    assert "hardway-saved" in reset.stdout
    assert nodes.ok(ONE, "ls /root/hardway-saved/*/").split() == ["manifests-decoy.yml"]
    assert nodes.ok(ONE, "ls -A /etc/kubernetes/manifests /etc/cni/net.d").split() == \
        ["/etc/cni/net.d:", "/etc/kubernetes/manifests:"]
    assert nodes.ok(ONE, "crictl pods -q").strip() == ""
    nodes.ok(ONE, "rm -rf /root/hardway-saved")


def test_unknown_lab_is_a_usage_error():
    result = hardway("lab", "check", "42", check=False)
    assert result.returncode == 2
    assert "no lab '42'" in result.stderr


def test_a_hand_made_service_follows_its_rules_and_comes_apart_cleanly(nodes):
    lab = nodes
    hardway("lab", "solve", "10", "--limit", ONE)
    count = ("for b in backend-1 backend-2; do crictl logs $(crictl ps --pod $(crictl pods "
             "--name \"^$b-\" --state ready -q) -q) 2>/dev/null | grep -c 'GET /' || true; done")
    before = [int(n) for n in lab.ok(ONE, count).split()]
    lab.ok(ONE, "iptables -t nat -D HW-SVC-WEB 1")  # backend-1 leaves the service
    answers = lab.ok(ONE, "for i in $(seq 20); do curl -s -m 2 http://10.32.0.10/ | "
                          "grep -q 'Welcome to nginx' && echo ok; done").split()
    after = [int(n) for n in lab.ok(ONE, count).split()]
    assert answers.count("ok") == 20
    assert after[0] == before[0], "backend-1 still got requests after leaving the service"
    assert after[1] - before[1] >= 20
    hardway("lab", "reset", "--limit", ONE)
    assert "HW-" not in lab.ok(ONE, "iptables -t nat -S")
    assert lab.ok(ONE, "ip -4 route show 10.32.0.0/24").strip() == ""
    assert "169.254.99.9" not in lab.ok(ONE, "ip -4 address show dev lo")
