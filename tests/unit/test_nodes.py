import os
from pathlib import Path

import pytest

from hardway.nodes import cgroups, host, image
from hardway.nodes.lifecycle import MIRROR_VARS, LocalLab, Node, remove_generated_inventory
from hardway.settings import Settings

PROC_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
2:cpu,cpuacct:/
0::/
"""
MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpuacct,cpu
33 25 0:29 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
34 25 0:30 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
"""


def test_every_hierarchy_is_found_with_our_place_in_it():
    found = {h.controllers: (str(h.mount), h.path)
             for h in cgroups.hierarchies(PROC_CGROUP, MOUNTINFO)}
    assert found == {
        "name=systemd": ("/sys/fs/cgroup/systemd", "/"),
        "pids": ("/sys/fs/cgroup/pids", "/"),
        "memory": ("/sys/fs/cgroup/memory", "/process_api/abc"),
        "cpu,cpuacct": ("/sys/fs/cgroup/cpu,cpuacct", "/"),
        "": ("/sys/fs/cgroup/unified", "/"),
    }


def node(tmp_path: Path) -> tuple[LocalLab, Node]:
    s = Settings.from_env({"HARDWAY_STATE": str(tmp_path)})
    lab = LocalLab(s, print)
    return lab, Node(name="node1", index=1, machine="hwlab0-node1", address="10.77.0.11",
                     base="/base")


def test_on_a_host_without_systemd_nspawn_runs_in_our_own_cgroups(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "systemd_is_pid1", lambda: False)
    lab, n = node(tmp_path)
    command = lab.nspawn_command(n)
    assert command[0] == "systemd-nspawn"
    assert "--register=no" in command and "--keep-unit" in command
    assert "--network-bridge=hwlab0" in command
    assert "--system-call-filter=@keyring bpf" in command and "--bind=/dev/kmsg" in command
    assert f"--bind={tmp_path}/nodes/node1/containerd:/var/lib/containerd" in command
    # /proc/sys stays read-only: nothing asks nspawn to make the kernel API writable.
    assert not any("API_VFS_WRITABLE" in part for part in command)


def test_on_a_systemd_host_the_node_is_a_delegated_capped_transient_unit(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "systemd_is_pid1", lambda: True)
    lab, n = node(tmp_path)
    command = lab.nspawn_command(n)
    split = command.index("--")
    wrapper, nspawn = command[:split], command[split + 1:]
    assert wrapper[0] == "systemd-run"
    assert "--unit=hardway-hwlab0-node1" in wrapper
    assert "--property=Delegate=yes" in wrapper
    assert f"--property=MemoryMax={1536 * 2**20}" in wrapper
    assert "--property=TasksMax=4096" in wrapper
    # Errors name the console log: on a systemd host too, the node's console goes there.
    assert f"--property=StandardOutput=append:{tmp_path}/nodes/node1/console.log" in wrapper
    assert nspawn[0] == "systemd-nspawn" and "--keep-unit" in nspawn
    assert any(part.startswith("--register=") for part in nspawn)


def test_capabilities_are_read_from_the_bounding_set():
    assert host.has_capability(24, "CapBnd:\t0000003fffffffff\n")
    assert not host.has_capability(24, "CapBnd:\t0000003ffeffffff\n")


def test_the_debian_archive_comes_from_apt_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://archive.example/debian\nSuites: bookworm\n")
    (tmp_path / "sources.list.d/other.list").write_text("deb [arch=amd64] http://x.example/apt main\n")
    assert image.apt_uris(tmp_path) == ["http://archive.example/debian", "http://x.example/apt"]
    assert image.debian_mirror({"HARDWAY_DEBIAN_MIRROR": "http://m/debian"}) == "http://m/debian"


