"""site.yml on real nodes: services, binaries, static pods, check mode, bad inputs, a
corrupted mirror and a node restart (issue: roles that turn a machine into a node). A second
converge changing nothing is molecule's idempotence step (tests/test_molecule.py). A lane of
its own (tests/conftest.py): it runs on the worker xdist gives it, on that worker's
test lab (`nodes` boots it again if an earlier lane took it down)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from hardway.mirror import artifacts
from hardway.mirror.store import Mirror
from tests.conftest import play_recap
from tests.integration import pods
from tests.integration.conftest import TEST_ENV, ansible_playbook, wait_for

FINGERPRINT = ("find /usr/local/bin /usr/local/sbin /etc/containerd /etc/kubernetes /etc/cni "
               "/opt/cni/bin /etc/systemd/system/containerd.service "
               "/etc/systemd/system/kubelet.service -type f -print0 2>/dev/null | sort -z | "
               "xargs -0 sha256sum; systemctl show -P ActiveEnterTimestamp containerd kubelet")


def fingerprints(nodes) -> dict[str, str]:
    return {n.name: nodes.ok(n.name, FINGERPRINT) for n in nodes.nodes}


def test_containerd_and_kubelet_are_enabled_running_and_answering(nodes):
    for node in nodes.nodes:
        out = nodes.ok(node.name, "systemctl is-enabled containerd kubelet; "
                                "systemctl is-active containerd kubelet; "
                                "ctr version | grep -c 'Version:'; "
                                "curl -fsS http://127.0.0.1:10248/healthz")
        assert out.split() == ["enabled", "enabled", "active", "active", "2", "ok"]


def test_installed_binaries_are_the_mirror_artifacts(nodes):
    mirror = Mirror(nodes.settings.mirror)
    kubelet = artifacts.artifact("kubelet", artifacts.host_arch())
    want = {"/usr/local/bin/kubelet": hashlib.sha256(
        (mirror.root / kubelet.local_path).read_bytes()).hexdigest()}
    for component, member, dest in [
            ("containerd", "bin/containerd", "/usr/local/bin/containerd"),
            ("runc", None, "/usr/local/sbin/runc"),
            ("cni_plugins", "bridge", "/opt/cni/bin/bridge"),
            ("crictl", "crictl", "/usr/local/bin/crictl")]:
        art = artifacts.artifact(component, artifacts.host_arch())
        data = (mirror.root / art.local_path).read_bytes()
        if member:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                data = tar.extractfile(member).read()
        want[dest] = hashlib.sha256(data).hexdigest()
    for node in nodes.nodes:
        have = dict(reversed(line.split()) for line in
                    nodes.ok(node.name, f"sha256sum {' '.join(want)}").splitlines())
        assert have == want, node.name
        versions = nodes.ok(node.name, "kubelet --version; containerd --version; runc --version | "
                                     "head -1; crictl --version")
        pinned = artifacts.pinned_versions()
        for expected in (f"Kubernetes v{pinned['kubelet']}", f"v{pinned['containerd']}",
                         f"runc version {pinned['runc']}", f"v{pinned['crictl']}"):
            assert expected in versions


def test_the_kubelet_runs_with_no_cni_config(nodes):
    for node in nodes.nodes:
        assert nodes.ok(node.name, "ls /etc/cni/net.d | wc -l").strip() == "0"
        assert nodes.ok(node.name, "systemctl is-active kubelet").strip() == "active"


def test_a_host_network_static_pod_serves_and_goes_when_removed(nodes):
    pods.write(nodes, "node1", "web", pods.nginx())
    wait_for(lambda: ((r := nodes.sh("node1", "curl -fsS -m 2 http://127.0.0.1/")).returncode == 0
                      and "Welcome to nginx" in r.stdout, r.stdout + r.stderr),
             60, "the static nginx pod answering on node1:80")
    pods.remove(nodes, "node1", "web")
    wait_for(lambda: ((r := nodes.sh("node1", "crictl pods --name web -q --state ready"))
                      .stdout.strip() == "", r.stdout),
             60, "the static pod gone after its manifest was removed")
    assert nodes.sh("node1", "curl -fsS -m 2 http://127.0.0.1/").returncode != 0


def test_check_mode_on_provisioned_nodes_reports_no_change(nodes):
    result = ansible_playbook("site.yml", "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    assert all(s["changed"] == 0 for s in play_recap(result.stdout).values())


BAD_INPUTS = [
    ({"kubelet_version": "1.99.0"}, "No checksum is pinned for kubelet 1.99.0"),
    ({"download_arch_map": {"aarch64": "arm64"}}, "the lab supports aarch64 only"),
    ({"lab_pod_cidr": "10.240.1.0/33"}, "is not an IPv4 network"),
    ({"lab_pod_cidr": "10.240.0.0/16"}, "Pod CIDRs overlap: node1 (10.240.0.0/16) and node2"),
    ({"download_base_urls": {"kubernetes": "http://127.0.0.1:9", "github": "http://127.0.0.1:9"}},
     "cannot reach http://127.0.0.1:9"),
    ({"containerd_cgroup_driver": "cgroupfs", "kubelet_cgroup_driver": "systemd"},
     "set both to the same driver"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS,
                         ids=["no-checksum", "arch", "bad-cidr", "overlap", "unreachable",
                              "driver-mismatch"])
def test_bad_inputs_fail_before_any_change(nodes, extra, message):
    before = fingerprints(nodes)
    result = ansible_playbook("site.yml", "-e", json.dumps(extra))
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert "PLAY [Install and start the node components]" not in result.stdout
    assert fingerprints(nodes) == before


def test_a_corrupted_mirror_artifact_fails_and_leaves_the_binary_working(nodes, tmp_path):
    # A copy of the mirror whose kubelet is corrupt, served on the lab bridge.
    bad = tmp_path / "mirror"
    shutil.copytree(nodes.settings.mirror, bad)
    kubelet = artifacts.artifact("kubelet", artifacts.host_arch())
    (bad / kubelet.local_path).write_bytes(b"corrupted in transit")
    server = subprocess.Popen(["python3", "-m", "http.server", "--bind",
                               str(nodes.settings.host_address), "8079", "--directory", str(bad)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://{nodes.settings.host_address}:8079"
        before = nodes.ok("node1", "sha256sum /usr/local/bin/kubelet")
        wait_for(lambda: (nodes.sh("node1", f"curl -fsS -o /dev/null {url}/index.yml")
                          .returncode == 0, "no answer"), 10, "the corrupted mirror answering")
        extra = {"download_base_urls": {"kubernetes": f"{url}/kubernetes",
                                        "github": f"{url}/github"},
                 "download_cache_dir": "/var/tmp/hardway-corrupt-test"}
        result = ansible_playbook("site.yml", "--limit", "node1", "-e", json.dumps(extra))
        assert result.returncode != 0
        assert "Could not fetch a verified kubelet" in " ".join(result.stdout.split())
        assert nodes.ok("node1", "sha256sum /usr/local/bin/kubelet") == before
        assert f"Kubernetes v{artifacts.pinned_versions()['kubelet']}" in nodes.ok(
            "node1", "/usr/local/bin/kubelet --version")
        assert nodes.ok("node1", "systemctl is-active kubelet").strip() == "active"
    finally:
        server.terminate()
        server.wait()
        nodes.sh("node1", "rm -rf /var/tmp/hardway-corrupt-test")


def test_a_config_toml_containerd_cannot_start_with_is_rolled_back(nodes):
    config = "/etc/containerd/config.toml"
    before = nodes.ok("node1", f"sha256sum {config}")
    # A quote in a string value leaves config.toml unparseable: containerd exits at start.
    extra = {"containerd_sandbox_image": "registry.invalid/pause':3", "containerd_start_timeout": 20}
    try:
        result = ansible_playbook("site.yml", "--limit", "node1", "-e", json.dumps(extra))
        assert result.returncode != 0
        assert "did not come back with its new config.toml, so the previous config.toml was put back" \
            in " ".join(result.stdout.split()), result.stdout[-3000:]
        assert nodes.ok("node1", f"sha256sum {config}") == before
        wait_for(lambda: ((r := nodes.sh("node1", "systemctl is-active containerd"))
                          .stdout.strip() == "active", r.stdout), 60,
                 "containerd active again with the previous config.toml")
    finally:
        nodes.sh("node1", f"rm -f {config}.*~")


def test_a_unit_file_changed_behind_systemds_back_is_read_again(nodes):
    # A run that wrote the unit file and stopped before the reload leaves systemd running the
    # unit it read; the next converge finds nothing to write but must still reload.
    unit = "/etc/systemd/system/kubelet.service"
    nodes.ok("node1", f"cp {unit} /root/kubelet.service && echo '# edited' >> {unit} && "
                      f"systemctl daemon-reload && cat /root/kubelet.service > {unit} && "
                      "rm /root/kubelet.service")
    assert nodes.ok("node1", "systemctl show -P NeedDaemonReload kubelet").strip() == "yes"
    result = ansible_playbook("site.yml", "--limit", "node1")
    assert result.returncode == 0, result.stdout[-3000:]
    assert nodes.ok("node1", "systemctl show -P NeedDaemonReload kubelet").strip() == "no"
    assert nodes.ok("node1", "systemctl is-active kubelet").strip() == "active"


def test_after_a_node_restart_containerd_kubelet_and_static_pods_come_back(nodes):
    from tests.integration.conftest import hardway

    pods.write(nodes, "node2", "web", pods.nginx())
    wait_for(lambda: ((r := nodes.sh("node2", "curl -fsS -m 2 http://127.0.0.1/")).returncode == 0,
                      r.stderr), 60, "nginx on node2 before the restart")
    hardway("nodes", "restart", "node2")
    wait_for(lambda: ((r := nodes.sh("node2", "systemctl is-active containerd kubelet"))
                      .stdout.split() == ["active", "active"], r.stdout), 60,
             "containerd and kubelet active after the restart")
    wait_for(lambda: ((r := nodes.sh("node2", "curl -fsS -m 2 http://127.0.0.1/")).returncode == 0,
                      r.stderr), 90, "the static nginx pod serving again after the restart")
    pods.remove(nodes, "node2", "web")


def test_the_local_inventory_is_generated_where_asked():
    hosts = Path(TEST_ENV["HARDWAY_INVENTORY"]) / "hosts.yml"
    assert hosts.exists()
    assert "lab_pod_cidr: 10.240.2.0/24" in hosts.read_text()
