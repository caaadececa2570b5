"""A class on local nodes, for the real-node class tests: the nodes are made like cloud VMs
(`hardway nodes up --login sudo`: the roster's user logs in with the lab's key and uses
sudo), the class folder is a temporary one, and the class's own lab settings (env) keep it
beside any other lab."""

from __future__ import annotations

import ipaddress
import json
import shlex
import shutil
import subprocess
from pathlib import Path

from tests.integration.conftest import hardway

USER = "debian"


class LocalClass:
    def __init__(self, folder: Path, env: dict[str, str], addresses: dict[str, str]):
        self.folder = folder
        self.env = dict(env, HARDWAY_CLASSES=str(folder))
        self.addresses = addresses
        self.state = Path(env["HARDWAY_STATE"])
        self.key = self.state / "ssh/id_ed25519"
        self.inventory = folder / "k8s" / "hosts.yml"
        # The class's first `class up`, as the fixture that made the class ran it.
        self.first_up: subprocess.CompletedProcess[str] = subprocess.CompletedProcess([], 0)

    def hardway(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return hardway(*args, env=self.env, check=check, timeout=1800)

    def ssh(self, machine: str, command: str, user: str = USER) -> subprocess.CompletedProcess:
        """A command on a class machine, run by root through the login user's sudo."""
        if user != "root":
            command = f"sudo -n sh -c {shlex.quote(command)}"
        return subprocess.run(["ssh", "-i", str(self.key), "-o", "BatchMode=yes",
                               "-o", f"UserKnownHostsFile={self.folder / 'k8s/known_hosts'}",
                               f"{user}@{self.addresses[machine]}", command],
                              capture_output=True, text=True, timeout=60)

    def report(self, *args: str) -> dict:
        return json.loads(self.hardway("class", "report", "k8s", "--output", "json", *args).stdout)

    def init(self, students: list[str], local_vars: str, *options: str) -> None:
        """`class init` of class k8s: each student with their machines <student>-1 and -2
        (those in addresses), the lab's key and sudo user; the nodes' own variables
        (local_vars, YAML) and the lab's served mirror."""
        roster = self.folder / "roster.csv"
        roster.write_text("student,machine1,machine2,user,port,key\n" + "".join(
            f"{s},{self.addresses[f'{s}-1']},{self.addresses.get(f'{s}-2', '')},{USER},22,"
            f"{self.key}\n" for s in students))
        extra = self.folder / "local-nodes.yml"
        extra.write_text(local_vars)
        host = ipaddress.ip_network(self.env["HARDWAY_SUBNET"])[1]  # the bridge's address
        mirror = f"http://{host}:{self.env['HARDWAY_MIRROR_PORT']}"
        self.hardway("class", "init", str(roster), "--name", "k8s", "--mirror", mirror,
                     "--vars", str(extra), *options)

    def down(self) -> None:
        """The class's nodes down, its folder and its state gone."""
        down = self.hardway("nodes", "down", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.state / "classes", ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr
