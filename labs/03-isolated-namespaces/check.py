"""Lab 03: without a CNI config, pods in their own network namespace get no sandbox and
the node reports its network as not ready."""

import yaml
from labcheck import MANIFESTS, kubelet_log_since, ready_pods, until


def test_both_manifests_ask_for_their_own_network_namespace(host):
    for name in ("static-nginx", "static-nginx-2"):
        manifest = host.file(f"{MANIFESTS}/{name}.yaml")
        assert manifest.exists, f"{MANIFESTS}/{name}.yaml is missing"
        spec = yaml.safe_load(manifest.content_string)["spec"]
        assert not spec.get("hostNetwork", False), \
            f"{name}.yaml still says hostNetwork: true"


def test_no_nginx_pod_gets_a_sandbox(host):
    gone = until(lambda: not ready_pods(host, "static-nginx")
                 and not ready_pods(host, "static-nginx-2"), 15)
    running = [n for n in ("static-nginx", "static-nginx-2") if ready_pods(host, n)]
    assert gone, f"{', '.join(running)} still has a Ready sandbox; expected none without a CNI config"


def test_the_node_reports_the_pod_network_not_ready(host):
    assert host.run("ls -A /etc/cni/net.d").stdout.strip() == "", \
        "/etc/cni/net.d is not empty: this step needs the node without a CNI config"
    info = host.run("crictl info -o json").stdout
    assert '"NetworkReady"' in info and "cni plugin not initialized" in info, \
        "crictl info does not report NetworkReady=false (cni plugin not initialized)"
    journal = until(lambda: kubelet_log_since(host, "static-nginx.yaml",
                                              "cni plugin not initialized", "static-nginx"), 10)
    assert journal, ("the kubelet journal has no 'cni plugin not initialized' error for the "
                     "static-nginx pods since their manifest changed")
