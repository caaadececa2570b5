"""The VM code's decisions, without QEMU: its image recipe, its command line, the relay."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

from hardway.settings import Settings
from hardway.vm import image, machine

ENV = {"HARDWAY_STATE": "/nonexistent/state", "HARDWAY_CACHE": "/nonexistent/cache",
       "HARDWAY_MIRROR_PORT": "8083"}


def test_the_vm_image_key_changes_with_its_files(tmp_path, monkeypatch):
    before = image.recipe_key()
    copy = tmp_path / "rootfs"
    shutil.copytree(image.VM_FILES, copy)
    monkeypatch.setattr(image, "VM_FILES", copy)
    assert image.recipe_key() == before
    (copy / "etc/fstab").write_text("/dev/vda / ext4 defaults 0 1\n")
    assert image.recipe_key() != before


def test_the_vm_image_holds_what_make_lab_installs():
    makefile = (Path(image.__file__).parents[3] / "Makefile").read_text()
    line = makefile.split("HOST_PACKAGES :=", 1)[1].split("\n#", 1)[0]
    wanted = set(line.replace("\\", " ").split())
    assert wanted <= set(image.PACKAGES), wanted - set(image.PACKAGES)


def test_tcg_when_kvm_does_not_work_and_the_vm_reaches_only_the_mirror(tmp_path):
    vm = machine.Machine(Settings.from_env(ENV), print, name="unit")
    vm.record = machine.Record(port=2222, accel="tcg")
    command = vm.qemu_command(tmp_path, tmp_path / "overlay.qcow2")
    assert command[command.index("-accel") + 1] == "tcg,thread=multi"
    network = command[command.index("-netdev") + 1]
    assert "restrict=on" in network
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in network
    assert f"guestfwd=tcp:{machine.MIRROR_ADDRESS}:8083-cmd:" in network
    assert network.endswith("-m hardway.vm.relay 127.0.0.1 8083")
    vm.record.accel = "kvm"
    command = vm.qemu_command(tmp_path, tmp_path / "overlay.qcow2")
    assert command[command.index("-accel") + 1] == "kvm"


def test_no_kvm_probe_without_access_to_dev_kvm(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert machine.kvm_works(tmp_path, tmp_path, print) is False


def test_the_relay_carries_both_ways():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while chunk := conn.recv(1024):
                data += chunk
            conn.sendall(data.upper())

    threading.Thread(target=echo, daemon=True).start()
    result = subprocess.run([sys.executable, "-m", "hardway.vm.relay", "127.0.0.1", str(port)],
                            input=b"mirror", capture_output=True, timeout=10)
    server.close()
    assert result.stdout == b"MIRROR"


def test_the_relay_says_in_one_line_when_nothing_listens():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    result = subprocess.run([sys.executable, "-m", "hardway.vm.relay", "127.0.0.1", str(port)],
                            input="", capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot reach" in result.stderr


def test_the_vm_boots_on_a_slow_host_without_waiting_on_udev_for_its_seed_disk():
    """Under TCG on a busy host udev took over 90 s to announce the seed disk: a unit
    bound to dev-vdb.device failed, and sshd never got its host key."""
    units = image.VM_FILES / "etc/systemd"
    seed = (units / "system/hardway-seed.service").read_text()
    dependencies = [line for line in seed.splitlines()
                    if line.split("=")[0] in ("Requires", "BindsTo", "After", "Wants")]
    assert not any("dev-" in line for line in dependencies), dependencies
    assert "until [ -b /dev/vdb ]" in (image.VM_FILES / "usr/local/sbin/hardway-seed").read_text()
    manager = (units / "system.conf.d/10-hardway-vm.conf").read_text()
    assert "DefaultTimeoutStartSec=15min" in manager and "DefaultDeviceTimeoutSec=15min" in manager
