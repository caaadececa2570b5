"""Lab c4: the scheduler runs and placed the pod web; of the pods asking for the node's
port 8080, one runs and another waits, unschedulable: the scheduler, not the kubelet,
kept it off the node."""

import pytest
from labcheck import KUBECTL_SCRIPT, explain, look

PORT = 8080
SCRIPT = KUBECTL_SCRIPT + """
seen = {"scheduler": run("systemctl", "is-active", "kube-scheduler")[1].strip(), "pods": None}
rc, out, err = run(*KUBECTL, "get", "pods", "--namespace", "default", "-o", "json")
seen["error"] = (err.splitlines() or [""])[-1][:300]
if rc == 0:
    seen["pods"] = []
    for p in json.loads(out)["items"]:
        scheduled = [c for c in p.get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"]
        seen["pods"].append({
            "name": p["metadata"]["name"], "node": p["spec"].get("nodeName", ""),
            "phase": p.get("status", {}).get("phase", ""),
            "reason": p.get("status", {}).get("reason", ""),
            "scheduled": scheduled[0] if scheduled else {},
            "host_ports": [port.get("hostPort") for c in p["spec"]["containers"]
                           for port in c.get("ports", []) if port.get("hostPort")]})
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def seen(host) -> dict:
    return look(host, SCRIPT, "the scheduler's work")


def describe(pod: dict) -> str:
    where = f"on {pod['node']}" if pod["node"] else "on no node"
    return f"{pod['name']} {pod['phase'] or '?'} {where}"


def test_the_scheduler_runs_and_placed_web(seen):
    assert seen["pods"] is not None, f"kubectl cannot list the pods: {explain(seen['error'])}"
    assert seen["scheduler"] == "active", (
        f"kube-scheduler.service is {seen['scheduler'] or 'unknown'}: `systemctl start kube-scheduler`")
    web = next((p for p in seen["pods"] if p["name"] == "web"), None)
    assert web, "no pod web (lab c2's): `kubectl apply -f /root/lab/c2/web.yaml`"
    assert web["node"] and web["phase"] == "Running", (
        f"web is {web['phase']} {'on ' + web['node'] if web['node'] else 'on no node'}: "
        f"{web['scheduled'].get('message', '')[:200]}")


def test_one_pod_holds_port_8080_and_the_scheduler_keeps_another_waiting(seen):
    claims = [p for p in seen["pods"] or [] if PORT in p["host_ports"]]
    shown = ", ".join(describe(p) for p in claims) or "none"
    running = [p for p in claims if p["phase"] == "Running"]
    assert running, f"no pod asking for host port {PORT} runs (pods asking: {shown})"
    by_hand = [p for p in claims if p["node"] and p["phase"] == "Failed"]
    assert not by_hand, (
        f"{', '.join(p['name'] for p in by_hand)} is Failed on {by_hand[0]['node']}: the kubelet "
        f"refused it ({by_hand[0]['reason'] or 'Failed'}), so the scheduler did not keep it away; "
        "was it placed by hand (spec.nodeName), never meeting the scheduler? Delete it and create "
        "it without nodeName")
    waiting = [p for p in claims if not p["node"] and p["scheduled"].get("reason") == "Unschedulable"
               and "free ports" in p["scheduled"].get("message", "")]
    assert waiting, (
        f"no second pod asking for host port {PORT} waits, unschedulable for want of a free port "
        f"(pods asking: {shown}): once the first runs, `kubectl apply -f "
        "/root/lab/c4/web-hostport-2.yaml`")
