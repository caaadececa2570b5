"""Lab 10: a virtual IP, DNAT-ed by iptables to two nginx pods chosen at random, answers
every request from the node and from a pod, and both backends serve their share."""

import re

from labcheck import CURL

REQUESTS = 20
BACKENDS = ("backend-1", "backend-2")


def served(node, name: str) -> int:
    found = node.running(name)
    if not found:
        return -1
    return node.logs(found).count("GET /")


def test_both_backends_run(node):
    for name in BACKENDS:
        node.require_running(name, why="copy its manifest into /etc/kubernetes/manifests")
        assert node.pod_ip(name), f"{name} has no pod IP: {node.describe(name)}"


def test_the_service_chains_send_the_vip_to_both_backends(node, lab_vars):
    vip = lab_vars["lab_service_ip"]
    rules = node.host.run("iptables -t nat -S").stdout
    assert "-N HW-SVC-WEB" in rules, "the nat table has no HW-SVC-WEB chain"
    jump = f"-d {vip}/32 -p tcp -m tcp --dport 80 -j HW-SVC-WEB"
    assert jump in rules, f"no rule sends {vip}:80 to HW-SVC-WEB"
    assert "-m statistic --mode random --probability 0.5" in rules, "HW-SVC-WEB has no random 50% rule"
    for name in BACKENDS:
        # `--to-destination IP` keeps the port as sent (80 here): as right as `IP:80`.
        target = re.escape(str(node.pod_ip(name)))
        assert re.search(rf"--to-destination {target}(:80)?(\s|$)", rules, re.M), \
            f"no DNAT rule to {name} ({node.pod_ip(name)}:80)"
    assert "-A OUTPUT -j HW-SERVICES" in rules, "OUTPUT does not jump to HW-SERVICES"
    assert "-A PREROUTING -j HW-SERVICES" in rules, "PREROUTING does not jump to HW-SERVICES"


def test_the_node_has_a_route_for_the_service_network(node, lab_vars):
    vip = lab_vars["lab_service_ip"]
    route = node.host.run(f"ip -4 route get {vip}")
    assert route.rc == 0, (f"the node has no route for {vip} ({route.stderr.strip()}): the kernel "
                           "picks a route before the nat table rewrites the address (step 5)")


def test_the_vip_answers_from_the_node_and_both_backends_take_requests(node, lab_vars):
    vip = lab_vars["lab_service_ip"]
    before = {name: served(node, name) for name in BACKENDS}
    # One curl, REQUESTS connections (URL globbing; the server closes each): every new
    # connection is a new conntrack entry, so the statistic rule picks a backend each time.
    pages = node.host.run(f"{CURL} -s -H 'Connection: close' 'http://{vip}/?[1-{REQUESTS}]'").stdout
    answered = pages.count("<title>Welcome to nginx")
    assert answered == REQUESTS, f"{answered} of {REQUESTS} requests to {vip} got the nginx page"
    share = {name: served(node, name) - before[name] for name in BACKENDS}
    assert all(count > 0 for count in share.values()), \
        f"requests per backend over {REQUESTS} tries: {share}; expected both to serve"


def test_the_vip_answers_from_a_pod(node, lab_vars):
    vip = lab_vars["lab_service_ip"]
    box = node.require_running("busybox-pod", why="lab 05's busybox-pod is the client here")
    page = node.http_from(box, vip)
    assert "Welcome to nginx" in page, (
        f"from busybox-pod, {vip}:80 did not answer ({page.strip()[-100:] or 'no reply'}): a pod's "
        "packets cross the cnio0 bridge, and PREROUTING sees them only with "
        "net.bridge.bridge-nf-call-iptables=1")
