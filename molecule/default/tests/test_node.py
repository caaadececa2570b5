"""What site.yml promises on every node, checked on the real nodes (testinfra)."""

from __future__ import annotations

import time

import pytest
import yaml

from hardway.mirror import artifacts

# Every node: molecule names no hosts, so each module names its own.
testinfra_hosts = ["ansible://lab_nodes"]
VERSIONS = artifacts.pinned_versions()


@pytest.fixture(scope="module")
def variables(host):
    return host.ansible.get_variables()


def test_containerd_and_kubelet_are_running_and_enabled(host):
    for name in ("containerd", "kubelet"):
        service = host.service(name)
        assert service.is_running, name
        assert service.is_enabled, name


def test_the_containerd_socket_answers(host):
    assert host.socket("unix:///run/containerd/containerd.sock").is_listening
    info = host.run("crictl --timeout 5s info")
    assert info.rc == 0, info.stderr
    assert '"RuntimeReady"' in info.stdout


@pytest.mark.parametrize(("command", "expected"), [
    ("/usr/local/bin/kubelet --version", f"Kubernetes v{VERSIONS['kubelet']}"),
    ("/usr/local/bin/containerd --version", f"v{VERSIONS['containerd']}"),
    ("/usr/local/sbin/runc --version", f"runc version {VERSIONS['runc']}"),
    ("/usr/local/bin/crictl --version", f"v{VERSIONS['crictl']}"),
    ("/opt/cni/bin/bridge --version", f"v{VERSIONS['cni_plugins']}"),
])
def test_components_run_at_their_pinned_versions(host, command, expected):
    result = host.run(command)
    assert result.rc == 0, result.stderr
    assert expected in result.stdout + result.stderr


def test_installed_kubelet_is_the_verified_download(host, variables):
    arch = artifacts.arch_of(host.system_info.arch)
    checksums = variables["download_checksums"]["kubelet"][arch][VERSIONS["kubelet"]]
    assert "sha256:" + host.file("/usr/local/bin/kubelet").sha256sum == checksums


def test_crictl_points_at_containerd(host):
    config = yaml.safe_load(host.file("/etc/crictl.yaml").content_string)
    assert config["runtime-endpoint"] == "unix:///run/containerd/containerd.sock"


def test_a_host_network_static_pod_serves_then_goes(host, variables):
    image = variables.get("lab_images_local", {}).get("nginx", "lab.local/nginx:1.22")
    manifest = (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: probe\nspec:\n  hostNetwork: true\n"
                f"  containers:\n  - name: nginx\n    image: {image}\n    imagePullPolicy: Never\n")
    host.run(f"cat > /etc/kubernetes/manifests/probe.yaml <<'EOF'\n{manifest}EOF")
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            answer = host.run("curl -fsS -m 2 http://127.0.0.1/")
            if answer.rc == 0:
                break
            time.sleep(1)
        assert answer is not None and "Welcome to nginx" in answer.stdout, answer.stderr
    finally:
        host.run("rm -f /etc/kubernetes/manifests/probe.yaml")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and host.run("crictl pods --name probe -q --state ready").stdout:
        time.sleep(1)
    assert host.run("crictl pods --name probe -q --state ready").stdout.strip() == ""
