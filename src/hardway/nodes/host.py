"""What the host must offer for local lab nodes, and the lab bridge on it.

`hardway doctor` prints every finding; `hardway nodes up` runs the same checks and
refuses with the same messages. Nothing here changes a host setting except the bridge.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hardway.children import json_output, run
from hardway.nodes import cgroups
from hardway.settings import Settings

MIN_FREE_GIB = 4
# inotify instances one running node holds (the kubelet 6, systemd 5, containerd 2, logind,
# dbus; measured). Nodes share the host's root user, so they share its per-user limit,
# fs.inotify.max_user_instances (128 by default): a node past it boots with failed units
# and a kubelet that cannot watch its manifests.
INOTIFY_PER_NODE = 16
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
CAP_SYS_RESOURCE = 24


@dataclass
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    blocking: bool = True


def ip_json(*args: str) -> list[dict]:
    what = f"`ip -j {' '.join(args)}`"
    result = run(["ip", "-j", *args], what=what, check=False)
    # What is not there (a link by name) is an error to ip, and an empty answer to us.
    if result.returncode != 0 or not result.stdout.strip():
        return []
    return json_output(result, what=what, fix="install a newer iproute2 (one that knows -j)")


def has_capability(bit: int, status: str | None = None) -> bool:
    status = status or Path("/proc/self/status").read_text()
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def cgroup_layout() -> str:
    if cgroups.unified_only():
        return "cgroup v2 (unified)"
    return "cgroup v1 (legacy controllers)" if any(
        h.controllers for h in cgroups.hierarchies()) else "unknown"


def inotify_in_use(proc: Path = Path("/proc"), uid: int = 0) -> int:
    """inotify instances held by the processes of a user (root's: every node's)."""
    count = 0
    for fds in proc.glob("[0-9]*/fd"):
        try:
            if fds.parent.stat().st_uid != uid:
                continue
            count += sum(1 for fd in fds.iterdir() if os.readlink(fd) == "anon_inode:inotify")
        except OSError:  # the process ended while we looked
            continue
    return count


def inotify_room(nodes: int) -> Finding:
    """Can `nodes` more nodes start without running out of root's inotify instances?"""
    limit = int(INOTIFY_LIMIT.read_text())
    used = inotify_in_use()
    need = nodes * INOTIFY_PER_NODE
    return Finding("inotify", used + need <= limit,
                   f"root holds {used} of {limit} instances; {nodes} more node(s) need about {need}",
                   "raise the limit (`sysctl fs.inotify.max_user_instances=1024`, kept in "
                   "/etc/sysctl.d/), or stop other labs (`hardway nodes down` with their "
                   "HARDWAY_BRIDGE)")


def checks(settings: Settings) -> list[Finding]:
    findings = [
        Finding("root", os.geteuid() == 0, f"running as uid {os.geteuid()}",
                "run hardway as root (sudo): nodes need mounts, cgroups and a bridge"),
        Finding("systemd-nspawn", shutil.which("systemd-nspawn") is not None,
                shutil.which("systemd-nspawn") or "not found",
                "apt-get install systemd-container"),
        Finding("debootstrap", shutil.which("debootstrap") is not None,
                shutil.which("debootstrap") or "not found", "apt-get install debootstrap"),
    ]
    for path in (settings.cache, settings.state):
        probe = path
        while not probe.exists():
            probe = probe.parent
        free = shutil.disk_usage(probe).free / 2**30
        findings.append(Finding(f"disk {path}", free >= MIN_FREE_GIB, f"{free:.1f} GiB free",
                                f"free at least {MIN_FREE_GIB} GiB there, or point "
                                f"HARDWAY_CACHE/HARDWAY_STATE at a larger disk"))
    layout = cgroup_layout()
    mode = "systemd (transient units)" if cgroups.systemd_is_pid1() else "own cgroups per node"
    findings.append(Finding("cgroups", layout != "unknown", f"{layout}; nodes run with {mode}",
                            "mount the cgroup hierarchies under /sys/fs/cgroup"))
    findings.append(Finding(
        "kmsg", Path("/dev/kmsg").exists(), "/dev/kmsg present" if Path("/dev/kmsg").exists()
        else "/dev/kmsg missing", "the kubelet needs /dev/kmsg: run on a host that has it"))
    cap = has_capability(CAP_SYS_RESOURCE)
    findings.append(Finding(
        "CAP_SYS_RESOURCE", True,
        "present" if cap else "absent: containerd will be told not to lower oom_score_adj",
        blocking=False))
    room = inotify_room(1)
    findings.append(Finding(room.name, room.ok, room.detail, room.fix, blocking=False))
    findings += network_checks(settings)
    return findings


def network_checks(settings: Settings) -> list[Finding]:
    links = {link["ifname"]: link for link in ip_json("-d", "link", "show")}
    bridge = links.get(settings.bridge)
    ours = bridge is not None and bridge.get("linkinfo", {}).get("info_kind") == "bridge" and \
        any(a.get("local") == str(settings.host_address)
            for a in (ip_json("addr", "show", "dev", settings.bridge) or [{}])[0].get("addr_info", []))
    if bridge is None:
        name = Finding("bridge name", True, f"{settings.bridge} is free")
    else:
        name = Finding("bridge name", ours, f"{settings.bridge} exists" +
                       (" (ours)" if ours else " and is not the lab bridge"),
                       "set HARDWAY_BRIDGE to an unused interface name")
    clashes = []
    for route in ip_json("route", "show"):
        dst, dev = route.get("dst", ""), route.get("dev", "")
        if dst in ("default", "") or dev == settings.bridge:
            continue
        try:
            if ipaddress.ip_network(dst, strict=False).overlaps(settings.subnet):
                clashes.append(f"{dst} via {dev}")
        except ValueError:
            continue
    subnet = Finding("bridge subnet", not clashes,
                     f"{settings.subnet} " + (f"overlaps {', '.join(clashes)}" if clashes
                                              else "is free"),
                     "set HARDWAY_SUBNET to an unused private range, e.g. 10.78.0.0/24")
    return [name, subnet]


def blocking_problems(settings: Settings) -> list[Finding]:
    return [f for f in checks(settings) if not f.ok and f.blocking]


def bridge_up(settings: Settings) -> None:
    def ip(*args: str) -> None:
        run(["ip", *args], what=f"setting up the lab bridge {settings.bridge}",
            fix="`hardway doctor` shows what the host lacks")

    if not ip_json("link", "show", "dev", settings.bridge):
        ip("link", "add", settings.bridge, "type", "bridge")
    address = f"{settings.host_address}/{settings.subnet.prefixlen}"
    ip("address", "replace", address, "dev", settings.bridge)
    ip("link", "set", settings.bridge, "up")


def bridge_down(settings: Settings) -> None:
    if ip_json("link", "show", "dev", settings.bridge):
        run(["ip", "link", "delete", settings.bridge], what=f"removing the lab bridge {settings.bridge}",
            fix=f"remove it by hand: ip link delete {settings.bridge}")
