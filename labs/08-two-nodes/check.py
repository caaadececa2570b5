"""Lab 08: every node routes its partners' pod networks to them, and a pod on one node
reaches an nginx pod on another, in both directions."""

from labcheck import Node


def test_there_is_another_node(other_nodes):
    assert other_nodes, (
        "this lab needs a second node and this one has none: `hardway up --count 2` for a local "
        "lab; in a class, a partner machine (a machine2 in the roster, or another one-machine "
        "student)")


def test_each_other_pod_network_is_routed_to_its_node(node, other_nodes):
    for name, variables, _ in other_nodes:
        cidr, address = variables.get("lab_pod_cidr"), variables.get("ansible_host")
        route = node.host.run(f"ip -4 route show {cidr}").stdout
        assert f"via {address}" in route, \
            f"no route to {name}'s pod network {cidr} via {address} (seen: {route.strip() or 'none'})"


def test_a_pod_here_reaches_nginx_on_every_other_node(node, other_nodes):
    box = node.require_running("busybox-pod", why="lab 05's pods are needed here")
    for name, _, peer in other_nodes:
        target = Node(peer).pod_ip("static-nginx")
        assert target, f"static-nginx on {name} has no pod IP"
        page = node.http_from(box, target)
        assert "Welcome to nginx" in page, \
            f"from busybox-pod here, nginx on {name} ({target}:80) did not answer"
