"""Lab check latency: prints figures, asserts nothing.

    .venv/bin/python bench/labs_bench.py [--count N] [--runs R] [--labs 01 02 ...]

On a lab of its own (bridge hwbnc0, N nodes; lab 08 needs 2), for each lab: the median time of R
`hardway lab check` runs right after `lab start` (the check fails: the student has not
acted) and after `lab solve` (the check passes). A check runs on all nodes at once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from benchlib import hardway

ENV = {"HARDWAY_BRIDGE": "hwbnc0", "HARDWAY_SUBNET": "10.76.0.0/24",
       "HARDWAY_STATE": "/var/lib/hardway-bench", "HARDWAY_INVENTORY":
       "/var/lib/hardway-bench/inventory", "HARDWAY_MIRROR_PORT": "8076"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--labs", nargs="*", default=None, help="Only these lab ids.")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from hardway import labs

    hardway(ENV, "up", "--count", str(options.count))
    print(f"{'lab':<6}{'check, not done (median s)':>30}{'check, done (median s)':>26}")
    try:
        for lab in labs.all_labs():
            if options.labs and lab.id not in options.labs:
                continue
            hardway(ENV, "lab", "start", lab.id)
            failing = [hardway(ENV, "lab", "check", lab.id, check=False) for _ in range(options.runs)]
            hardway(ENV, "lab", "solve", lab.id)
            passing = [hardway(ENV, "lab", "check", lab.id) for _ in range(options.runs)]
            print(f"{lab.id:<6}{statistics.median(failing):>30.1f}"
                  f"{statistics.median(passing):>26.1f}", flush=True)
    finally:
        hardway(ENV, "nodes", "down", check=False)


if __name__ == "__main__":
    main()
