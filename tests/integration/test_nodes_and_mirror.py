"""Local lab nodes and the served mirror, on real nodes (issue: lab nodes and mirror)."""

import ipaddress
import os
import subprocess

from hardway.mirror import artifacts
from tests.integration.conftest import BIN, TEST_ENV


def test_both_nodes_answer_ansible_over_ssh(lab):
    result = subprocess.run(
        [str(BIN / "ansible"), "lab_nodes", "-i", f"{TEST_ENV['HARDWAY_INVENTORY']}/hosts.yml",
         "-m", "ansible.builtin.ping"], capture_output=True, text=True,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", PATH=f"{BIN}:{os.environ['PATH']}"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 2


def test_each_node_is_booted_with_its_own_name_and_address(lab):
    for index, node in enumerate(lab.nodes, start=1):
        out = lab.ok(node.name, "systemctl is-system-running; hostname; "
                                "ip -4 -o address show dev host0")
        state, hostname, address = out.splitlines()
        assert state == "running"
        assert hostname == f"node{index}"
        network = ipaddress.ip_network(TEST_ENV["HARDWAY_SUBNET"])
        assert f"{network.network_address + 10 + index}/24" in address


def test_nodes_have_no_route_off_their_bridge(lab):
    routes = lab.ok("node1", "ip -4 route show dev host0")
    subnet, node1 = TEST_ENV["HARDWAY_SUBNET"], lab.node("node1").address
    assert routes.strip() == f"{subnet} proto kernel scope link src {node1}"
    assert "default" not in lab.ok("node1", "ip -4 route show")
    # A route lookup only: no packet leaves.
    lookup = lab.sh("node1", "ip -4 route get 192.0.2.1")
    assert lookup.returncode != 0 and "unreachable" in lookup.stderr


def test_a_node_fetches_kubelet_and_containerd_from_the_mirror_and_verifies_them(lab):
    url = lab.settings.mirror_url
    kubelet = artifacts.artifact("kubelet", artifacts.host_arch())
    containerd = artifacts.artifact("containerd", artifacts.host_arch())
    out = lab.ok("node1", f"""set -e
        cd "$(mktemp -d)"
        curl -fsSO {url}/{kubelet.local_path}
        curl -fsSO {url}/{kubelet.local_checksum_path}
        echo "$(cat kubelet.sha256)  kubelet" | sha256sum --check
        curl -fsSO {url}/{containerd.local_path}
        curl -fsSO {url}/{containerd.local_checksum_path}
        sha256sum --check {containerd.filename}.sha256sum
        chmod +x kubelet && ./kubelet --version
        cd / && rm -rf "$OLDPWD"
    """)
    assert "kubelet: OK" in out
    assert f"{containerd.filename}: OK" in out
    assert f"Kubernetes v{kubelet.version}" in out


def test_a_corrupted_file_fails_its_checksum_on_the_node(lab):
    url = lab.settings.mirror_url
    kubelet = artifacts.artifact("kubelet", artifacts.host_arch())
    result = lab.sh("node1", f"""cd "$(mktemp -d)" &&
        curl -fsSO {url}/{kubelet.local_checksum_path} &&
        printf 'not the kubelet' > kubelet &&
        echo "$(cat kubelet.sha256)  kubelet" | sha256sum --check""")
    assert result.returncode != 0
    assert "FAILED" in result.stdout


def test_the_offline_images_are_in_containerd(lab):
    out = lab.ok("node1", "ctr --namespace k8s.io images list --quiet")
    for name in ("lab.local/pause:3.10", "lab.local/nginx:1.22", "lab.local/busybox:1.35"):
        assert name in out.split()
