"""The kubelet's address assert, run by ansible-playbook on localhost aliases: the kubelet
answers anyone anonymously, so it must not listen beyond loopback."""

from tests.unit import playbook

# The preflight gathers facts: the artifact assert that follows needs the architecture.
PLAY = [{"name": "Only the kubelet assert", "hosts": "all", "gather_facts": True,
         "gather_subset": ["min"],
         "tasks": [{"name": "Assert", "ansible.builtin.include_role": {
             "name": "kubelet", "tasks_from": "assert.yml"}}]}]
ADDRESSES = {"default": None, "loopback": "127.0.0.1", "other_loopback": "127.0.1.1",
             "ipv6_loopback": "::1", "everywhere": "0.0.0.0", "ipv6_everywhere": "::",
             "lab_bridge": "10.77.0.11", "loopback_lookalike": "127.0.0.1.example.com"}


def test_only_a_loopback_kubelet_address_is_accepted(tmp_path):
    hosts = {name: {} if address is None else {"kubelet_address": address}
             for name, address in ADDRESSES.items()}
    result = playbook.run(tmp_path, PLAY, hosts)
    failed = {host for host, counts in result.recap().items() if counts.get("failed")}
    assert failed == {"everywhere", "ipv6_everywhere", "lab_bridge", "loopback_lookalike"}, \
        result.output
    assert "kubelet_address=0.0.0.0 would open the kubelet API beyond this node" in result.flat
    assert "lets anonymous requests do anything (AlwaysAllow)" in result.flat
