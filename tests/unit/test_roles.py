"""The Ansible content itself: argument specs, filters and rendered configs."""

import fcntl
import io
import json
import os
import subprocess
import tarfile
import time
import tomllib
from pathlib import Path

import jinja2
import pytest
import yaml

from hardway.mirror import artifacts
from tests.conftest import REPO, filter_plugin
from tests.unit.playbook import run

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())

lab_net = filter_plugin("lab_net")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role):
    defaults = load(REPO / "roles" / role / "defaults/main.yml")
    options = load(REPO / "roles" / role / "meta/argument_specs.yml")[
        "argument_specs"]["main"]["options"]
    assert set(options) == set(defaults), "argument_specs.yml and defaults/main.yml disagree"
    for name, option in options.items():
        assert option["default"] == defaults[name], name
        assert option["description"] and option["description"] != name, name


@pytest.mark.parametrize("role", ROLES)
def test_inputs_carry_the_role_prefix(role):
    prefix = "lab_" if role == "lab_images" else f"{role}_"
    for name in load(REPO / "roles" / role / "defaults/main.yml"):
        assert name.startswith(prefix), name


@pytest.mark.parametrize("role", ROLES)
def test_main_only_imports_stage_files(role):
    """A stage is imported, or included where its condition (or a loop over nothing) skips it
    whole in one step (an imported stage's condition is evaluated, and reported skipped, once
    per task)."""
    tasks = load(REPO / "roles" / role / "tasks/main.yml")
    for task in tasks:
        included = "ansible.builtin.include_tasks" in task and ("when" in task or "loop" in task)
        assert "ansible.builtin.import_tasks" in task or included, task["name"]


@pytest.mark.parametrize(("cidr", "fragment"), [
    ("10.240.1.0/24", ""),
    ("10.240.1.0/33", "not an IPv4 network"),
    ("10.240.1.7/24", "not an IPv4 network"),
    ("banana", "not an IPv4 network"),
    ("10.240.1.0/30", "too small"),
    ("8.8.8.0/24", "not a private range"),
])
def test_pod_cidr_problems_are_explained(cidr, fragment):
    problem = lab_net.lab_cidr_problem(cidr)
    assert (fragment in problem) if fragment else problem == ""


def test_overlapping_pod_cidrs_are_named():
    overlaps = lab_net.lab_cidr_overlaps({"a": "10.240.1.0/24", "b": "10.240.2.0/24",
                                          "c": "10.240.0.0/16"})
    assert overlaps == ["a (10.240.1.0/24) and c (10.240.0.0/16)",
                        "b (10.240.2.0/24) and c (10.240.0.0/16)"]
    assert lab_net.lab_cidr_overlaps({"a": "10.240.1.0/24", "b": "10.240.2.0/24"}) == []
    assert lab_net.lab_cidr_host("10.240.1.0/24", 1) == "10.240.1.1"


def render(template: str, **variables) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(REPO / "roles"),
                             undefined=jinja2.StrictUndefined)
    env.filters["bool"] = bool
    return env.get_template(template).render(ansible_managed="managed", **variables)


def containerd_config_version(containerd_version: str) -> int:
    """What roles/containerd/vars/main.yml chooses, evaluated with Ansible's own version test."""
    from ansible.plugins.test.core import version_compare

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.tests["version"] = version_compare
    expression = load(REPO / "roles/containerd/vars/main.yml")["__containerd_config_version"]
    return int(env.from_string(expression).render(containerd_version=containerd_version))


def test_containerd_config_version_follows_the_release():
    assert containerd_config_version("2.3.4") == 3  # 2.0-2.3 read version 3
    assert containerd_config_version("2.4.0") == 4  # 2.4 migrates 3 with a warning


@pytest.mark.parametrize("sandbox", ["", "lab.local/pause:3.10"])
def test_containerd_config_is_valid_toml_for_its_release(sandbox):
    version = containerd_config_version(artifacts.pinned_versions()["containerd"])
    text = render("containerd/templates/config.toml.j2", __containerd_snapshotter="overlayfs",
                  __containerd_config_version=version,
                  containerd_sandbox_image=sandbox, __containerd_restrict_oom=True,
                  containerd_cgroup_driver="systemd", containerd_cni_bin_dir="/opt/cni/bin",
                  containerd_cni_conf_dir="/etc/cni/net.d", runc_bin="/usr/local/sbin/runc")
    config = tomllib.loads(text)
    assert config["version"] == version
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["cni"] == {"bin_dirs": ["/opt/cni/bin"], "conf_dir": "/etc/cni/net.d"}
    assert runtime["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    images = config["plugins"]["io.containerd.cri.v1.images"]
    assert images.get("pinned_images", {}).get("sandbox", "") == sandbox


def test_kubelet_config_is_standalone_and_loopback_only_unless_it_joins_an_api_server():
    variables = load(REPO / "roles/kubelet/vars/main.yml")
    standalone, joined = variables["__kubelet_config_standalone"], variables["__kubelet_config_joined"]
    assert standalone["authentication"]["webhook"]["enabled"] is False
    assert standalone["authorization"]["mode"] == "AlwaysAllow"
    # Joined: callers need a certificate of the CA or the API server's word, and its permission.
    assert joined["authentication"]["anonymous"]["enabled"] is False
    assert joined["authentication"]["webhook"]["enabled"] is True
    assert joined["authentication"]["x509"]["clientCAFile"].endswith("/ca.crt")
    assert joined["authorization"]["mode"] == "Webhook"
    assert joined["tlsCertFile"].endswith("/kubelet-serving.crt")
    common = variables["__kubelet_config_common"]
    assert common["address"] == "{{ kubelet_address }}"
    assert common["readOnlyPort"] == 0
    assert not {"authentication", "authorization"} & set(common)
    env = jinja2.Environment()
    default = load(REPO / "roles/kubelet/defaults/main.yml")["kubelet_address"]
    assert env.from_string(default).render(kubelet_api_server="") == "127.0.0.1"
    assert env.from_string(default).render(kubelet_api_server="https://127.0.0.1:6443") == "0.0.0.0"


def test_cni_bridge_config_uses_the_node_pod_cidr():
    variables = load(REPO / "roles/cni_config/vars/main.yml")
    plugin = variables["__cni_config_bridge_plugin"]
    assert plugin["type"] == "bridge" and plugin["isGateway"] is True
    assert plugin["ipam"]["type"] == "host-local"
    assert plugin["ipam"]["ranges"][0][0]["subnet"] == "{{ cni_config_pod_cidr }}"
    state = jinja2.Environment().from_string(
        load(REPO / "roles/cni_config/defaults/main.yml")["cni_config_state"])
    assert state.render() == "unmanaged"
    # A kubelet that joins an API server is Ready only with a pod network.
    assert state.render(kubelet_api_server="https://127.0.0.1:6443") == "present"


def test_the_api_server_unit_refuses_anonymous_callers_and_talks_to_etcd_over_tls():
    flags = load(REPO / "roles/kube_apiserver/vars/main.yml")["__kube_apiserver_flags"]
    # trim_blocks, as Ansible's template module renders.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(REPO / "roles"), trim_blocks=True,
                             undefined=jinja2.StrictUndefined)
    text = env.get_template("kube_apiserver/templates/kube-apiserver.service.j2").render(
        ansible_managed="managed", __kube_apiserver_flags=flags)
    command = text.split("ExecStart=", 1)[1].split("\nRestart=", 1)[0]
    lines = command.splitlines()
    # Every line but the last continues the command: no flag is lost to a missing backslash.
    assert all(line.endswith(" \\") for line in lines[:-1]) and not lines[-1].endswith("\\")
    args = [line.strip().removesuffix(" \\") for line in lines[1:]]
    assert args == flags
    assert "--anonymous-auth=false" in args and "--authorization-mode=Node,RBAC" in args
    assert any(a.startswith("--etcd-certfile=") for a in args)
    assert load(REPO / "roles/kube_apiserver/defaults/main.yml")[
        "kube_apiserver_etcd_servers"].startswith("https://")


def test_etcd_takes_clients_over_tls_with_certificates_on_loopback_only():
    config = load(REPO / "roles/etcd/vars/main.yml")["__etcd_config"]
    security = config["client-transport-security"]
    assert security["client-cert-auth"] is True and security["trusted-ca-file"].endswith("ca.crt")
    assert load(REPO / "roles/etcd/vars/main.yml")["__etcd_client_url"].startswith("https://127.0.0.1:")
    assert load(REPO / "roles/etcd/vars/main.yml")["__etcd_peer_url"].startswith("http://127.0.0.1:")


def test_the_ca_key_never_leaves_the_controller():
    variables = load(REPO / "roles/pki/vars/main.yml")
    names = {c["name"] for c in variables["__pki_certs"]}
    assert {"kube-apiserver", "etcd", "admin", "kube-controller-manager", "kube-scheduler",
            "kubelet", "kubelet-serving", "apiserver-kubelet-client"} <= names
    node_files = variables["__pki_node_files"]
    assert "ca.crt" in node_files and "ca.key" not in node_files
    assert "__pki_certs" in node_files and "service-account.key" in node_files


