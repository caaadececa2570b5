"""Lab 10: a virtual IP, DNAT-ed by iptables to two nginx pods chosen at random, answers
every request, and both backends serve their share."""

from labcheck import pod_ip, running_container

REQUESTS = 30


def vip(lab_vars) -> str:
    return lab_vars.get("lab_service_ip", "10.32.0.10")


def served(host, name: str) -> int:
    found = running_container(host, name)
    if not found:
        return -1
    count = host.run(f"crictl logs {found['id']} 2>/dev/null | grep -c 'GET / '").stdout
    return int(count.strip() or 0)


def test_both_backends_run(host):
    for name in ("backend-1", "backend-2"):
        assert pod_ip(host, name), f"{name} has no pod IP: is its manifest in place?"


def test_the_service_chains_send_the_vip_to_both_backends(host, lab_vars):
    rules = host.run("iptables -t nat -S").stdout
    assert "-N HW-SVC-WEB" in rules, "the nat table has no HW-SVC-WEB chain"
    jump = f"-d {vip(lab_vars)}/32 -p tcp -m tcp --dport 80 -j HW-SVC-WEB"
    assert jump in rules, f"no rule sends {vip(lab_vars)}:80 to HW-SVC-WEB"
    assert "-m statistic --mode random --probability 0.5" in rules, \
        "HW-SVC-WEB has no random 50% rule"
    for name in ("backend-1", "backend-2"):
        assert f"--to-destination {pod_ip(host, name)}:80" in rules, \
            f"no DNAT rule to {name} ({pod_ip(host, name)}:80)"
    assert "-A OUTPUT -j HW-SERVICES" in rules, "OUTPUT does not jump to HW-SERVICES"
    route = host.run(f"ip -4 route get {vip(lab_vars)}")
    assert route.rc == 0, (f"the node has no route for {vip(lab_vars)}: a connection fails "
                           "before the nat table sees it (see step 5 of the README)")
    assert "-A PREROUTING -j HW-SERVICES" in rules, "PREROUTING does not jump to HW-SERVICES"


def test_the_vip_answers_and_both_backends_take_requests(host, lab_vars):
    before = {name: served(host, name) for name in ("backend-1", "backend-2")}
    answers = host.run(f"for i in $(seq {REQUESTS}); do curl -s -m 2 http://{vip(lab_vars)}/ "
                       "| grep -q 'Welcome to nginx' && echo ok || echo no; done").stdout.split()
    assert answers.count("ok") == REQUESTS, \
        f"{answers.count('ok')} of {REQUESTS} requests to {vip(lab_vars)} got the nginx page"
    after = {name: served(host, name) for name in ("backend-1", "backend-2")}
    share = {name: after[name] - before[name] for name in after}
    assert all(count > 0 for count in share.values()), \
        f"requests per backend over {REQUESTS} tries: {share}; expected both to serve"
