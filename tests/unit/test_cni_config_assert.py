"""The pod-CIDR overlap assert, run by ansible-playbook on two localhost aliases."""

import pytest

from tests.unit import playbook

PLAY = [{"name": "Only the cni_config assert", "hosts": "all", "gather_facts": False,
         "tasks": [{"name": "Assert", "ansible.builtin.include_role": {
             "name": "cni_config", "tasks_from": "assert.yml"}}]}]


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ({"cni_config_pod_cidr": "10.240.1.0/24"}, {"cni_config_pod_cidr": "10.240.2.0/24"}, False),
    ({"lab_pod_cidr": "10.240.1.0/24"}, {"lab_pod_cidr": "10.240.2.0/24"}, False),
    ({"lab_pod_cidr": "10.240.1.0/24"}, {"cni_config_pod_cidr": "10.240.2.0/24"}, False),
    ({"cni_config_pod_cidr": "10.240.1.0/24"}, {"cni_config_pod_cidr": "10.240.0.0/16"}, True),
    ({"lab_pod_cidr": "10.240.3.0/24"}, {"cni_config_pod_cidr": "10.240.3.0/24"}, True),
    ({}, {}, True),  # both on the role's default
])
def test_overlap_is_judged_on_the_cidr_each_node_uses(tmp_path, a, b, overlap):
    result = playbook.run(tmp_path, PLAY, {"node_a": a, "node_b": b})
    assert (result.returncode != 0) is overlap, result.output
    assert ("Pod CIDRs overlap: node_a" in result.flat) is overlap, result.output
