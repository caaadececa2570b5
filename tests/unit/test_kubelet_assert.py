"""The kubelet's address assert, run by ansible-playbook on localhost aliases: a standalone
kubelet answers anyone anonymously, so it must not listen beyond loopback; one that joins an
API server (which checks its callers) may."""

from tests.unit import playbook

# The preflight gathers facts: the artifact assert that follows needs the architecture.
PLAY = [{"name": "Only the kubelet assert", "hosts": "all", "gather_facts": True,
         "tasks": [{"name": "Assert", "ansible.builtin.include_role": {
             "name": "kubelet", "tasks_from": "assert.yml"}}]}]
ADDRESSES = {"default": None, "loopback": "127.0.0.1", "other_loopback": "127.0.1.1",
             "ipv6_loopback": "::1", "everywhere": "0.0.0.0", "ipv6_everywhere": "::",
             "lab_bridge": "10.77.0.11", "loopback_lookalike": "127.0.0.1.example.com"}


def test_only_a_loopback_kubelet_address_is_accepted(tmp_path):
    hosts = {name: {} if address is None else {"kubelet_address": address}
             for name, address in ADDRESSES.items()}
    # Joined by its inventory group (its default address is then every address) or by hand.
    hosts["joined_by_group"] = {}
    hosts["joined_by_hand"] = {"kubelet_address": "10.77.0.11",
                               "kubelet_api_server": "https://10.77.0.12:6443"}
    hosts["joined_over_http"] = {"kubelet_api_server": "http://127.0.0.1:8080"}
    result = playbook.run(tmp_path, PLAY, hosts, groups={"control_plane": ["joined_by_group"]})
    failed = {host for host, counts in result.recap().items() if counts.get("failed")}
    assert failed == {"everywhere", "ipv6_everywhere", "lab_bridge", "loopback_lookalike",
                      "joined_over_http"}, result.output
    assert "kubelet_address=0.0.0.0 would open the kubelet API beyond this node" in result.flat
    assert "lets anonymous requests do anything (AlwaysAllow)" in result.flat
