"""The molecule scenario, inside the one test run: real nodes, site.yml, testinfra."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def molecule_test(scenario: str, verified_at_least: int) -> None:
    """`molecule test` of one scenario passes every step, and testinfra ran its tests."""
    if os.geteuid() != 0:
        raise AssertionError("molecule boots real lab nodes and must run as root")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", ANSIBLE_NOCOLOR="1",
               NO_COLOR="1", PY_COLORS="0")
    result = subprocess.run([str(BIN / "molecule"), "test", "--scenario-name", scenario],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    output = result.stdout + result.stderr
    print(output[-6000:])
    assert result.returncode == 0, output[-6000:]
    for action in ("create", "converge", "idempotence", "check", "verify", "destroy"):
        assert f"[{scenario} > {action}] Executed: Successful" in output, action
    verified = re.search(r"=+ (\d+) passed in", output)
    assert verified and int(verified.group(1)) >= verified_at_least, \
        "testinfra did not report its tests"


def test_molecule_default_scenario_passes_on_real_nodes():
    molecule_test("default", 20)
