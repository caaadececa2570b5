"""Lab 05: an nginx pod answers by IP from a host-network busybox and from a busybox in
its own network namespace."""

from labcheck import containers, pod_ip, until

REQUEST = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 80"


def running_container(host, name: str) -> str | None:
    found = [c for c in containers(host, name) if c["state"] == "CONTAINER_RUNNING"]
    return found[0]["id"] if found else None


def test_both_busybox_pods_run(host):
    for name in ("busybox-host", "busybox-pod"):
        assert until(lambda n=name: running_container(host, n), 10), \
            f"{name} has no running container: is its manifest in /etc/kubernetes/manifests?"


def test_the_busybox_pods_are_on_different_networks(host):
    node_ip = pod_ip(host, "busybox-host")
    own_ip = pod_ip(host, "busybox-pod")
    assert own_ip, "busybox-pod has no IP of its own"
    assert node_ip != own_ip, "busybox-pod has the node's address: it must not use hostNetwork"


def test_nginx_answers_from_the_host_network(host):
    target = pod_ip(host, "static-nginx")
    assert target, "static-nginx has no pod IP: lab 04 must be done first"
    box = running_container(host, "busybox-host")
    assert box, "busybox-host is not running"
    reply = host.run(f"crictl exec {box} sh -c \"{REQUEST.format(ip=target)}\"").stdout
    assert "Welcome to nginx" in reply, f"from busybox-host, {target}:80 did not answer"


def test_nginx_answers_from_another_pod(host):
    target = pod_ip(host, "static-nginx-2")
    assert target, "static-nginx-2 has no pod IP: lab 04 must be done first"
    box = running_container(host, "busybox-pod")
    assert box, "busybox-pod is not running"
    reply = host.run(f"crictl exec {box} sh -c \"{REQUEST.format(ip=target)}\"").stdout
    assert "Welcome to nginx" in reply, f"from busybox-pod, {target}:80 did not answer"
