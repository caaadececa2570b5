"""Lab n2: two network namespaces made by hand, each with an address in the lab's range on
a veth pair whose node end is on a bridge holding the gateway; each has a default route via
it; they reach each other and the node; a masquerade rule covers the range."""

import ipaddress
import re

import pytest
from labcheck import PING, look

SCRIPT = """
import ipaddress, json, subprocess, sys
network, ping = ipaddress.IPv4Network(sys.argv[1]), sys.argv[2]
def run(*args):
    return subprocess.run(args, capture_output=True, text=True).stdout
def inside(addresses):
    return [a["local"] for link in addresses for a in link.get("addr_info", [])
            if a.get("family") == "inet" and ipaddress.IPv4Address(a["local"]) in network]
seen = {"node": json.loads(run("ip", "-j", "-d", "address", "show") or "[]"),
        "nat": run("iptables", "-t", "nat", "-S", "POSTROUTING"), "namespaces": {}}
# The node's own address: on its uplink (no bridge, no bridge port, not loopback).
own = [a["local"] for link in seen["node"] if "master" not in link and link["ifname"] != "lo"
       and link.get("linkinfo", {}).get("info_kind") != "bridge"
       for a in link.get("addr_info", []) if a.get("family") == "inet" and a.get("scope") == "global"]
node_address = own[0] if own else "127.0.0.1"
seen["node_address"] = node_address
names = [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]
for name in [n for n in names if not n.startswith("cni-")]:
    addresses = json.loads(run("ip", "-n", name, "-j", "address", "show") or "[]")
    routes = json.loads(run("ip", "-n", name, "-j", "route", "show") or "[]")
    seen["namespaces"][name] = {"addresses": inside(addresses), "routes": routes,
                                "up": [l["ifname"] for l in addresses if "UP" in l.get("flags", [])]}
targets = {n: v["addresses"][0] for n, v in seen["namespaces"].items() if v["addresses"]}
# One Python per namespace pings every target from inside it.
probe = "import sys\\n" + ping + "\\nprint(*[ping(a) for a in sys.argv[1:]])"
seen["pings"] = {}
for name in targets:
    others = [(o, a) for o, a in targets.items() if o != name]
    others.append((f"the node ({node_address})", node_address))
    answers = run("ip", "netns", "exec", name, "python3", "-c", probe, *[a for _, a in others]).split()
    for index, (other, _) in enumerate(others):
        seen["pings"][f"{name}>{other}"] = answers[index:index + 1] == ["True"]
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def network(lab_vars) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(lab_vars["lab_netns_cidr"])


@pytest.fixture(scope="module")
def seen(host, lab_vars, network) -> dict:
    return look(host, SCRIPT, "the network namespaces", network, PING)


def wired(seen) -> dict[str, dict]:
    return {name: ns for name, ns in seen["namespaces"].items() if ns["addresses"]}


def test_two_namespaces_have_an_address_in_the_range(seen, network):
    found = wired(seen)
    described = ", ".join(f"{name} ({', '.join(ns['addresses']) or 'no address in it'})"
                          for name, ns in seen["namespaces"].items())
    assert len(found) >= 2, (f"{len(found)} network namespace(s) hold an address in {network}; "
                             f"expected two (namespaces made by hand: {described or 'none'})")


def test_a_bridge_on_the_node_holds_the_gateway_and_both_veth_ends(seen, network):
    bridges = {link["ifname"]: link for link in seen["node"]
               if link.get("linkinfo", {}).get("info_kind") == "bridge"}
    gateway = {name: [a["local"] for a in link.get("addr_info", []) if a.get("family") == "inet"
                      and ipaddress.IPv4Address(a["local"]) in network]
               for name, link in bridges.items()}
    holding = [name for name, addresses in gateway.items() if addresses]
    assert holding, (f"no bridge on the node holds an address in {network} (bridges: "
                     f"{', '.join(bridges) or 'none'}): the bridge is the namespaces' gateway")
    bridge = holding[0]
    assert "UP" in bridges[bridge].get("flags", []), f"bridge {bridge} is down: `ip link set {bridge} up`"
    ports = [link["ifname"] for link in seen["node"] if link.get("master") == bridge
             and link.get("linkinfo", {}).get("info_kind") == "veth"]
    assert len(ports) >= 2, (f"bridge {bridge} has {len(ports)} veth port(s) ({', '.join(ports) or 'none'}); "
                             "expected one per namespace: `ip link set <veth> master " + bridge + " up`")


def test_each_namespace_has_a_default_route_via_the_bridge(seen, network):
    for name, ns in wired(seen).items():
        gateways = [r.get("gateway") for r in ns["routes"] if r.get("dst") == "default"]
        assert gateways, (f"namespace {name} has no default route (routes: "
                          f"{', '.join(r.get('dst', '?') for r in ns['routes']) or 'none'}): "
                          "`ip -n " + name + " route add default via <bridge address>`")
        assert all(g and ipaddress.IPv4Address(g) in network for g in gateways), \
            f"namespace {name}'s default route goes via {gateways}, not the bridge's address in {network}"


def test_the_namespaces_reach_each_other_and_the_node(seen):
    failed = [pair.replace(">", " cannot reach ") for pair, ok in seen["pings"].items() if not ok]
    assert seen["pings"] and not failed, "; ".join(failed) or "no namespace to ping from"


def test_a_masquerade_rule_covers_the_range(seen, network):
    rules = [line for line in seen["nat"].splitlines() if "MASQUERADE" in line]
    ours = [line for line in rules if f"-s {network}" in line]
    assert ours, (
        f"the nat table's POSTROUTING has no MASQUERADE rule for -s {network} (its rules: "
        f"{len(rules)} MASQUERADE): traffic from the namespaces would leave with their own addresses")
    bridges = {link["ifname"] for link in seen["node"]
               if link.get("linkinfo", {}).get("info_kind") == "bridge"}
    # `-o BRIDGE` (not `! -o BRIDGE`) rewrites traffic between the namespaces, not leaving.
    inward = [line for line in ours
              if (out := re.search(r"(?<!! )-o (\S+)", line)) and out[1] in bridges]
    assert len(inward) < len(ours), (
        f"the MASQUERADE rule for {network} applies only to traffic going into the bridge "
        f"({inward[0].strip()}): write `! -o <bridge>` (or `-o` the node's uplink)")
