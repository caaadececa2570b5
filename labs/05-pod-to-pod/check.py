"""Lab 05: an nginx pod answers by IP from a host-network busybox and from a busybox in
its own network namespace."""

from labcheck import http_from, pod_ip, running_container, until


def test_both_busybox_pods_run(host):
    for name in ("busybox-host", "busybox-pod"):
        assert until(lambda n=name: running_container(host, n), 10), \
            f"{name} has no running container: is its manifest in /etc/kubernetes/manifests?"


def test_the_busybox_pods_are_on_different_networks(host):
    node_ip = pod_ip(host, "busybox-host")
    own_ip = pod_ip(host, "busybox-pod")
    assert own_ip, "busybox-pod has no IP of its own"
    assert node_ip != own_ip, "busybox-pod has the node's address: it must not use hostNetwork"


def reply(host, box: str, target: str) -> tuple[str, str]:
    """(the target pod's IP, what the box got back from it on port 80)."""
    address = pod_ip(host, target)
    assert address, f"{target} has no pod IP: lab 04 must be done first"
    container = running_container(host, box)
    assert container, f"{box} is not running"
    return address, http_from(host, container, address)


def test_nginx_answers_from_the_host_network(host):
    address, page = reply(host, "busybox-host", "static-nginx")
    assert "Welcome to nginx" in page, f"from busybox-host, {address}:80 did not answer"


def test_nginx_answers_from_another_pod(host):
    address, page = reply(host, "busybox-pod", "static-nginx-2")
    assert "Welcome to nginx" in page, f"from busybox-pod, {address}:80 did not answer"
