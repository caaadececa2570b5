"""`hardway class up` at 1, 3 and 6 machines: prints figures, asserts nothing.

    .venv/bin/python bench/class_bench.py [--sizes 1 3 6] [--report]

On a lab of its own (bridge hwbcl0, one student per machine), for each size, on freshly
booted nodes every time: `class up` with the controller's download cache empty (cold) and
then full (warm). Printed: wall time, and how many times each artifact was fetched from its
source (the mirror's request log), and the CPU time the instructor's side used (hardway,
Ansible, ssh) and the nodes used (their cgroups): here both share the same two cores.
With --report, also the time of a `class report` on every machine right after (no lab is
under way, so nothing to check: the cost of asking every machine) and after `lab start 02`
everywhere (a failing check on each).
The goal: 6 machines within 2x the time of 1, and one fetch per artifact.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchlib import cpu_seconds, hardway

STATE = Path("/var/lib/hardway-bench-class")
CACHE = Path(os.environ.get("HARDWAY_CACHE", "/var/cache/hardway"))
ENV = {"HARDWAY_BRIDGE": "hwbcl0", "HARDWAY_SUBNET": "10.74.0.0/24", "HARDWAY_STATE": str(STATE),
       "HARDWAY_INVENTORY": str(STATE / "inventory"), "HARDWAY_MIRROR_PORT": "8074"}
LOCAL_NODES = {"ansible_python_interpreter": "/usr/bin/python3", "node_prereqs_update_cache": False,
               "node_prereqs_disable_swap": False,
               "kubelet_protect_kernel_defaults": True}
REQUEST = re.compile(r'"GET (?P<path>\S+) HTTP')


def nodes_cpu() -> float:
    """CPU seconds used so far by this lab's nodes (their cgroups, v1 cpuacct or v2 cpu.stat)."""
    from hardway.nodes import cgroups

    total = 0.0
    for h in cgroups.hierarchies():
        base = h.mount / h.path.lstrip("/")
        if "cpuacct" in h.controllers.split(","):
            total += sum(int(f.read_text()) / 1e9 for f in base.glob("hardway-hwbcl0-node*/cpuacct.usage"))
        elif h.controllers == "" and cgroups.unified_only():
            for f in base.glob("hardway-hwbcl0-node*/cpu.stat"):
                total += int(f.read_text().split()[1]) / 1e6
    return total


def fetches(log: Path) -> Counter:
    """Artifact downloads in the mirror's request log (index and HEAD probes left out)."""
    lines = log.read_text().splitlines() if log.exists() else []
    found = (REQUEST.search(line) for line in lines)
    return Counter(m["path"].rsplit("/", 1)[-1] for m in found if m and "index.yml" not in m["path"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 3, 6])
    parser.add_argument("--report", action="store_true")
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    classes = Path(tempfile.mkdtemp(prefix="hardway-bench-classes-"))
    env = dict(ENV, HARDWAY_CLASSES=str(classes))
    downloads = CACHE / "class-downloads"
    extra = classes / "local-nodes.yml"
    extra.write_text("".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}\n"
                             for k, v in LOCAL_NODES.items()))
    print(f"{'machines':>8} {'cache':>6} {'class up (s)':>13} {'its CPU (s)':>12} "
          f"{'nodes CPU (s)':>14} {'report (s)':>11} {'failing report (s)':>19}  "
          "fetches per artifact", flush=True)
    try:
        for size in options.sizes:
            for cache in ("cold", "warm"):
                hardway(env, "nodes", "down", check=False)
                hardway(env, "up", "--count", str(size), "--no-site")
                roster = classes / "roster.csv"
                key = STATE / "ssh/id_ed25519"
                roster.write_text("student,machine1,key\n" + "".join(
                    f"s{i},10.74.0.{10 + i},{key}\n" for i in range(1, size + 1)))
                hardway(env, "class", "init", str(roster), "--name", "bench", "--force",
                        "--mirror", "http://10.74.0.1:8074", "--vars", str(extra))
                # Fresh nodes, fresh host keys: forget the last run's.
                (classes / "bench/known_hosts").unlink(missing_ok=True)
                if cache == "cold":
                    shutil.rmtree(downloads, ignore_errors=True)
                log = STATE / "mirror-serve.log"
                log.write_text("")
                cpu, node_cpu = cpu_seconds(), nodes_cpu()
                took = hardway(env, "class", "up", "bench")
                cpu, node_cpu = cpu_seconds() - cpu, nodes_cpu() - node_cpu
                counts = fetches(log)
                report = failing = ""
                if options.report:
                    report = f"{hardway(env, 'class', 'report', 'bench'):.1f}"
                    inventory = str(classes / "bench/hosts.yml")
                    hardway(env, "lab", "start", "02", "-i", inventory)
                    failing = f"{hardway(env, 'class', 'report', 'bench'):.1f}"
                summary = ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"
                print(f"{size:>8} {cache:>6} {took:>13.1f} {cpu:>12.1f} {node_cpu:>14.1f} "
                      f"{report:>11} {failing:>19}  {summary}", flush=True)
    finally:
        hardway(env, "nodes", "down", check=False)
        shutil.rmtree(classes, ignore_errors=True)


if __name__ == "__main__":
    main()
