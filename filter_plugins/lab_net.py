"""Jinja filters for pod CIDR checks (ansible-core has no network filters of its own)."""

from __future__ import annotations

import ipaddress


def lab_cidr_problem(value: object) -> str:
    """Empty when `value` is an IPv4 network in CIDR form with room for pods, else why not."""
    try:
        network = ipaddress.IPv4Network(str(value), strict=True)
    except ValueError as exc:
        return f"{value!r} is not an IPv4 network in CIDR form ({exc})"
    if network.prefixlen > 28:
        return f"{value} is too small for pods: use a /28 or larger, e.g. a /24"
    if not network.is_private:
        return f"{value} is not a private range: use one such as 10.240.0.0/16"
    return ""


def lab_cidr_overlaps(cidrs: dict[str, str]) -> list[str]:
    """Pairs of hosts whose pod CIDRs overlap, as 'a (x) and b (y)' strings."""
    valid = {}
    for host, cidr in cidrs.items():
        if not lab_cidr_problem(cidr):
            valid[host] = ipaddress.IPv4Network(str(cidr))
    hosts = sorted(valid)
    return [f"{a} ({valid[a]}) and {b} ({valid[b]})"
            for i, a in enumerate(hosts) for b in hosts[i + 1:] if valid[a].overlaps(valid[b])]


def lab_cidr_host(cidr: str, index: int) -> str:
    """The index-th address of a network (1 is the bridge gateway)."""
    return str(ipaddress.IPv4Network(str(cidr))[int(index)])


class FilterModule:
    def filters(self):
        return {"lab_cidr_problem": lab_cidr_problem, "lab_cidr_overlaps": lab_cidr_overlaps,
                "lab_cidr_host": lab_cidr_host}
