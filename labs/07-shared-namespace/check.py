"""Lab 07: the containers of one pod share one network namespace, which the pod's
sandbox (pause) process holds: localhost reaches the neighbour, a port can be bound once."""

import json

from labcheck import containers, http_from, ready_pods, until


def by_name(host) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for container in containers(host, "web-sidecar"):  # newest first
        found.setdefault(container["metadata"]["name"], container)
    return found


def netns(host, pid: int) -> str:
    return host.run(f"readlink /proc/{pid}/ns/net").stdout.strip()


def test_nginx_and_the_sidecar_run_in_one_pod(host):
    running = until(lambda: {n for n, c in by_name(host).items()
                             if c["state"] == "CONTAINER_RUNNING"} >= {"nginx", "sidecar"}, 10)
    assert running, ("web-sidecar does not run nginx and sidecar (seen: "
                     f"{ {n: c['state'] for n, c in by_name(host).items()} or 'no pod'})")


def test_the_sidecar_reaches_nginx_on_localhost(host):
    sidecar = by_name(host).get("sidecar")
    assert sidecar, "no sidecar container"
    page = http_from(host, sidecar, "127.0.0.1")
    assert "Welcome to nginx" in page, "from the sidecar, 127.0.0.1:80 did not answer"


def test_all_containers_and_the_sandbox_share_one_network_namespace(host):
    pods = ready_pods(host, "web-sidecar")
    assert pods, "no Ready web-sidecar pod"
    sandbox = json.loads(host.run(f"crictl inspectp -o json {pods[0]['id']}").stdout)
    spaces = {"sandbox (pause)": netns(host, sandbox["info"]["pid"])}
    for name in ("nginx", "sidecar"):
        container = by_name(host).get(name)
        assert container, f"no {name} container"
        info = json.loads(host.run(f"crictl inspect -o json {container['id']}").stdout)["info"]
        spaces[name] = netns(host, info["pid"])
    assert len(set(spaces.values())) == 1, f"network namespaces differ: {spaces}"


def test_the_second_nginx_cannot_bind_port_80_again(host):
    again = by_name(host).get("nginx-again")
    assert again, "no nginx-again container"
    log = host.run(f"crictl logs {again['id']} 2>&1").stdout
    assert "Address already in use" in log, (
        "nginx-again's log does not say 'Address already in use': "
        + " | ".join(log.strip().splitlines()[-2:]))
