"""Lab 06: the portmap plugin publishes a pod's port 80 on the node's port 8080 with
iptables DNAT; the kubelet refuses a second pod asking for the same host port."""

import json

from labcheck import CNI_CONFIGS, MANIFESTS


def test_the_first_cni_config_chains_bridge_and_portmap(node):
    names = [n for n in node.files(CNI_CONFIGS) if n.endswith((".conf", ".conflist", ".json"))]
    assert names, f"{CNI_CONFIGS} has no CNI config"
    data = json.loads(node.host.file(f"{CNI_CONFIGS}/{names[0]}").content_string or "{}")
    plugins = [p.get("type") for p in data.get("plugins", [data])]
    assert plugins == ["bridge", "portmap"], (
        f"{CNI_CONFIGS}/{names[0]} is the config containerd uses (the first by name) and it chains "
        f"{plugins}; expected bridge then portmap (remove 10-bridge.conf: it sorts first)")


def test_web_hostport_holds_the_node_port_8080(node, lab_vars):
    other = node.running("web-hostport-2")
    assert not other, ("web-hostport-2 got port 8080 and web-hostport was refused: the kubelet "
                       "admits whichever manifest it reads first. Remove web-hostport-2's manifest, "
                       "wait for web-hostport to run, then copy it back")
    node.require_running("web-hostport", why="copy its manifest into /etc/kubernetes/manifests")
    address = lab_vars.get("ansible_host", "127.0.0.1")
    assert "Welcome to nginx" in node.http(f"{address}:8080"), \
        f"http://{address}:8080/ gave no nginx page"


def test_the_host_port_is_a_dnat_rule_not_a_listener(node):
    target = node.pod_ip("web-hostport")
    assert target, f"web-hostport has no pod IP: {node.describe('web-hostport')}"
    listeners = node.listeners(8080)
    assert listeners == [], f"process(es) {listeners} listen on port 8080 themselves"
    rules = node.host.run("iptables -t nat -S").stdout
    assert f"--to-destination {target}:80" in rules, f"no DNAT rule to {target}:80 in the nat table"


def test_the_second_claim_on_the_port_is_refused(node):
    found = node.manifest_for("web-hostport-2")
    assert found, "no manifest in /etc/kubernetes/manifests defines pod web-hostport-2"
    assert not node.pod("web-hostport-2"), "web-hostport-2 has a pod: it must not get port 8080"
    since = node.changed.get(f"{MANIFESTS}/{found[0]}", 0)
    log = node.host.run(f"journalctl -u kubelet --since @{since} --no-pager -g 'admission denied' "
                        "| grep -F web-hostport-2").stdout
    if not log and node.settling():
        raise AssertionError("still starting: the kubelet has not judged web-hostport-2 yet: "
                             "retry in 5 s")
    assert "NodePorts" in log, ("the kubelet has not refused web-hostport-2 for its host port (no "
                                "'Pod admission denied ... NodePorts' in its journal since the "
                                "manifest was copied)")
