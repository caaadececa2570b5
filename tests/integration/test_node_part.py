"""The node part on real nodes (labs n1-n5), as a student meets it, on ONE node: each lab
starts, its check fails, a plausible mistake fails too, the student's own variant and the
solution pass; then pod networking begins where the node part ends. Its own lane
(tests/conftest.py): it runs on the worker xdist gives it, on that worker's test lab."""

from __future__ import annotations

import pytest

from hardway import labs
from tests.integration.conftest import hardway
from tests.integration.walk import MISTAKES, ONE, VARIANTS, check, node_result, walk

SINGLE = [lab.id for lab in labs.all_labs() if lab.part == "node" and lab.nodes == 1]


@pytest.mark.parametrize("lab_id", SINGLE)
def test_on_one_node_the_check_fails_a_mistake_and_passes_the_solution(nodes, lab_id):
    walk(nodes, lab_id)


def test_pod_networking_begins_where_the_node_part_ends_with_the_provisioned_kubelet(nodes):
    """The node part's last lab ends with the kubelet the student wrote; lab 01's start keeps
    their files aside and brings back the provisioned kubelet, byte for byte as on a node
    that never saw the node part."""
    files = "/etc/kubernetes/kubelet.yaml /etc/systemd/system/kubelet.service"
    hardway("lab", "start", "n5", "--limit", ONE)
    nodes.ok(ONE, MISTAKES["n5"][1])  # the student's own kubelet, as the README has it...
    nodes.ok(ONE, VARIANTS["n5"])  # ...with its API on loopback
    assert nodes.ok(ONE, f"sha256sum {files}") != nodes.ok("node2", f"sha256sum {files}")
    nodes.ok(ONE, "rm -rf /root/hardway-saved")
    hardway("lab", "start", "01", "--limit", ONE)
    assert nodes.ok(ONE, f"sha256sum {files}") == nodes.ok("node2", f"sha256sum {files}")
    saved = set(nodes.ok(ONE, "ls /root/hardway-saved/*/").split())
    assert {"kubernetes-kubelet.yaml", "system-kubelet.service"} <= saved, saved
    nodes.ok(ONE, "rm -rf /root/hardway-saved")
    assert nodes.ok(ONE, "systemctl is-active kubelet; systemctl is-enabled kubelet").split() == \
        ["active", "enabled"]
    assert nodes.ok(ONE, "runc list -q; ip netns list; ctr namespaces ls -q").split() == ["k8s.io"]
    before = node_result(check("01", settle=False))
    assert not before["passed"], before
    hardway("lab", "solve", "01", "--limit", ONE)
    after = node_result(check("01"))
    assert after["passed"], f"lab 01 after the node part: {after['reason']}"
