"""Lab n3: the bridge plugin, called by hand, attached a namespace to the lab's own network:
host-local holds its address, the namespace holds it on eth0 and answers the node; every
allocation is held by a namespace (DEL before deleting one), and DEL gave an address back."""

import ipaddress

import pytest
from labcheck import PING, look

SCRIPT = """
import ipaddress, json, os, subprocess, sys
network, name, bridge, ping = ipaddress.IPv4Network(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
exec(ping)
def run(*args):
    return subprocess.run(args, capture_output=True, text=True).stdout
folder = f"/var/lib/cni/networks/{name}"
seen = {"folder": folder, "exists": os.path.isdir(folder), "allocations": {}, "last": None,
        "held": {}, "bridge": None, "answers": {}}
if seen["exists"]:
    for entry in os.listdir(folder):
        text = open(os.path.join(folder, entry)).read()
        if entry.startswith("last_reserved_ip"):
            seen["last"] = text.strip()
        elif entry != "lock":
            seen["allocations"][entry] = text.split()[0] if text.split() else ""
for line in run("ip", "netns", "list").splitlines():
    ns = line.split()[0] if line.strip() else ""
    if not ns:
        continue
    for link in json.loads(run("ip", "-n", ns, "-j", "address", "show") or "[]"):
        for a in link.get("addr_info", []):
            if a.get("family") == "inet" and ipaddress.IPv4Address(a["local"]) in network:
                seen["held"][a["local"]] = f"{ns} ({link['ifname']})"
links = json.loads(run("ip", "-j", "address", "show", "dev", bridge) or "[]")
if links:
    seen["bridge"] = [a["local"] for a in links[0].get("addr_info", []) if a.get("family") == "inet"]
for address in seen["allocations"]:
    seen["answers"][address] = ping(address)
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def network(lab_vars) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(lab_vars["lab_cni_hand_cidr"])


@pytest.fixture(scope="module")
def seen(host, lab_vars, network) -> dict:
    return look(host, SCRIPT, "the CNI network", network, lab_vars["lab_cni_hand_network"],
                lab_vars["lab_cni_hand_bridge"], PING)


def test_host_local_holds_an_address_of_the_network(seen, lab_vars):
    name = lab_vars["lab_cni_hand_network"]
    assert seen["exists"], (f"{seen['folder']} does not exist: ADD never ran with the network "
                            f"{name!r} (the config's \"name\")")
    assert seen["allocations"], (f"{seen['folder']} holds no address: every namespace was taken "
                                 "off again; keep one attached")


def test_every_allocation_is_held_by_a_namespace(seen):
    leaked = [f"{address} (container {owner})" for address, owner in sorted(seen["allocations"].items())
              if address not in seen["held"]]
    assert not leaked, (f"host-local keeps {', '.join(leaked)} in {seen['folder']}, but no network "
                        "namespace holds it: its namespace went away without DEL. Run "
                        "CNI_COMMAND=DEL with that CNI_CONTAINERID (it works without the namespace)")


def test_the_bridge_holds_the_gateway(seen, lab_vars, network):
    bridge = lab_vars["lab_cni_hand_bridge"]
    assert seen["bridge"] is not None, f"the node has no bridge {bridge}: the plugin makes it on ADD"
    assert str(network[1]) in seen["bridge"], \
        f"{bridge} has {seen['bridge']}; expected the gateway {network[1]} (isGateway)"


def test_the_attached_namespace_answers_the_node(seen):
    silent = [f"{a} in {seen['held'].get(a, 'no namespace')}" for a, ok in seen["answers"].items()
              if not ok]
    assert not silent, f"no answer to ping from the node: {', '.join(silent)}"


def test_del_gave_an_address_back(seen, network):
    last = seen["last"]
    handed = int(ipaddress.IPv4Address(last)) - int(network[2]) + 1 if last else 0
    held = len(seen["allocations"])
    assert handed > held, (
        f"host-local has handed out {handed} address(es) of {network} and still holds {held}: "
        "take a namespace off the network with CNI_COMMAND=DEL (then `ip netns delete` it)")
