"""Run a real ansible-playbook against localhost (connection=local) from a unit test.

Everything it changes lives under the test's tmp_path; the repository's ansible.cfg
supplies roles and filters, as it does for site.yml.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import REPO, play_recap

BIN = Path(sys.executable).parent


@dataclass
class Run:
    returncode: int
    output: str

    def recap(self) -> dict[str, dict[str, int]]:
        """host -> {"ok": n, "changed": n, "failed": n, ...} from the PLAY RECAP."""
        return play_recap(self.output)

    @property
    def flat(self) -> str:
        return " ".join(self.output.split())


def run(tmp_path: Path, plays: list, hosts: dict[str, dict], extra: dict | None = None,
        *args: str, groups: dict[str, list[str]] | None = None) -> Run:
    """Write the plays and an inventory of localhost aliases (and groups of them), then run
    them."""
    inventory: dict = {"all": {"hosts": {
        name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **v}
        for name, v in hosts.items()}}}
    if groups:
        inventory["all"]["children"] = {group: {"hosts": {name: {} for name in names}}
                                        for group, names in groups.items()}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    command = [str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
               str(tmp_path / "play.yml"), *args]
    if extra:
        command += ["-e", json.dumps(extra)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / ".ansible-local"),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / ".ansible-remote"),
               PATH=f"{BIN}:{os.environ['PATH']}")
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env,
                            timeout=300)
    return Run(result.returncode, result.stdout + result.stderr)
