"""library/node_facts.py, the plays' fact module: run as Ansible runs it, on this host, and
compared with what the host's own tools say."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, filter_plugin, module_from_file

MODULE = REPO / "library" / "node_facts.py"


def node_facts(tmp_path: Path) -> dict:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"_ansible_tmpdir": str(tmp_path)}}))
    result = subprocess.run([sys.executable, str(MODULE), str(args_file)],
                            capture_output=True, text=True)
    return json.loads(result.stdout)


def sh(command: str) -> str:
    return subprocess.run(command, shell=True, capture_output=True, text=True).stdout.strip()


def test_the_facts_the_roles_read_match_the_hosts_own_tools(tmp_path):
    result = node_facts(tmp_path)
    assert not result.get("failed") and not result["changed"], result
    facts = result["ansible_facts"]
    assert (facts["system"], facts["kernel"], facts["architecture"]) == \
        (platform.system(), sh("uname -r"), sh("uname -m"))
    assert facts["hostname"] == sh("hostname -s")
    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines()
                   if "=" in line)
    assert facts["distribution"] == release["NAME"].strip('"').split()[0]
    assert facts["os_family"] == "Debian"  # the machines the suite runs on: Debian
    node = facts["hardway_node"]
    assert node["modules_dir"] == Path(f"/lib/modules/{sh('uname -r')}").is_dir()
    assert node["cgroup_fs"] == sh("stat -f -c %T /sys/fs/cgroup")
    assert node["cap_bnd"] == sh("grep '^CapBnd:' /proc/self/status | cut -f2")
    assert node["swap_on"] == (len(Path("/proc/swaps").read_text().strip().splitlines()) > 1)
    assert {"python3", "dpkg"} <= set(node["packages"])
    assert "hardway-not-a-package" not in node["packages"]


def test_containerds_filesystem_is_read_where_its_folder_will_be(tmp_path):
    # On a fresh node /var/lib/containerd does not exist yet: the filesystem it will be
    # made on decides the snapshotter on the first converge already.
    expected = sh("p=/var/lib/containerd; while [ ! -e $p ]; do p=$(dirname $p); done; "
                  "stat -f -c %T $p")
    assert node_facts(tmp_path)["ansible_facts"]["hardway_node"]["containerd_fs"] == expected


def test_a_node_without_the_tools_still_gives_its_facts(tmp_path, monkeypatch):
    # Gathering must not fail on a system the roles do not support: their assert says so.
    monkeypatch.setenv("PATH", str(tmp_path))
    result = node_facts(tmp_path)
    assert not result.get("failed"), result
    node = result["ansible_facts"]["hardway_node"]
    assert (node["packages"], node["cgroup_fs"], node["containerd_fs"]) == ([], "", "")
    assert node["services"] == {}  # no systemctl: every role starts its unit as before


# What `systemctl show -p Id -pActiveState -pUnitFileState -pNeedDaemonReload` printed on a
# node: the kubelet running, containerd's unit file changed on disk, etcd unknown there.
SHOWN = """Id=containerd.service
ActiveState=active
SubState=running
NRestarts=0
UnitFileState=enabled
NeedDaemonReload=yes

Id=kubelet.service
ActiveState=active
SubState=running
NRestarts=0
UnitFileState=enabled
NeedDaemonReload=no

Id=etcd.service
ActiveState=inactive
SubState=dead
NRestarts=0
UnitFileState=
NeedDaemonReload=no"""


def test_the_units_state_decides_whether_a_role_starts_anything():
    services = module_from_file("node_facts", MODULE).units(SHOWN)
    assert services["kubelet"] == {"active": "active", "sub": "running", "restarts": "0",
                                   "enabled": "enabled", "reload": "no"}
    settled = filter_plugin("lab_files").lab_unit_settled
    assert settled(services, "kubelet")
    assert not settled(services, "containerd")  # systemd runs the unit file it read before
    assert not settled(services, "etcd")  # not there yet: the role installs and starts it
    assert not settled(services, "kube-scheduler")  # not asked about
    assert not settled({}, "kubelet") and not settled(None, "kubelet")
    for state in ("activating", "failed", "inactive"):
        assert not settled({"kubelet": dict(services["kubelet"], active=state)}, "kubelet")
    assert not settled({"kubelet": dict(services["kubelet"], enabled="disabled")}, "kubelet")
    needs_reload = filter_plugin("lab_files").lab_unit_needs_reload
    assert needs_reload(services, "containerd") and not needs_reload(services, "kubelet")
    assert not needs_reload(services, "kube-scheduler") and not needs_reload(None, "kubelet")
    # Crashed and brought back by Restart=always: its health is checked again.
    assert not settled({"kubelet": dict(services["kubelet"], restarts="3")}, "kubelet")
