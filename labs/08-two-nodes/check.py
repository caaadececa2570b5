"""Lab 08: every node routes the other nodes' pod networks to them, and a pod on one
node reaches an nginx pod on another, in both directions."""

import testinfra
from labcheck import http_from, pod_ip, running_container


def peers(host, lab_vars, request) -> list:
    # A class pairs machines (lab_peers, maybe none); a local lab uses every other node.
    names = lab_vars["lab_peers"] if "lab_peers" in lab_vars else [
        n for n in lab_vars.get("groups", {}).get("lab_nodes", []) if n != lab_vars["inventory_hostname"]]
    inventory = request.config.option.ansible_inventory
    return [(name, testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory))
            for name in names]


def test_there_is_another_node(host, lab_vars, request):
    assert peers(host, lab_vars, request), \
        ("this lab needs a second node: `hardway up --count 2` for a local lab; in a class, "
         "a partner machine (a machine2 in the roster, or another one-machine student)")


def test_each_other_pod_network_is_routed_to_its_node(host, lab_vars, request):
    for name, peer in peers(host, lab_vars, request):
        peer_vars = peer.ansible.get_variables()
        cidr, address = peer_vars["lab_pod_cidr"], peer_vars["ansible_host"]
        route = host.run(f"ip -4 route show {cidr}").stdout
        assert f"via {address}" in route, \
            f"no route to {name}'s pod network {cidr} via {address} (seen: {route.strip() or 'none'})"


def test_a_pod_here_reaches_nginx_on_every_other_node(host, lab_vars, request):
    box = running_container(host, "busybox-pod")
    assert box, "busybox-pod is not running here (lab 05 state is needed)"
    for name, peer in peers(host, lab_vars, request):
        target = pod_ip(peer, "static-nginx")
        assert target, f"static-nginx on {name} has no pod IP"
        assert "Welcome to nginx" in http_from(host, box, target), \
            f"from busybox-pod here, nginx on {name} ({target}:80) did not answer"