def test_every_download_request_names_real_files(tmp_path):
    # Rendered by real Ansible with this host's facts, as a play sees the roles' variables:
    # an install map whose keys are templates is not rendered (its members name nothing).
    downloading = sorted(p.parent.parent.name for p in REPO.glob("roles/*/vars/main.yml")
                         if "_downloads:" in p.read_text())
    files = [str(REPO / f"roles/{role}/{kind}/main.yml") for role in ROLES
             for kind in ("defaults", "vars") if (REPO / f"roles/{role}/{kind}/main.yml").exists()]
    out = tmp_path / "requests.json"
    expression = "{{ {" + ", ".join(f"'{r}': {r}_downloads" for r in downloading) + "} | to_json }}"
    result = run(tmp_path, [{"hosts": "all", "gather_facts": True, "vars_files": files,
                             "vars": {"lab_images_offline": False},
                             "tasks": [{"ansible.builtin.copy": {"content": expression,
                                                                 "dest": str(out)}}]}],
                 {"controller": {}})
    assert result.returncode == 0, result.output[-3000:]
    requests = json.loads(out.read_text())
    assert set(requests) == set(downloading) and "etcd" in requests
    for role, asked in requests.items():
        for request in asked:
            for member, dest in request["install"].items():
                assert "{" not in member + dest, (role, member, dest)
    version = artifacts.pinned_versions()["etcd"]
    assert requests["etcd"][0]["install"] == {
        f"etcd-v{version}-linux-amd64/etcd": "/usr/local/bin/etcd",
        f"etcd-v{version}-linux-amd64/etcdctl": "/usr/local/bin/etcdctl"}


def test_a_folders_files_become_node_files_entries_written_or_removed():
    entries = filter_plugin("lab_files").lab_file_entries
    contents = {"10-bridge.conf": "{}\n", "10-bridge.conflist": None}
    assert entries(contents, "/etc/cni/net.d/") == [
        {"path": "/etc/cni/net.d/10-bridge.conf", "content": "{}\n"},
        {"path": "/etc/cni/net.d/10-bridge.conflist", "state": "absent"}]
    # Not present: every one of them goes.
    assert [e.get("state") for e in entries(contents, "/etc/cni/net.d", False)] == ["absent"] * 2


def unpack_command(archive: Path, folder: Path) -> list[str]:
    """roles/download/tasks/unpack.yml's command, its three templated arguments filled in."""
    task, = yaml.safe_load((REPO / "roles/download/tasks/unpack.yml").read_text())
    return [arg.replace("{{ __download_unpack_dir }}", str(folder))
            .replace("{{ __download_unpack_archive }}", str(archive))
            for arg in task["ansible.builtin.command"]["argv"]]


def test_two_unpacks_at_once_take_turns_and_leave_one_whole_tree(tmp_path):
    """Two classes fetching into one instructor's cache unpack the same archive at once: the
    folder's lock makes the second wait and find the tree whole (before it, both unpacked
    into one temporary folder and one failed)."""
    archive = tmp_path / "release.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("bin/one", "bin/two"):
            info = tarfile.TarInfo(name)
            info.size, info.uid = 5, 1000
            tar.addfile(info, io.BytesIO(b"hello"))
    command = unpack_command(archive, tmp_path)
    (tmp_path / ".files.partial").mkdir()  # an interrupted run's leftovers
    (tmp_path / ".files.partial/junk").write_text("half")

    with open(tmp_path / ".unpack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run is unpacking
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        waiting: set[int] = set()
        deadline = time.monotonic() + 10
        while waiting != {run.pid for run in runs} and time.monotonic() < deadline:
            if any(run.poll() is not None for run in runs):
                break  # one went ahead without the lock
            # The kernel's list of locks: a blocked waiter's line has "->" before FLOCK.
            waiting = {int(line.split()[5]) for line in Path("/proc/locks").read_text().splitlines()
                       if line.split()[1:3] == ["->", "FLOCK"]}
            time.sleep(0.05)
        assert waiting == {run.pid for run in runs}, "both unpacks did not wait for the lock"
        assert not (tmp_path / "files").exists()
    outputs = [run.communicate(timeout=30)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert sorted(outputs) == ["", "unpacked\n"], "not one unpack and one that found the tree"
    assert sorted(p.relative_to(tmp_path / "files").as_posix()
                  for p in (tmp_path / "files").rglob("*")) == ["bin", "bin/one", "bin/two"]
    assert (tmp_path / "files/bin/one").read_text() == "hello"
    assert (tmp_path / "files/bin/one").stat().st_uid == os.getuid()  # not the archive's 1000
    assert not (tmp_path / ".files.partial").exists()
