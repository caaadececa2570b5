"""Last: take the provisioned lab down with pods running and prove nothing is left."""

from __future__ import annotations

import subprocess
import time

from tests.integration import pods
from tests.integration.conftest import TEST_ENV, hardway, host_sysctls, wait_for


def test_down_with_pods_running_is_quick_complete_and_leaves_the_host_kernel_alone(
        lab, host_before):
    for node in lab.nodes:
        pods.write(lab, node.name, "web", pods.nginx())
        pods.write(lab, node.name, "sleeper", pods.busybox("sleeper", ["sleep", "3600"]))
    for node in lab.nodes:
        wait_for(lambda n=node: ((r := lab.sh(n.name, "crictl ps -q | wc -l")).stdout.strip()
                                 == "2", r.stdout), 90, f"two containers on {node.name}")
    count = len(lab.nodes)
    start = time.monotonic()
    result = hardway("nodes", "down")
    elapsed = time.monotonic() - start
    print(f"\nnodes down with pods running: {elapsed:.1f} s for {count} nodes")
    assert "nothing left behind" in result.stdout
    assert elapsed <= 20 * count
    bridge = TEST_ENV["HARDWAY_BRIDGE"]
    assert subprocess.run(["pgrep", "-f", f"--machine={bridge}-"], capture_output=True).stdout == b""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert bridge not in links
    after = host_sysctls()
    changed = {k: (host_before.get(k), after.get(k)) for k in set(host_before) | set(after)
               if host_before.get(k) != after.get(k)}
    assert changed == {}
