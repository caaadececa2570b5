"""Lab 04: with the bridge CNI config both pods get IPs in the node's pod CIDR on cnio0,
and both serve on port 80."""

import ipaddress
import json

from labcheck import http, pod_ip, until


def pod_cidr(lab_vars) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(lab_vars.get("lab_pod_cidr", "10.240.1.0/24"))


def test_the_cni_configs_are_in_place(host):
    for name in ("10-bridge.conf", "99-loopback.conf"):
        assert host.file(f"/etc/cni/net.d/{name}").exists, f"/etc/cni/net.d/{name} is missing"


def test_both_pods_run_with_an_ip_in_the_pod_cidr(host, lab_vars):
    cidr = pod_cidr(lab_vars)
    for name in ("static-nginx", "static-nginx-2"):
        address = until(lambda n=name: pod_ip(host, n), 15)
        assert address, f"{name} has no Ready sandbox with an IP yet"
        assert ipaddress.IPv4Address(address) in cidr, f"{name} has IP {address}, outside {cidr}"


def test_the_pods_hang_off_the_bridge_whose_address_is_the_gateway(host, lab_vars):
    gateway = str(pod_cidr(lab_vars)[1])
    out = host.run("ip -j -4 address show dev cnio0")
    assert out.rc == 0, "the node has no bridge called cnio0"
    addresses = [a["local"] for link in json.loads(out.stdout) for a in link["addr_info"]]
    assert gateway in addresses, f"cnio0 has {addresses}; expected the gateway {gateway}"
    ports = host.run("ip -o link show master cnio0").stdout.strip().splitlines()
    assert len(ports) >= 2, f"cnio0 has {len(ports)} veth port(s); expected one per pod"


def test_each_pod_serves_on_its_own_ip_port_80(host):
    addresses = {name: pod_ip(host, name) for name in ("static-nginx", "static-nginx-2")}
    assert all(addresses.values()), f"pods without an IP: {addresses}"
    assert len(set(addresses.values())) == 2, f"both pods have the same IP: {addresses}"
    for name, address in addresses.items():
        page = until(lambda a=address: http(host, a), 5)
        assert "Welcome to nginx" in page, f"curl http://{address}/ ({name}) got no nginx page"
