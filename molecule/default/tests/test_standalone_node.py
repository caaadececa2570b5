"""What site.yml promises on a node without a control plane (the scenario's node2): a
standalone kubelet, on loopback only, and no CNI config until a lab writes one."""

from __future__ import annotations

import yaml

# node1 runs the control plane and its kubelet joins it (test_control_plane.py).
testinfra_hosts = ["ansible://node2"]


def test_the_kubelet_serves_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:10250").is_listening
    assert not host.socket("tcp://0.0.0.0:10250").is_listening
    listening = host.run("ss -Htln sport = :10250").stdout
    assert listening.split() and all("127.0.0.1:10250" in line for line in listening.splitlines())


def test_the_kubelet_is_standalone_and_allows_cgroup_v1_where_the_node_has_it(host):
    config = yaml.safe_load(host.file("/etc/kubernetes/kubelet.yaml").content_string)
    assert config["staticPodPath"] == "/etc/kubernetes/manifests"
    assert config["authorization"]["mode"] == "AlwaysAllow"
    assert config["authentication"]["webhook"]["enabled"] is False
    v2 = host.run("stat -f -c %T /sys/fs/cgroup").stdout.strip() == "cgroup2fs"
    assert config["failCgroupV1"] is v2


def test_no_cni_config_is_written_by_site_yml(host):
    assert host.file("/etc/cni/net.d").is_directory
    assert host.run("ls -A /etc/cni/net.d").stdout.strip() == ""
    for plugin in ("bridge", "host-local", "loopback", "portmap"):
        assert host.file(f"/opt/cni/bin/{plugin}").mode & 0o111
