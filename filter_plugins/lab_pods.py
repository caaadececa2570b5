"""Jinja filter for the lab solutions: which of a step's static pods are not up yet."""

from __future__ import annotations

import json

RUN = "hardway-lab/run"


def lab_pods_waiting(seen: list[str], names: list[str], run: str) -> list[str]:
    """The pods among `names` with no copy from this run up yet.

    `seen` is two lines from the node: `crictl pods --state ready -o json` and
    `crictl ps --state running -o json`, each on one line. A pod is up when a ready sandbox
    made from this run's manifest (its hardway-lab/run annotation) has a running container.
    An old copy that the kubelet is still replacing (one the student made before) does not
    count: the kubelet stops it before it begins the new one."""
    try:
        sandboxes = json.loads(seen[0]).get("items") or []
        containers = json.loads(seen[1]).get("containers") or []
    except (IndexError, ValueError, AttributeError):
        return list(names)
    running = {c.get("podSandboxId") for c in containers}
    up = {(s.get("labels") or {}).get("hardway-pod") for s in sandboxes
          if (s.get("annotations") or {}).get(RUN) == str(run) and s.get("id") in running}
    return [name for name in names if name not in up]


class FilterModule:
    def filters(self):
        return {"lab_pods_waiting": lab_pods_waiting}
