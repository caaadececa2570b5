"""The molecule scenario, inside the one test run: real nodes, site.yml, testinfra."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def test_molecule_default_scenario_passes_on_real_nodes():
    if os.geteuid() != 0:
        raise AssertionError("molecule boots real lab nodes and must run as root")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", ANSIBLE_NOCOLOR="1",
               NO_COLOR="1", PY_COLORS="0")
    result = subprocess.run([str(BIN / "molecule"), "test", "--scenario-name", "default"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    output = result.stdout + result.stderr
    print(output[-6000:])
    assert result.returncode == 0, output[-6000:]
    assert "Idempotence completed successfully" in output or "idempotence" in output.lower()
    assert " passed" in output  # testinfra ran and reported