def test_the_image_recipe_key_changes_with_node_files_and_the_suite(tmp_path, monkeypatch):
    before = image.recipe_key("bookworm")
    assert image.recipe_key("trixie") != before
    copy = tmp_path / "rootfs"
    import shutil

    shutil.copytree(image.NODE_FILES, copy)
    monkeypatch.setattr(image, "NODE_FILES", copy)
    assert image.recipe_key("bookworm") == before
    (copy / "etc/hardway/kernel/kernel.panic").write_text("0\n")
    assert image.recipe_key("bookworm") != before


def test_a_sudo_login_node_is_a_cloud_image_user_with_root_login_off(tmp_path):
    base, upper = tmp_path / "base", tmp_path / "upper"
    (base / "etc").mkdir(parents=True)
    (upper / "etc/ssh").mkdir(parents=True)
    (base / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (base / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (base / "etc/group").write_text("root:x:0:\nsudo:x:27:\n")
    (base / "etc/gshadow").write_text("root:*::\nsudo:*::admin\n")
    settings = Settings.from_env({"HARDWAY_STATE": str(tmp_path / "state")})
    lab = LocalLab(settings, lambda _: None)
    lab.ssh_dir.mkdir(parents=True)
    Path(f"{lab.key}.pub").write_text("ssh-ed25519 AAAA hardway-lab\n")
    lab.add_sudo_user(base, upper)
    etc = upper / "etc"
    assert "debian:x:1000:1000:debian:/home/debian:/bin/bash" in (etc / "passwd").read_text()
    assert (etc / "group").read_text().splitlines() == ["root:x:0:", "sudo:x:27:debian",
                                                         "debian:x:1000:"]
    assert "sudo:*::admin,debian" in (etc / "gshadow").read_text()
    assert (etc / "sudoers.d/90-hardway-login").read_text() == "debian ALL=(ALL) NOPASSWD:ALL\n"
    assert (etc / "sudoers.d/90-hardway-login").stat().st_mode & 0o777 == 0o440
    assert (etc / "ssh/sshd_config.d/no-root-login.conf").read_text() == "PermitRootLogin no\n"
    authorized = upper / "home/debian/.ssh/authorized_keys"
    assert authorized.read_text() == "ssh-ed25519 AAAA hardway-lab\n"
    assert (authorized.stat().st_uid, authorized.stat().st_mode & 0o777) == (1000, 0o600)
    assert not (upper / "root/.ssh").exists()


def test_the_inventory_logs_in_to_each_node_as_its_own_user(tmp_path, monkeypatch):
    import yaml

    monkeypatch.setenv("HARDWAY_INVENTORY", str(tmp_path / "inventory"))
    lab = LocalLab(Settings.from_env({"HARDWAY_STATE": str(tmp_path / "state")}), lambda _: None)
    nodes = [Node("node1", 1, "m1", "10.77.0.11", "/b"),
             Node("node2", 2, "m2", "10.77.0.12", "/b", system="debian13", user="debian")]
    hosts = yaml.safe_load(lab.write_inventory(nodes).read_text())["all"]["children"][
        "lab_nodes"]["hosts"]
    assert {name: host["ansible_user"] for name, host in hosts.items()} == {
        "node1": "root", "node2": "debian"}


def test_the_kernel_view_holds_the_values_the_kubelet_expects():
    kernel = image.NODE_FILES / "etc/hardway/kernel"
    values = {p.name: p.read_text().strip() for p in kernel.iterdir()}
    assert values == {"vm.overcommit_memory": "1", "vm.panic_on_oom": "0", "kernel.panic": "10",
                      "kernel.panic_on_oops": "1", "kernel.keys.root_maxkeys": "1000000",
                      "kernel.keys.root_maxbytes": "25000000"}


def test_a_missing_prerequisite_stops_nodes_up_with_its_fix(tmp_path, monkeypatch):
    import pytest

    from hardway.settings import HardwayError

    real_which = host.shutil.which
    monkeypatch.setattr(host.shutil, "which",
                        lambda name: None if name == "systemd-nspawn" else real_which(name))
    lab, _ = node(tmp_path)
    with pytest.raises(HardwayError) as error:
        lab.up(1)
    assert "systemd-nspawn: not found -> apt-get install systemd-container" in str(error.value)
    assert not (tmp_path / "nodes").exists()  # refused before anything was made


def test_inotify_instances_are_counted_for_roots_processes(tmp_path):
    import os

    for pid, links in {"10": ["anon_inode:inotify", "anon_inode:inotify", "/dev/null"],
                       "11": ["anon_inode:[eventfd]", "anon_inode:inotify"]}.items():
        (tmp_path / pid / "fd").mkdir(parents=True)
        for fd, target in enumerate(links):
            os.symlink(target, tmp_path / pid / "fd" / str(fd))
    assert host.inotify_in_use(tmp_path, uid=os.getuid()) == 3
    assert host.inotify_in_use(tmp_path, uid=os.getuid() + 1) == 0


def test_nodes_up_refuses_to_start_nodes_past_the_inotify_limit(tmp_path, monkeypatch):
    import pytest

    from hardway.settings import HardwayError

    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    monkeypatch.setattr(host, "INOTIFY_LIMIT", limit)
    monkeypatch.setattr(host, "inotify_in_use", lambda: 100)
    monkeypatch.setattr(host, "blocking_problems", lambda settings: [])
    bridge = []
    monkeypatch.setattr(host, "bridge_up", bridge.append)
    lab = LocalLab(Settings.from_env({"HARDWAY_STATE": str(tmp_path / "state")}), lambda _: None)
    with pytest.raises(HardwayError, match=r"cannot start node1, node2: root holds 100 of 128 "
                                           r"instances; 2 more node\(s\) need about 32: raise"):
        lab.up(2)
    assert bridge == []  # refused before anything changed


@pytest.mark.parametrize(("env", "control_plane"),
                         [({}, None), ({"HARDWAY_CONTROL_PLANE": "1"}, {"node1": {}})])
def test_the_control_plane_group_holds_the_first_node_only_when_on(tmp_path, monkeypatch, env,
                                                                   control_plane):
    import yaml

    monkeypatch.setenv("HARDWAY_INVENTORY", str(tmp_path / "inventory"))
    settings = Settings.from_env({"HARDWAY_STATE": str(tmp_path / "state"), **env})
    nodes = [Node("node2", 2, "m2", "10.77.0.12", "/b"), Node("node1", 1, "m1", "10.77.0.11", "/b")]
    children = yaml.safe_load(LocalLab(settings, lambda _: None).write_inventory(nodes).read_text())[
        "all"]["children"]
    assert children.get("control_plane", {}).get("hosts") == control_plane


def test_down_removes_what_up_wrote_into_the_inventory_and_keeps_the_users_own_vars(tmp_path):
    inventory = tmp_path / "local"
    (inventory / MIRROR_VARS).parent.mkdir(parents=True)
    for name in ("hosts.yml", str(MIRROR_VARS), "group_vars/all/slow-machine.yml"):
        (inventory / name).write_text("x: 1\n")
    remove_generated_inventory(inventory)
    left = sorted(str(p.relative_to(inventory)) for p in inventory.rglob("*") if p.is_file())
    assert left == ["group_vars/all/slow-machine.yml"]

    (inventory / "group_vars/all/slow-machine.yml").unlink()
    (inventory / MIRROR_VARS).write_text("x: 1\n")
    remove_generated_inventory(inventory)
    assert list(inventory.iterdir()) == []


def test_a_cgroup_walk_skips_what_goes_away_while_it_reads(tmp_path, monkeypatch):
    from hardway.nodes import cgroups

    (tmp_path / "hardway-a-node1/payload/system.slice").mkdir(parents=True)
    (tmp_path / "other-lab/gone").mkdir(parents=True)
    listed = os.scandir

    def scandir(path):  # another lab's node is taken down as the walk reaches it
        if str(path).endswith("gone"):
            raise FileNotFoundError(path)
        return listed(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = {str(p.relative_to(tmp_path)) for p in cgroups._tree(tmp_path)}
    assert {"hardway-a-node1/payload/system.slice", "other-lab/gone", "."} <= found
