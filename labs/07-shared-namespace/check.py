"""Lab 07: the containers of one pod share one network namespace, which containerd made
before the pod's pause process started in it: localhost reaches the neighbour, and a port
can be bound only once."""


def newest(node, container: str) -> dict | None:
    found = node.containers_of("web-sidecar", container)
    return found[0] if found else None


def test_nginx_and_the_sidecar_run_in_one_pod(node):
    for name in ("nginx", "sidecar"):
        node.require_running("web-sidecar", name,
                             why="copy its manifest into /etc/kubernetes/manifests")


def test_the_sidecar_reaches_nginx_on_localhost(node):
    sidecar = node.require_running("web-sidecar", "sidecar")
    page = node.http_from(sidecar, "127.0.0.1")
    assert "Welcome to nginx" in page, "from the sidecar, 127.0.0.1:80 did not answer"


def test_all_containers_and_the_sandbox_share_one_network_namespace(node):
    pod = node.pod("web-sidecar")
    assert pod, node.describe("web-sidecar")
    spaces = {"sandbox (pause)": node.inspect_pod(pod).get("info", {}).get("pid", 0)}
    for name in ("nginx", "sidecar"):
        spaces[name] = node.pid_of(node.require_running("web-sidecar", name))
    links = {name: node.host.run(f"readlink /proc/{pid}/ns/net").stdout.strip()
             for name, pid in spaces.items()}
    assert len(set(links.values())) == 1 and all(links.values()), f"network namespaces differ: {links}"


def test_the_second_nginx_cannot_bind_port_80_again(node):
    again = newest(node, "nginx-again")
    assert again, f"no nginx-again container: {node.describe('web-sidecar')}"
    log = node.logs(again)
    if "Address already in use" not in log and again["state"] != "CONTAINER_EXITED":
        raise AssertionError("still starting: nginx-again has not failed yet: retry in 5 s")
    assert "Address already in use" in log, (
        "nginx-again's log does not say 'Address already in use': "
        + " | ".join(log.strip().splitlines()[-2:]))
