"""Lab c5: the controller manager runs; a Deployment's pods are all ready, and its
ReplicaSet made more pods than it wants (it replaced one that was deleted); the node has
a pod CIDR from the controller manager's node IPAM."""

import pytest
from labcheck import KUBECTL_SCRIPT, explain, look

SCRIPT = KUBECTL_SCRIPT + """
seen = {"manager": run("systemctl", "is-active", "kube-controller-manager")[1].strip(),
        "name": run("hostname")[1].strip().lower(), "error": None}
rc, out, err = run(*KUBECTL, "get", "deployments,replicasets,nodes", "--namespace", "default",
                   "-o", "json")
if rc != 0:
    seen["error"] = (err.splitlines() or [""])[-1][:300]
else:
    items = json.loads(out)["items"]
    seen["deployments"] = [{"name": d["metadata"]["name"], "want": d["spec"].get("replicas", 1),
                            "ready": d.get("status", {}).get("readyReplicas", 0)}
                           for d in items if d["kind"] == "Deployment"]
    seen["replicasets"] = {r["metadata"]["name"]: [o["name"] for o in r["metadata"].get("ownerReferences", [])
                                                   if o["kind"] == "Deployment"]
                           for r in items if r["kind"] == "ReplicaSet"}
    seen["cidrs"] = {n["metadata"]["name"]: n["spec"].get("podCIDR", "")
                     for n in items if n["kind"] == "Node"}
    rc, out, _ = run(*KUBECTL, "get", "events", "--namespace", "default", "-o", "json",
                     "--field-selector", "reason=SuccessfulCreate,involvedObject.kind=ReplicaSet")
    seen["created"] = {}
    for e in json.loads(out)["items"] if rc == 0 else []:
        name = e["involvedObject"]["name"]
        seen["created"][name] = seen["created"].get(name, 0) + e.get("count", 1)
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def seen(host) -> dict:
    return look(host, SCRIPT, "the controller manager's work")


def test_the_controller_manager_runs(seen):
    assert seen["manager"] == "active", (
        f"kube-controller-manager.service is {seen['manager'] or 'unknown'}: "
        "`systemctl start kube-controller-manager` (`journalctl -u kube-controller-manager -n 20`)")
    assert seen["error"] is None, f"kubectl cannot ask the API server: {explain(seen['error'])}"


def test_a_deployment_keeps_its_pods_and_replaced_a_deleted_one(seen):
    deployments = seen.get("deployments") or []
    assert deployments, ("no Deployment in the namespace default: `kubectl apply -f "
                         "/root/lab/c5/web-deployment.yaml`")
    ready = [d for d in deployments if d["want"] >= 2 and d["ready"] == d["want"]]
    shown = ", ".join(f"{d['name']} {d['ready']}/{d['want']} ready" for d in deployments)
    assert ready, f"no Deployment of 2 or more replicas has them all ready ({shown})"
    made = {d["name"]: sum(seen["created"].get(rs, 0) for rs, owners in seen["replicasets"].items()
                           if d["name"] in owners) for d in ready}
    replaced = [name for name in made if made[name] > next(d["want"] for d in ready
                                                           if d["name"] == name)]
    assert replaced, (
        f"{', '.join(f'{n} made {made[n]} pods' for n in made)}, no more than it wants: delete one "
        "of its pods (`kubectl delete pod <name>`) and watch its ReplicaSet make another")


def test_the_node_has_a_pod_cidr_from_the_controller_manager(seen):
    cidr = (seen.get("cidrs") or {}).get(seen["name"], "")
    assert cidr, (
        f"node {seen['name']} has no spec.podCIDR: the controller manager allocates node CIDRs only "
        "with --allocate-node-cidrs=true and a --cluster-cidr (then `systemctl daemon-reload` and "
        "restart it)")
