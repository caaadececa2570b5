"""Remove what a lab wired by hand for a range of addresses (the first argument): every
network namespace and bridge holding an address in it, and every nat POSTROUTING rule for a
source in it (with the CNI-... chain a bridge plugin's ipMasq made for it). With a second
argument `--every-namespace`, every network namespace not made by containerd (cni-...) goes
too. Prints "removed ..." per change.

Run as `python3 -c <this text> RANGE`: no file to copy to the node first."""

import ipaddress
import json
import shlex
import subprocess
import sys

network = ipaddress.IPv4Network(sys.argv[1])
every = sys.argv[2:] == ["--every-namespace"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def holds(addresses: list[dict]) -> bool:
    return any(ipaddress.IPv4Address(a["local"]) in network
               for link in addresses for a in link.get("addr_info", []) if a.get("family") == "inet")


for line in run("ip", "netns", "list").stdout.splitlines():
    name = line.split()[0] if line.strip() else ""
    if name and (every and not name.startswith("cni-") or
                 holds(json.loads(run("ip", "-n", name, "-j", "address", "show").stdout or "[]"))):
        run("ip", "netns", "delete", name)
        print(f"removed namespace {name}")

for link in json.loads(run("ip", "-j", "address", "show", "type", "bridge").stdout or "[]"):
    if holds([link]):
        run("ip", "link", "delete", link["ifname"])
        print(f"removed bridge {link['ifname']}")

for line in run("iptables", "-t", "nat", "-S", "POSTROUTING").stdout.splitlines():
    words = shlex.split(line)
    if words[:1] != ["-A"] or "-s" not in words:
        continue
    source = ipaddress.IPv4Network(words[words.index("-s") + 1], strict=False)
    if not source.subnet_of(network):
        continue
    run("iptables", "-t", "nat", "-D", *words[1:])
    target = words[words.index("-j") + 1] if "-j" in words else ""
    if target.startswith("CNI-"):
        run("iptables", "-t", "nat", "-F", target)
        run("iptables", "-t", "nat", "-X", target)
    print(f"removed nat rule {line}")
