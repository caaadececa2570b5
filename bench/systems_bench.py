"""site.yml on each system and login a node can have: prints figures, asserts nothing.

    .venv/bin/python bench/systems_bench.py

For Debian 12 and 13, each logged in as root and as a sudo user (root's SSH login off),
on a fresh one-node lab of its own (bridge hwsys0): the first converge from the mirror,
and the second, which must change nothing. Base images come from the cache (built on
first use).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchlib import BIN, hardway

REPO = Path(__file__).resolve().parents[1]
ENV = {"HARDWAY_BRIDGE": "hwsys0", "HARDWAY_SUBNET": "10.74.0.0/24",
       "HARDWAY_STATE": "/var/lib/hardway-systems-bench",
       "HARDWAY_INVENTORY": "/var/lib/hardway-systems-bench/inventory",
       "HARDWAY_MIRROR_PORT": "8074"}


def converge() -> tuple[float, int]:
    """Seconds site.yml took, and how many tasks it changed."""
    start = time.monotonic()
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", f"{ENV['HARDWAY_INVENTORY']}/hosts.yml", "site.yml"],
        capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, **ENV, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                 PATH=f"{BIN}:{os.environ['PATH']}"))
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"site.yml failed:\n{result.stdout[-3000:]}")
    return elapsed, sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))


def main() -> None:
    print(f"{'system':<10} {'login':<6} {'first site.yml':>16} {'second':>16}", flush=True)
    for system in ("debian12", "debian13"):
        for login in ("root", "sudo"):
            hardway(ENV, "nodes", "down", check=False)
            hardway(ENV, "up", "--count", "1", "--no-site", "--os", system, "--login", login)
            first, changed_first = converge()
            second, changed_second = converge()
            print(f"{system:<10} {login:<6} {first:>7.1f} s ({changed_first:>3} ch) "
                  f"{second:>7.1f} s ({changed_second} ch)", flush=True)
    hardway(ENV, "nodes", "down")


if __name__ == "__main__":
    main()
