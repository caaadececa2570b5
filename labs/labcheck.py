"""Helpers for the lab checks (testinfra). A check states what it saw, in the student's
terms, whenever it fails; it waits on conditions with deadlines, never on sleeps."""

from __future__ import annotations

import json
import time

MANIFESTS = "/etc/kubernetes/manifests"


def ready_pods(host, name: str) -> list[dict]:
    """Ready pod sandboxes of one lab pod (by its hardway-pod label)."""
    out = host.run(f"crictl pods --label hardway-pod={name} --state ready -o json")
    return json.loads(out.stdout or '{"items": []}').get("items", [])


def containers(host, name: str) -> list[dict]:
    """Every container (running or exited) of one lab pod's live sandbox, newest first.
    The label is on the pod sandbox, so containers are found through their pod."""
    out = host.run(f"crictl pods --label hardway-pod={name} --state ready -q")
    found: list[dict] = []
    for pod in out.stdout.split():
        listing = host.run(f"crictl ps -a --pod {pod} -o json").stdout
        found += json.loads(listing or '{"containers": []}').get("containers", [])
    return sorted(found, key=lambda c: int(c.get("createdAt", 0)), reverse=True)


def pod_ip(host, name: str) -> str | None:
    pods = ready_pods(host, name)
    if not pods:
        return None
    out = host.run(f"crictl inspectp -o json {pods[0]['id']}")
    return json.loads(out.stdout)["status"]["network"]["ip"] or None


def http(host, address: str) -> str:
    """The page served at address:80, as seen from the node ('' when nothing answers)."""
    result = host.run(f"curl -fsS -m 3 http://{address}/")
    return result.stdout if result.rc == 0 else ""


def until(probe, deadline: float = 30, interval: float = 1.0):
    """probe() until it returns something truthy or the deadline passes; the last value."""
    end = time.monotonic() + deadline
    value = probe()
    while not value and time.monotonic() < end:
        time.sleep(interval)
        value = probe()
    return value


def kubelet_log_since(host, manifest: str, *patterns: str) -> str:
    """Kubelet journal lines matching every pattern, written since the manifest was last
    changed, so evidence from an earlier try never counts."""
    path = f"{MANIFESTS}/{manifest}"
    if not host.file(path).exists:
        return ""
    since = host.run(f"stat -c %Y {path}").stdout.strip()
    grep = " | ".join(f"grep -F -- {p!r}" for p in patterns)
    return host.run(f"journalctl -u kubelet --since @{since} --no-pager | {grep}").stdout


def running_container(host, name: str) -> dict | None:
    """The newest running container of one lab pod, or None."""
    found = [c for c in containers(host, name) if c["state"] == "CONTAINER_RUNNING"]
    return found[0] if found else None


def http_from(host, container: dict, address: str) -> str:
    """What `GET /` on address:80 returns, asked from inside a container (busybox nc)."""
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {address} 80"
    return host.run(f"crictl exec {container['id']} sh -c \"{request}\"").stdout
