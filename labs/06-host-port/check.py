"""Lab 06: the portmap plugin publishes a pod's port 80 on the node's port 8080 with
iptables DNAT; the kubelet refuses a second pod asking for the same host port."""

import json

from labcheck import http, kubelet_log_since, pod_ip, ready_pods, until


def node_address(host, lab_vars) -> str:
    return lab_vars.get("ansible_host") or host.run("hostname -I").stdout.split()[0]


def test_the_cni_config_chains_bridge_and_portmap(host):
    conflist = host.file("/etc/cni/net.d/10-bridge.conflist")
    assert conflist.exists, "/etc/cni/net.d/10-bridge.conflist is missing"
    plugins = [p["type"] for p in json.loads(conflist.content_string)["plugins"]]
    assert plugins == ["bridge", "portmap"], f"the config list chains {plugins}"
    assert not host.file("/etc/cni/net.d/10-bridge.conf").exists, \
        "/etc/cni/net.d/10-bridge.conf is still there and would win (it sorts first)"


def test_nginx_answers_on_the_node_port_8080(host, lab_vars):
    address = node_address(host, lab_vars)
    page = until(lambda: http(host, f"{address}:8080"), 15)
    assert "Welcome to nginx" in page, f"http://{address}:8080/ gave no nginx page"


def test_the_host_port_is_a_dnat_rule_not_a_listener(host):
    target = pod_ip(host, "web-hostport")
    assert target, "web-hostport has no pod IP"
    assert "Welcome to nginx" in http(host, target), f"the pod itself ({target}:80) did not answer"
    listeners = host.run("ss -Htln 'sport = :8080'").stdout.strip()
    assert listeners == "", f"something listens on port 8080 itself: {listeners}"
    rules = host.run("iptables -t nat -S").stdout
    assert f"--to-destination {target}:80" in rules, \
        f"no DNAT rule to {target}:80 in the nat table"


def test_the_second_claim_on_the_port_is_refused(host):
    denied = until(lambda: kubelet_log_since(host, "web-hostport-2.yaml", "Pod admission denied",
                                             "web-hostport-2", "NodePorts"), 10)
    assert denied, ("the kubelet has not refused web-hostport-2 for its host port (no "
                    "'Pod admission denied ... NodePorts' in its journal)")
    assert not ready_pods(host, "web-hostport-2"), "web-hostport-2 runs: it must not get port 8080"
