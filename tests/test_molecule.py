"""The molecule scenario, inside the one test run: two real nodes, site.yml with the control
plane on node1 (idempotent, and changing nothing in check mode), testinfra on each node."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, play_recap

BIN = Path(sys.executable).parent
# testinfra's checks: test_node.py's on both nodes, test_standalone_node.py's on node2,
# test_control_plane.py's on node1 (molecule/default/tests).
VERIFIED = 2 * 10 + 3 + 22


def test_molecule_default_scenario_passes_on_real_nodes():
    if os.geteuid() != 0:
        raise AssertionError("molecule boots real lab nodes and must run as root")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", ANSIBLE_NOCOLOR="1",
               NO_COLOR="1", PY_COLORS="0")
    # One stream: molecule's own lines (stderr) stay in order with Ansible's (stdout).
    result = subprocess.run([str(BIN / "molecule"), "test"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=3600)
    output = result.stdout
    print(output[-6000:])
    assert result.returncode == 0, output[-6000:]
    for action in ("create", "converge", "idempotence", "check", "verify", "destroy"):
        assert f"[default > {action}] Executed: Successful" in output, action
    # Molecule's check step asks only that a check-mode run succeed: it must change nothing.
    check_run = output.split("[default > check] Executing", 1)[1] \
        .split("[default > check] Executed", 1)[0]
    changed = {host: counts["changed"] for host, counts in play_recap(check_run).items()}
    assert set(changed) == {"node1", "node2"} and not any(changed.values()), \
        (changed, [line for line in check_run.splitlines() if line.startswith("changed:")][:10])
    verified = re.search(r"=+ (\d+) passed in", output)
    assert verified and int(verified.group(1)) == VERIFIED, \
        f"testinfra ran {verified.group(1) if verified else 'no'} checks, not {VERIFIED}"
