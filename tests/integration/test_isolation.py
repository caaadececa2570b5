"""Nodes stay apart from each other and from the host (issue: host untouched, isolated,
crash-proof). The host-kernel comparison and the final clean-up are in test_zz_down.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.integration import pods
from tests.integration.conftest import BIN, hardway, wait_for


def pod_cgroup_dirs(node) -> set[str]:
    found = set()
    for directory in node.cgroups:
        for path in Path(directory).rglob("kubepods*"):
            found.add(str(path))
    return found


def test_each_node_has_its_own_cgroups_and_its_own_pod_cgroups(lab):
    one, two = lab.nodes
    assert one.cgroups and two.cgroups
    assert not set(one.cgroups) & set(two.cgroups)
    pods.write(lab, "node1", "web", pods.nginx())
    pods.write(lab, "node2", "web", pods.nginx())
    for node in lab.nodes:
        wait_for(lambda n=node: ((r := lab.sh(n.name, "curl -fsS -m 2 127.0.0.1")).returncode == 0,
                                 r.stderr), 60, f"nginx on {node.name}")
    pods_one, pods_two = pod_cgroup_dirs(lab.node("node1")), pod_cgroup_dirs(lab.node("node2"))
    assert pods_one and pods_two
    assert all(p.startswith(tuple(one.cgroups)) for p in pods_one)
    assert all(p.startswith(tuple(two.cgroups)) for p in pods_two)


def test_stopping_containerd_on_one_node_leaves_the_other_serving(lab):
    pods.write(lab, "node1", "web", pods.nginx())
    wait_for(lambda: ((r := lab.sh("node1", "curl -fsS -m 2 127.0.0.1")).returncode == 0,
                      r.stderr), 60, "nginx on node1")
    try:
        lab.ok("node2", "systemctl stop kubelet containerd")
        answered = 0
        for _ in range(20):
            result = subprocess.run(["curl", "-fsS", "-m", "2", f"http://{lab.node('node1').address}/"],
                                    capture_output=True, text=True)
            answered += "Welcome to nginx" in result.stdout
            time.sleep(0.1)
        assert answered == 20
        assert lab.ok("node1", "systemctl is-active containerd kubelet").split() == ["active"] * 2
    finally:
        lab.ok("node2", "systemctl start containerd kubelet")


def test_a_memory_hog_is_stopped_by_its_node_cap_alone(lab):
    pods.write(lab, "node1", "web", pods.nginx())
    # A shell doubling a string until something stops it.
    hog = ["sh", "-c", "x=0123456789abcdef; while true; do x=$x$x; done"]
    pods.write(lab, "node2", "hog", pods.busybox("hog", hog))
    try:
        def hog_killed():
            out = lab.sh("node2", "id=$(crictl ps -a --name hog -q | tail -1); [ -n \"$id\" ] && "
                                  "crictl inspect -o go-template --template "
                                  "'{{.status.exitCode}} {{.status.reason}}' $id").stdout
            return out.startswith("137"), out

        wait_for(hog_killed, 120, "the hog killed inside node2", interval=1)
        for _ in range(20):
            result = subprocess.run(["curl", "-fsS", "-m", "2", f"http://{lab.node('node1').address}/"],
                                    capture_output=True, text=True)
            assert "Welcome to nginx" in result.stdout
        assert lab.ok("node2", "systemctl is-active containerd kubelet").split() == ["active"] * 2
        memory = next(c for c in lab.node("node2").cgroups if "/memory/" in c)
        assert int(Path(memory, "memory.limit_in_bytes").read_text()) == lab.settings.node_memory
        assert int(Path(memory, "memory.failcnt").read_text()) > 0  # the node's cap was hit
        kernel = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
        assert f"oom_memcg={memory.split('/sys/fs/cgroup/memory', 1)[1]}" in kernel
    finally:
        pods.remove(lab, "node2", "hog")


KILL_ENV = {"HARDWAY_BRIDGE": "hwkil0", "HARDWAY_SUBNET": "10.79.0.0/24",
            "HARDWAY_STATE": "/var/lib/hardway-kill", "HARDWAY_INVENTORY":
            "/var/lib/hardway-kill/inventory"}


def test_sigkill_during_nodes_up_leaves_nothing_after_down(lab):
    hardway("nodes", "down", env=KILL_ENV, check=False)
    for delay in (0.3, 1.0, 2.5):
        process = subprocess.Popen([str(BIN / "hardway"), "nodes", "up", "--count", "2"],
                                   env=dict(os.environ, **KILL_ENV), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        down = hardway("nodes", "down", env=KILL_ENV)
        assert "nothing left behind" in down.stdout, (delay, down.stdout, down.stderr)
        assert not list(Path("/sys/fs/cgroup").rglob("hardway-hwkil0-*"))
    up = hardway("nodes", "up", "--count", "1", env=KILL_ENV)
    assert "1 node(s) running" in up.stdout
    hardway("nodes", "down", env=KILL_ENV)


def ansible_for(inventory: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any("ansible-playbook" in a for a in args[:2]) and any(inventory in a for a in args):
            found.append(cmdline.parent.name)
    return found


def test_sigkill_during_provisioning_stops_ansible_and_down_cleans_up(lab):
    inventory = KILL_ENV["HARDWAY_INVENTORY"]
    hardway("nodes", "down", env=KILL_ENV, check=False)
    process = subprocess.Popen([str(BIN / "hardway"), "up", "--count", "1"],
                               env=dict(os.environ, **KILL_ENV), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (bool(ansible_for(inventory)), "no ansible-playbook yet"), 120,
                 "site.yml running for the kill-drill lab")
        time.sleep(5)  # well inside the play
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    wait_for(lambda: (not ansible_for(inventory), ansible_for(inventory)), 15,
             "ansible-playbook ending with the killed hardway")
    down = hardway("nodes", "down", env=KILL_ENV)
    assert "nothing left behind" in down.stdout
    up = hardway("nodes", "up", "--count", "1", env=KILL_ENV)
    assert "1 node(s) running" in up.stdout
    hardway("nodes", "down", env=KILL_ENV)
