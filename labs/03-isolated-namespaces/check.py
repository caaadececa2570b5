"""Lab 03: without a CNI config, pods in their own network namespace get no sandbox and
the node reports its network as not ready."""

import json

from labcheck import CNI_CONFIGS


def test_both_manifests_ask_for_their_own_network_namespace(node):
    for name in ("static-nginx", "static-nginx-2"):
        found = node.manifest_for(name)
        assert found, f"no manifest in /etc/kubernetes/manifests defines pod {name}"
        path, data = found
        assert not (data.get("spec") or {}).get("hostNetwork", False), \
            f"{path} still says hostNetwork: true for {name}"


def test_the_node_reports_the_pod_network_not_ready(node):
    configs = node.files(CNI_CONFIGS)
    assert configs == [], f"{CNI_CONFIGS} holds {configs}: this step needs the node without a CNI config"
    info = json.loads(node.host.run("crictl info -o json").stdout or "{}")
    network = [c for c in info.get("status", {}).get("conditions", [])
               if c.get("type") == "NetworkReady"]
    assert network and not network[0].get("status"), \
        f"crictl info does not report NetworkReady=false (seen: {network})"


def test_no_nginx_pod_gets_a_sandbox(node):
    ready = [n for n in ("static-nginx", "static-nginx-2") if node.pod(n)]
    if ready and node.settling():
        raise AssertionError(f"still starting: {', '.join(ready)} still has its old sandbox while "
                             "the kubelet replaces it: retry in 5 s")
    assert not ready, (f"{', '.join(ready)} has a Ready sandbox; without a CNI config a pod in its "
                       "own network namespace gets none")
