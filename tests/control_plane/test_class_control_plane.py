"""A class with a control plane per student, on real local nodes: `class init
--control-plane` puts each student's first machine in control_plane, `class up` runs the
control plane's play there first and the node's everywhere, as the roster's sudo user
(root's login off), from the served mirror; the student's first control-plane lab then
fails, is solved and passes, on that machine only, and `class report` shows it.

One student with two machines (a lab of its own: bridge hwccp0, 10.71.0.0/24), taken down
at the end. Run it with the rest of `make test-cp`; about 10 minutes here."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import hardway, wait_for

STATE = Path("/var/lib/hardway-class-cp-test")
ENV = {"HARDWAY_BRIDGE": "hwccp0", "HARDWAY_SUBNET": "10.71.0.0/24", "HARDWAY_STATE": str(STATE),
       "HARDWAY_INVENTORY": str(STATE / "inventory"), "HARDWAY_MIRROR_PORT": "8071",
       "HARDWAY_CONTROL_PLANE": "1"}
KEY = STATE / "ssh/id_ed25519"
ADDRESS = {"ada-1": "10.71.0.11", "ada-2": "10.71.0.12"}
LOCAL_NODES = """\
ansible_python_interpreter: /usr/bin/python3
node_prereqs_update_cache: false
node_prereqs_disable_swap: false
"""
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.kubeconfig"


class Class:
    def __init__(self, folder: Path):
        self.folder = folder
        self.env = dict(ENV, HARDWAY_CLASSES=str(folder))
        self.inventory = folder / "k8s" / "hosts.yml"
        self.up: subprocess.CompletedProcess[str] = subprocess.CompletedProcess([], 0)

    def hardway(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return hardway(*args, env=self.env, check=check, timeout=1800)

    def ssh(self, machine: str, command: str) -> subprocess.CompletedProcess:
        """A command on a class machine, as root through the login user's sudo."""
        return subprocess.run(["ssh", "-i", str(KEY), "-o", "BatchMode=yes",
                               "-o", f"UserKnownHostsFile={self.folder / 'k8s/known_hosts'}",
                               f"debian@{ADDRESS[machine]}",
                               f"sudo -n sh -c {shlex.quote(command)}"],
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def the_class(host_before) -> Iterator[Class]:
    folder = Path(tempfile.mkdtemp(prefix="hardway-class-cp-"))
    made = Class(folder)
    made.hardway("nodes", "down", check=False)
    shutil.rmtree(STATE / "classes", ignore_errors=True)
    made.hardway("up", "--count", "2", "--no-site", "--login", "sudo")
    roster = folder / "roster.csv"
    roster.write_text("student,machine1,machine2,user,port,key\n"
                      f"ada,{ADDRESS['ada-1']},{ADDRESS['ada-2']},debian,22,{KEY}\n")
    extra = folder / "local-nodes.yml"
    extra.write_text(LOCAL_NODES)
    made.hardway("class", "init", str(roster), "--name", "k8s", "--control-plane",
                 "--mirror", "http://10.71.0.1:8071", "--vars", str(extra))
    made.up = made.hardway("class", "up", "k8s", check=False)
    yield made
    down = made.hardway("nodes", "down", check=False)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(STATE / "classes", ignore_errors=True)
    assert down.returncode == 0, down.stdout + down.stderr


def test_class_up_provisions_the_control_plane_on_the_first_machine_only(the_class):
    assert the_class.up.returncode == 0, the_class.up.stdout + the_class.up.stderr
    # Its progress counts the control plane's stages (one machine through each).
    for stage in ("pki", "etcd", "kube_apiserver", "kube_scheduler"):
        assert f"stage {stage}: 1 machine(s) through" in the_class.up.stderr, the_class.up.stderr
    assert (the_class.folder / "k8s/pki/ada-1").is_dir()
    assert not (the_class.folder / "k8s/pki/ada-2").exists()

    def ready():
        seen = the_class.ssh("ada-1", f"{KUBECTL} get node ada-1 -o jsonpath="
                                      "'{.status.conditions[?(@.type==\"Ready\")].status}'")
        return seen.stdout.strip() == "True", seen.stdout + seen.stderr
    wait_for(ready, 180, "ada-1's kubelet joined its API server and Ready")
    for unit in ("etcd", "kube-apiserver"):
        assert the_class.ssh("ada-2", f"systemctl is-active {unit}").stdout.strip() != "active"
    assert the_class.ssh("ada-2", "systemctl is-active kubelet").stdout.strip() == "active"


def test_the_first_control_plane_lab_on_the_students_control_plane(the_class):
    inventory = str(the_class.inventory)
    refused = the_class.hardway("lab", "start", "c1", "-i", inventory, check=False)
    assert refused.returncode != 0
    assert "ada-2 runs no control plane" in " ".join(refused.stderr.split()), refused.stderr
    assert "class init --control-plane" in " ".join(refused.stderr.split()), refused.stderr
    limit = ("-i", inventory, "--limit", "control_plane")
    the_class.hardway("lab", "start", "c1", *limit)
    failed = the_class.hardway("lab", "check", "c1", *limit, check=False)
    assert failed.returncode == 1 and "FAIL ada-1" in failed.stdout, failed.stdout + failed.stderr
    the_class.hardway("lab", "solve", "c1", *limit)
    passed = the_class.hardway("lab", "check", "c1", *limit, "--wait", "120")
    assert "PASS ada-1" in passed.stdout, passed.stdout
    report = json.loads(the_class.hardway("class", "report", "k8s", "--output", "json").stdout)
    ada, = report["students"]
    assert ada["current"] == "c1" and ada["labs"]["c1"]["status"] == "pass", ada
