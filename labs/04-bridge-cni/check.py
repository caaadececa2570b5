"""Lab 04: with a bridge CNI config, both pods get IPs in the node's pod CIDR on cnio0,
their own loopback is up, and both serve on port 80."""

import ipaddress
import json

from labcheck import CNI_CONFIGS, SETTLE, starting

PODS = ("static-nginx", "static-nginx-2")


def pod_cidr(lab_vars) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(lab_vars.get("lab_pod_cidr", "10.240.1.0/24"))


def first_config(node) -> tuple[str, list[str]]:
    """containerd loads only the first config in the folder (by name): its name and plugins."""
    names = [n for n in node.files(CNI_CONFIGS) if n.endswith((".conf", ".conflist", ".json"))]
    assert names, f"{CNI_CONFIGS} has no CNI config (.conf or .conflist)"
    data = json.loads(node.host.file(f"{CNI_CONFIGS}/{names[0]}").content_string or "{}")
    return names[0], [p.get("type", "?") for p in data.get("plugins", [data])]


def test_the_first_cni_config_is_a_bridge(node):
    name, plugins = first_config(node)
    assert plugins[:1] == ["bridge"], (
        f"{CNI_CONFIGS}/{name} comes first and runs {plugins}: containerd uses only the first "
        "config in the folder, so it must be the bridge one")


def test_containerd_loaded_the_network(node):
    info = json.loads(node.host.run("crictl info -o json").stdout or "{}")
    ready = [c.get("status") for c in info.get("status", {}).get("conditions", [])
             if c.get("type") == "NetworkReady"]
    if ready != [True]:
        age = node.seconds_since_change(CNI_CONFIGS)
        if age is not None and age < SETTLE:
            raise starting(f"containerd has not loaded {CNI_CONFIGS} yet (changed {age} s ago)")
        raise AssertionError(
            f"the config is in {CNI_CONFIGS} but containerd reports NetworkReady=false: it never "
            "saw the file arrive. A file moved in with `mv` is missed: `cp` it again over itself "
            "(a write is seen; `touch` is not)")


def test_both_pods_run_with_an_ip_in_the_pod_cidr(node, lab_vars):
    cidr = pod_cidr(lab_vars)
    for name in PODS:
        node.require_running(name)
        address = node.pod_ip(name)
        assert address, f"{name} has no IP of its own: {node.describe(name)}"
        assert ipaddress.IPv4Address(address) in cidr, f"{name} has IP {address}, outside {cidr}"


def test_the_pods_hang_off_the_bridge_whose_address_is_the_gateway(node, lab_vars):
    gateway = str(pod_cidr(lab_vars)[1])
    out = node.host.run("ip -j -4 address show dev cnio0")
    assert out.rc == 0, "the node has no bridge called cnio0"
    addresses = [a["local"] for link in json.loads(out.stdout) for a in link["addr_info"]]
    assert gateway in addresses, f"cnio0 has {addresses}; expected the gateway {gateway}"


def test_each_pod_has_its_own_loopback_up(node):
    for name in PODS:
        pid = node.pid_of(node.require_running(name))
        link = node.host.run(f"nsenter --net=/proc/{pid}/ns/net ip -o link show lo").stdout
        assert "UP" in link.split(">")[0], f"lo in {name}'s network namespace is not up: {link.strip()}"


def test_each_pod_serves_on_its_own_ip_port_80(node):
    addresses = {name: node.pod_ip(name) for name in PODS}
    assert all(addresses.values()), f"pods without an IP: {addresses}"
    assert len(set(addresses.values())) == 2, f"both pods have the same IP: {addresses}"
    for name, address in addresses.items():
        assert "Welcome to nginx" in node.http(address), \
            f"curl http://{address}/ ({name}) got no nginx page"
