"""Lab c2: the API server answers the admin, and the pod web, created through it, waits
in Pending with no node: no scheduler has placed it, and nobody placed it by hand."""

import pytest
from labcheck import KUBECTL_SCRIPT, explain, look

SCRIPT = KUBECTL_SCRIPT + r"""
import re
seen = {}
# Long enough for the API server's own checks to give up (etcd's takes 2 s), so that it
# answers with the ones that failed: "[-]etcd failed: reason withheld".
rc, out, err = run(*KUBECTL, "get", "--raw", "/readyz", "--request-timeout=8s", timeout=10)
seen["ready"] = out.strip() if rc == 0 else None
failing = re.findall(r"\[-\]([\w/.:-]+) failed", err)
seen["ready_error"] = ("/readyz names failing checks: " + ", ".join(failing) if failing
                       else (err.splitlines() or [""])[-1][:300])
seen["apiserver"] = run("systemctl", "is-active", "kube-apiserver")[1].strip()
seen["scheduler"] = run("systemctl", "is-active", "kube-scheduler")[1].strip()
if seen["ready"] is not None:
    rc, out, err = run(*KUBECTL, "get", "pods", "--namespace", "default", "-o", "json")
    seen["pods"] = [{"name": p["metadata"]["name"], "node": p["spec"].get("nodeName", ""),
                     "phase": p.get("status", {}).get("phase", "")}
                    for p in json.loads(out)["items"]] if rc == 0 else None
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def seen(host) -> dict:
    return look(host, SCRIPT, "the API server")


def test_the_api_server_answers_the_admin(seen):
    if seen["apiserver"] != "active":
        raise AssertionError(f"kube-apiserver.service is {seen['apiserver'] or 'unknown'}: "
                             "`journalctl -u kube-apiserver -n 20` says why")
    assert seen["ready"] == "ok", (
        "the API server does not answer /readyz with ok: kubectl says "
        f"{explain(seen['ready_error'])}"
        if seen["ready"] is None else f"/readyz answers {seen['ready'][:200]!r}")


def test_the_pod_web_waits_for_a_scheduler(seen):
    pods = seen.get("pods")
    assert pods is not None, "kubectl cannot list the pods in the namespace default"
    web = next((p for p in pods if p["name"] == "web"), None)
    others = ", ".join(p["name"] for p in pods) or "none"
    assert web, (f"the API server has no pod web in the namespace default (pods there: {others}): "
                 "`kubectl apply -f /root/lab/c2/web.yaml`")
    if seen["scheduler"] == "active":
        where = f"was placed on {web['node']}" if web["node"] else "waits"
        raise AssertionError(f"web {where}, but kube-scheduler runs, and this lab is about a cluster "
                             "without one: `systemctl stop kube-scheduler`, then delete and create "
                             "the pod again")
    assert not web["node"], (
        f"web names {web['node']} in spec.nodeName, so it went to that node's kubelet without any "
        "scheduler: create it without nodeName and see it wait")
    assert web["phase"] == "Pending", f"web is {web['phase']}, not Pending"
