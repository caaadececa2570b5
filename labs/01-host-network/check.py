"""Lab 01: nginx runs as a static pod in the node's network namespace."""

import json

from labcheck import http, ready_pods, until


def test_static_nginx_runs_as_a_static_pod(host):
    pods = until(lambda: ready_pods(host, "static-nginx"), 10)
    assert pods, ("no Ready pod called static-nginx: the kubelet has not picked up a manifest "
                  "for it in /etc/kubernetes/manifests")


def test_static_nginx_shares_the_node_network_namespace(host):
    pods = ready_pods(host, "static-nginx")
    assert pods, "no Ready pod called static-nginx"
    status = json.loads(host.run(f"crictl inspectp -o json {pods[0]['id']}").stdout)["status"]
    mode = status["linux"]["namespaces"]["options"]["network"]
    assert mode == "NODE", f"static-nginx has network namespace mode {mode}; expected NODE " \
                           "(hostNetwork: true)"


def test_nginx_answers_on_the_node_port_80(host):
    page = until(lambda: http(host, "127.0.0.1"), 5)
    assert "Welcome to nginx" in page, "curl http://localhost on the node got no nginx page"
