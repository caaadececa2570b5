"""Lab 02: a second hostNetwork nginx cannot bind port 80 and crash-loops; the first
keeps serving."""

from labcheck import containers, http, kubelet_log_since, until


def test_the_second_nginx_was_started(host):
    found = until(lambda: containers(host, "static-nginx-2"), 10)
    assert found, ("no container of static-nginx-2 exists: the kubelet has no manifest for it "
                   "in /etc/kubernetes/manifests")


def test_the_second_nginx_keeps_failing_and_being_restarted(host):
    deadline = 10 if containers(host, "static-nginx-2") else 0
    exited = until(lambda: [c for c in containers(host, "static-nginx-2")
                            if c["state"] == "CONTAINER_EXITED"], deadline)
    seen = containers(host, "static-nginx-2")
    states = ", ".join(f"attempt {c['metadata'].get('attempt', 0)} {c['state']}" for c in seen)
    assert exited, f"no container of static-nginx-2 has exited (seen: {states or 'nothing'})"
    restarted = any(c["metadata"].get("attempt", 0) >= 1 for c in seen)
    # The kubelet's back-off grows with every failure (and survives re-adding the same
    # manifest), so the next restart may be minutes away: CrashLoopBackOff counts too.
    backing_off = kubelet_log_since(host, "static-nginx-2.yaml", "CrashLoopBackOff",
                                    "static-nginx-2")
    assert restarted or backing_off, (
        f"static-nginx-2 exited but the kubelet neither restarted it nor reports "
        f"CrashLoopBackOff for it (seen: {states})")


def test_the_second_nginx_log_shows_the_bind_failure(host):
    found = containers(host, "static-nginx-2")
    assert found, "no container of static-nginx-2 exists"
    log = host.run(f"crictl logs {found[-1]['id']} 2>&1").stdout
    assert "Address already in use" in log, (
        "the log of static-nginx-2 does not say 'Address already in use'; last lines: "
        + " | ".join(log.strip().splitlines()[-3:]))


def test_the_first_nginx_still_serves(host):
    page = until(lambda: http(host, "127.0.0.1"), 5)
    assert "Welcome to nginx" in page, "curl http://localhost on the node got no nginx page"
