"""Lab 02: a second hostNetwork nginx cannot bind port 80 and crash-loops; the first
keeps serving."""


def test_the_second_nginx_was_started(node):
    if not node.sandboxes("static-nginx-2"):
        if node.settling() and node.manifest_for("static-nginx-2"):
            raise AssertionError("still starting: the kubelet has not created static-nginx-2 "
                                 "yet: retry in 5 s")
        raise AssertionError(f"{node.describe('static-nginx-2')}: copy its manifest into "
                             "/etc/kubernetes/manifests")


def test_the_second_nginx_fails_to_bind_and_is_not_running(node):
    tries = node.containers_of("static-nginx-2")
    failed = [c for c in tries if c["state"] == "CONTAINER_EXITED"
              and "Address already in use" in node.logs(c)]
    if not failed:
        if node.settling() or any(c["state"] != "CONTAINER_EXITED" for c in tries[:1]):
            raise AssertionError(f"still starting: {node.describe('static-nginx-2')}: retry in 5 s")
        raise AssertionError(f"{node.describe('static-nginx-2')}: no try of it has failed with "
                             "'Address already in use'")


def test_the_first_nginx_still_serves(node):
    container = node.require_running("static-nginx")
    assert "Welcome to nginx" in node.http("127.0.0.1"), \
        "curl http://localhost on the node got no nginx page"
    assert node.pid_of(container) in node.listeners(80), \
        "port 80 is not served by static-nginx any more"
