"""Lab 05: an nginx pod answers by IP from a host-network busybox and from a busybox in
its own network namespace."""


def test_busybox_host_runs_on_the_node_network(node):
    node.require_running("busybox-host", why="copy its manifest into /etc/kubernetes/manifests")
    mode = node.network_mode("busybox-host")
    assert mode == "NODE", f"busybox-host has network mode {mode}; expected NODE (hostNetwork: true)"


def test_busybox_pod_runs_in_its_own_network_namespace(node):
    node.require_running("busybox-pod", why="copy its manifest into /etc/kubernetes/manifests")
    mode = node.network_mode("busybox-pod")
    assert mode == "POD" and node.pod_ip("busybox-pod"), (
        f"busybox-pod has network mode {mode} and IP {node.pod_ip('busybox-pod')}; expected a "
        "namespace and an IP of its own (no hostNetwork)")


def reply(node, box: str, target: str) -> tuple[str, str]:
    """(the target pod's IP, what the box got back from it on port 80)."""
    address = node.pod_ip(target)
    assert address, f"{target} has no pod IP: {node.describe(target)} (lab 04 must be done first)"
    return address, node.http_from(node.require_running(box), address)


def test_nginx_answers_from_the_host_network(node):
    address, page = reply(node, "busybox-host", "static-nginx")
    assert "Welcome to nginx" in page, \
        f"from busybox-host, {address}:80 did not answer ({page.strip()[-120:] or 'no reply'})"


def test_nginx_answers_from_another_pod(node):
    address, page = reply(node, "busybox-pod", "static-nginx-2")
    assert "Welcome to nginx" in page, \
        f"from busybox-pod, {address}:80 did not answer ({page.strip()[-120:] or 'no reply'})"
