"""Lab check latency: prints figures, asserts nothing.

    .venv/bin/python bench/labs_bench.py [--count N] [--runs R] [--labs 01 02 ...] [--part node]

On a lab of its own (bridge hwbnc0, N nodes, default 1 as the README's; HARDWAY_BENCH_BRIDGE,
HARDWAY_BENCH_SUBNET, ... stand in for its settings), for each lab: the time of R
`hardway lab check` runs right after `lab start` (the check fails: the student has not
acted) and R after `lab solve` (the check passes), as median / min / max, and the time of
the `lab start` itself (for a part's first lab: reset and staging, no earlier solution).
--part keeps the labs of one part (labs/parts.yml: node, pods).
A check looks at every node at once, so --count 6 gives the time for a class of six.
--os and --login walk the labs on Debian 13 or through a sudo login (every passing check
must pass: the run stops on the first that does not).
Lab 08 needs two nodes and is left out on one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from benchlib import hardway

ENV = {"HARDWAY_BRIDGE": "hwbnc0", "HARDWAY_SUBNET": "10.76.0.0/24",
       "HARDWAY_STATE": "/var/lib/hardway-bench", "HARDWAY_INVENTORY":
       "/var/lib/hardway-bench/inventory", "HARDWAY_MIRROR_PORT": "8076"}
ENV = {key: os.environ.get(key.replace("HARDWAY_", "HARDWAY_BENCH_", 1), value)
       for key, value in ENV.items()}


def figures(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} / {min(times):.2f} / {max(times):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--labs", nargs="*", default=None, help="Only these lab ids.")
    parser.add_argument("--part", default=None, help="Only the labs of this part (node, pods).")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--os", default="debian12", help="The nodes' system (hardway up --os).")
    parser.add_argument("--login", default="root", help="root or sudo (hardway up --login).")
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from hardway import labs

    hardway(ENV, "up", "--count", str(options.count), "--os", options.os, "--login", options.login)
    print(f"{options.count} {options.os} node(s), login {options.login}, {options.runs} runs each; "
          "seconds, median / min / max")
    print(f"{'lab':<6}{'check fails (not done)':>26}{'check passes (done)':>26}{'start':>8}")
    try:
        for lab in labs.all_labs():
            if (options.labs and lab.id not in options.labs) or lab.nodes > options.count or \
                    (options.part and lab.part != options.part):
                continue
            started = hardway(ENV, "lab", "start", lab.id)
            failing = [hardway(ENV, "lab", "check", lab.id, check=False) for _ in range(options.runs)]
            hardway(ENV, "lab", "solve", lab.id)
            hardway(ENV, "lab", "check", lab.id, "--wait", "60")
            passing = [hardway(ENV, "lab", "check", lab.id) for _ in range(options.runs)]
            print(f"{lab.id:<6}{figures(failing):>26}{figures(passing):>26}{started:>8.1f}", flush=True)
    finally:
        hardway(ENV, "nodes", "down", check=False)


if __name__ == "__main__":
    main()
