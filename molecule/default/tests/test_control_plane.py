"""What site.yml promises on a control plane's node, checked on the real node (testinfra):
the components at their pinned versions, verified, running; the API server ready through
etcd; the node's own kubelet joined, and refusing callers it cannot authenticate."""

from __future__ import annotations

import json

import pytest

from hardway.mirror import artifacts

# The control plane's node alone (the scenario's node1).
testinfra_hosts = ["ansible://control_plane"]
VERSIONS = artifacts.pinned_versions()
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.kubeconfig"
UNITS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")


@pytest.fixture(scope="module")
def variables(host):
    return host.ansible.get_variables()


@pytest.mark.parametrize("unit", UNITS)
def test_each_component_is_running_and_enabled(host, unit):
    service = host.service(unit)
    assert service.is_running, unit
    assert service.is_enabled, unit


@pytest.mark.parametrize(("component", "path"), [
    ("kube_apiserver", "/usr/local/bin/kube-apiserver"),
    ("kube_controller_manager", "/usr/local/bin/kube-controller-manager"),
    ("kube_scheduler", "/usr/local/bin/kube-scheduler"),
    ("kubectl", "/usr/local/bin/kubectl"),
])
def test_each_binary_is_the_verified_download(host, variables, component, path):
    arch = artifacts.arch_of(host.system_info.arch)
    checksum = variables["download_checksums"][component][arch][VERSIONS[component]]
    assert "sha256:" + host.file(path).sha256sum == checksum, component


@pytest.mark.parametrize(("command", "expected"), [
    ("/usr/local/bin/etcd --version", f"etcd Version: {VERSIONS['etcd']}"),
    ("/usr/local/bin/etcdctl version", f"etcdctl version: {VERSIONS['etcd']}"),
    ("/usr/local/bin/kube-apiserver --version", f"Kubernetes v{VERSIONS['kube_apiserver']}"),
    ("/usr/local/bin/kubectl version --client", f"Client Version: v{VERSIONS['kubectl']}"),
])
def test_components_run_at_their_pinned_versions(host, command, expected):
    result = host.run(command)
    assert result.rc == 0, result.stderr
    assert expected in result.stdout


def test_the_api_server_is_ready_and_reaches_etcd(host):
    ready = host.run(f"{KUBECTL} get --raw '/readyz?verbose'")
    assert ready.rc == 0, ready.stderr
    assert "[+]etcd ok" in ready.stdout
    assert ready.stdout.rstrip().endswith("readyz check passed")


def test_etcd_and_the_api_server_listen_where_the_docs_say(host):
    listening = host.run("ss -Htln").stdout
    etcd = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(":2379")]
    assert etcd and all(address.startswith("127.0.0.1:") for address in etcd), etcd
    assert host.socket("tcp://0.0.0.0:6443").is_listening or \
        host.socket("tcp://:::6443").is_listening


def test_the_nodes_kubelet_joined_and_is_ready(host):
    name = host.check_output("hostname")
    node = json.loads(host.check_output(f"{KUBECTL} get node {name} -o json"))
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    assert node["status"]["nodeInfo"]["kubeletVersion"] == f"v{VERSIONS['kubelet']}"


def test_the_joined_kubelet_refuses_an_unauthenticated_caller(host):
    code = host.check_output("curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:10250/pods")
    assert code == "401"


@pytest.mark.parametrize("component", sorted(artifacts.CONTROL_PLANE_COMPONENTS))
def test_each_install_left_the_record_that_lets_the_next_converge_skip_it(host, variables,
                                                                           component):
    # Without it every converge fetches, unpacks and copies again, changing nothing.
    cache = variables.get("download_cache_dir", "/var/cache/hardway-download")
    records = host.run(f"find {cache}/{component}/{VERSIONS[component]} -name 'installed-*'")
    assert records.stdout.strip(), f"{component}: no install record under {cache}"
