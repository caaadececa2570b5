"""Lab 01: nginx runs as a static pod in the node's network namespace and serves the
node's port 80 itself."""


def test_static_nginx_runs(node):
    node.require_running("static-nginx", why="copy its manifest into /etc/kubernetes/manifests")


def test_static_nginx_shares_the_node_network_namespace(node):
    mode = node.network_mode("static-nginx")
    assert mode == "NODE", (f"static-nginx has network namespace mode {mode or 'none'}; expected "
                            "NODE (hostNetwork: true)")


def test_the_static_pod_serves_the_node_port_80(node):
    container = node.require_running("static-nginx")
    page = node.http("127.0.0.1")
    assert "Welcome to nginx" in page, "curl http://localhost on the node got no nginx page"
    owners = node.listeners(80)
    assert node.pid_of(container) in owners, (
        f"port 80 is served by process(es) {owners}, not by static-nginx's container "
        f"(PID {node.pid_of(container)}): another web server holds the port")
