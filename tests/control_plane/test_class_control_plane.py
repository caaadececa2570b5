"""A class with a control plane per student, on real local nodes: `class init
--control-plane` puts each student's first machine in control_plane, `class up` runs the
control plane's play there first and the node's everywhere, as the roster's sudo user
(root's login off), from the served mirror; the student's first control-plane lab then
fails, is solved and passes, on that machine only, and `class report` shows it.

One student with two machines (a lab of its own: bridge hwccp0, 10.71.0.0/24), taken down
at the end; in `make test`, after tests/integration/test_class.py in one lane, since both
use the instructor's download cache (tests/conftest.py). About 10 minutes here."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.classroom import LocalClass
from tests.integration.conftest import wait_for

STATE = Path("/var/lib/hardway-class-cp-test")
ENV = {"HARDWAY_BRIDGE": "hwccp0", "HARDWAY_SUBNET": "10.71.0.0/24", "HARDWAY_STATE": str(STATE),
       "HARDWAY_INVENTORY": str(STATE / "inventory"), "HARDWAY_MIRROR_PORT": "8071",
       "HARDWAY_CONTROL_PLANE": "1"}
ADDRESS = {"ada-1": "10.71.0.11", "ada-2": "10.71.0.12"}
LOCAL_NODES = """\
ansible_python_interpreter: /usr/bin/python3
node_prereqs_update_cache: false
node_prereqs_disable_swap: false
"""
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.kubeconfig"


@pytest.fixture(scope="module")
def the_class(host_before) -> Iterator[LocalClass]:
    made = LocalClass(Path(tempfile.mkdtemp(prefix="hardway-class-cp-")), ENV, ADDRESS)
    made.hardway("nodes", "down", check=False)
    shutil.rmtree(STATE / "classes", ignore_errors=True)
    made.hardway("up", "--count", "2", "--no-site", "--login", "sudo")
    made.init(["ada"], LOCAL_NODES, "--control-plane")
    made.first_up = made.hardway("class", "up", "k8s", check=False)
    yield made
    made.down()


def test_class_up_provisions_the_control_plane_on_the_first_machine_only(the_class):
    assert the_class.first_up.returncode == 0, the_class.first_up.stdout + the_class.first_up.stderr
    # Its progress shows the control plane's stages, counting only ada-1 (ada-2 runs none of
    # them), then the node's on both.
    for stage in ("pki", "control_plane_download", "etcd", "kube_apiserver", "kube_scheduler"):
        assert f"stage {stage}: 1 machine(s) through\n" in the_class.first_up.stderr, \
            the_class.first_up.stderr
    assert "stage kubelet: 2 machine(s) through\n" in the_class.first_up.stderr
    assert (the_class.folder / "k8s/pki/ada-1").is_dir()
    assert not (the_class.folder / "k8s/pki/ada-2").exists()

    # The kubelet registers under the machine's own host name, which the roster does not give.
    name = the_class.ssh("ada-1", "hostname").stdout.strip()

    def ready():
        seen = the_class.ssh("ada-1", f"{KUBECTL} get node {name} -o jsonpath="
                                      "'{.status.conditions[?(@.type==\"Ready\")].status}'")
        return seen.stdout.strip() == "True", seen.stdout + seen.stderr
    wait_for(ready, 180, f"ada-1's kubelet joined its API server as {name} and Ready")
    for unit in ("etcd", "kube-apiserver"):
        assert the_class.ssh("ada-2", f"systemctl is-active {unit}").stdout.strip() != "active"
    assert the_class.ssh("ada-2", "systemctl is-active kubelet").stdout.strip() == "active"


def test_the_first_control_plane_lab_on_the_students_control_plane(the_class):
    inventory = str(the_class.inventory)
    refused = the_class.hardway("lab", "start", "c1", "-i", inventory, check=False)
    said = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0
    assert "ada-2 runs no control plane" in said and "class init --control-plane" in said, said
    assert "TASK [" not in said, said  # the one line, not Ansible's output
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
