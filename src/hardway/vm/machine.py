"""One QEMU VM booted from the cached VM image: KVM where it works, software emulation (TCG)
otherwise, found by trying; reachable over SSH on a loopback port as a sudo user.

The VM uses QEMU's user-mode network with `restrict=on`: it reaches nothing outside,
not even the host, except the one host port forwarded to it (the mirror, at
MIRROR_ADDRESS in the guest). The host reaches its SSH through a loopback port.
Everything about a VM is under `<state>/vm/<name>/`; `vm.json` records the QEMU process
before it starts, so `stop` finds it after a crash.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from subprocess import CompletedProcess

from hardway.children import last_line, run
from hardway.children import start as start_child
from hardway.files import atomic_write
from hardway.settings import HardwayError, Settings
from hardway.vm import image

# Where the guest finds the host's mirror: a guest-side address QEMU forwards to the host.
MIRROR_ADDRESS = "10.0.2.100"
MEMORY_MIB = 4096
CPUS = 2
PROBE_DEADLINE = 20.0
BOOT_DEADLINE = 600.0
STOP_DEADLINE = 120.0
# What the kernel prints first on the serial console once it runs: a KVM guest that hangs
# after the boot loader (as on some nested hosts) never gets this far.
KERNEL_STARTED = b"Linux version"

Log = Callable[[str], None]


def kvm_works(folder: Path, work: Path, log: Log) -> bool:
    """Can this host run a KVM guest? Boots the VM's kernel alone (no disk) under KVM and
    waits for its first words on the console; /dev/kvm being there is not enough."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    console = work / "kvm-probe.log"
    console.unlink(missing_ok=True)
    probe = start_child(
        ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none",
         "-monitor", "none", "-no-reboot", "-serial", f"file:{console}",
         "-kernel", str(folder / "vmlinuz"), "-append", "console=ttyS0 panic=-1"],
        what="trying KVM", log=work / "kvm-probe.qemu.log", tied=True)
    deadline = time.monotonic() + PROBE_DEADLINE
    started = False
    while time.monotonic() < deadline and probe.poll() is None and not started:
        time.sleep(0.2)
        started = console.exists() and KERNEL_STARTED in console.read_bytes()
    started = started or (console.exists() and KERNEL_STARTED in console.read_bytes())
    if probe.poll() is None:
        probe.kill()
    probe.wait()
    log(f"KVM {'works' if started else 'does not boot a guest here'}: using "
        f"{'kvm' if started else 'tcg (software emulation)'}")
    return started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Record:
    pid: int | None = None
    port: int = 0
    accel: str = ""
    image: str = ""


class Machine:
    """A VM named `name`, its files under `<state>/vm/<name>/`."""

    def __init__(self, settings: Settings, log: Log, name: str = "vm"):
        self.s = settings
        self.log = log
        self.name = name
        self.dir = settings.state / "vm" / name
        self.record = self._load()

    # --- files ---------------------------------------------------------------------------

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def console(self) -> Path:
        return self.dir / "console.log"

    def _load(self) -> Record:
        path = self.dir / "vm.json"
        return Record(**json.loads(path.read_text())) if path.exists() else Record()

    def _save(self) -> None:
        atomic_write(self.dir / "vm.json", json.dumps(asdict(self.record), indent=1).encode())

    @property
    def running(self) -> bool:
        return self.record.pid is not None and _alive(self.record.pid)

    # --- start ---------------------------------------------------------------------------

    def start(self, payload: dict[str, Path] | None = None, accel: str | None = None) -> float:
        """Boot the VM from a fresh overlay of the cached image; payload (name -> path on the
        host) is put on its seed disk, read-only at /run/hardway-seed/<name> in the guest.
        Returns the seconds from QEMU's start to SSH answering."""
        if self.running:
            raise HardwayError(f"VM {self.name} runs already (pid {self.record.pid}); stop it first")
        folder = image.vm_image(self.s, self.log)
        self.dir.mkdir(parents=True, exist_ok=True)
        if accel is None:
            accel = "kvm" if kvm_works(folder, self.dir, self.log) else "tcg"
        self.record = Record(port=free_port(), accel=accel, image=str(folder))
        self._save()
        self._seed(payload or {})
        overlay = self.dir / "overlay.qcow2"
        overlay.unlink(missing_ok=True)
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
             str(folder / "disk.img"), str(overlay)], what="making the VM's disk overlay")
        self.console.unlink(missing_ok=True)
        began = time.monotonic()
        process = start_child(self.qemu_command(folder, overlay), what=f"booting VM {self.name}",
                              log=self.dir / "qemu.log", session=True)
        self.record.pid = process.pid
        self._save()
        self.wait_ssh()
        return time.monotonic() - began

    def qemu_command(self, folder: Path, overlay: Path) -> list[str]:
        accel = ["-accel", "kvm", "-cpu", "host"] if self.record.accel == "kvm" else \
            ["-accel", "tcg,thread=multi", "-cpu", "max"]
        network = (f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{self.record.port}-:22,"
                   f"guestfwd=tcp:{MIRROR_ADDRESS}:{self.s.mirror_port}-cmd:{sys.executable} "
                   f"-m hardway.vm.relay 127.0.0.1 {self.s.mirror_port}")
        return [
            "qemu-system-x86_64", "-name", f"hardway-{self.name}", *accel,
            "-smp", str(CPUS), "-m", str(MEMORY_MIB), "-display", "none", "-monitor", "none",
            "-serial", f"file:{self.console}",
            "-kernel", str(folder / "vmlinuz"), "-initrd", str(folder / "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1",
            "-drive", f"file={overlay},format=qcow2,if=virtio",
            "-drive", f"file={self.dir / 'seed.img'},format=raw,if=virtio,readonly=on",
            "-netdev", network, "-device", "virtio-net-pci,netdev=net0",
        ]

    def _seed(self, payload: dict[str, Path]) -> None:
        """The seed disk: this boot's SSH host key (pinned in known_hosts), the login key,
        and the payload, as an ext4 image made without mounting anything."""
        if not self.key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hardway-vm", "-f",
                 str(self.key)], what="making the VM's SSH key")
        seed = self.dir / "seed"
        shutil.rmtree(seed, ignore_errors=True)
        seed.mkdir()
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name, "-f",
             str(seed / "ssh_host_ed25519_key")], what="making the VM's host key")
        host_key = " ".join((seed / "ssh_host_ed25519_key.pub").read_text().split()[:2])
        shutil.copy(f"{self.key}.pub", seed / "authorized_keys")
        for name, source in payload.items():
            run(["cp", "-a", str(source), str(seed / name)], what=f"putting {source} on the seed disk")
        size = sum(f.stat().st_size for f in seed.rglob("*") if f.is_file() and not f.is_symlink())
        disk = self.dir / "seed.img"
        disk.unlink(missing_ok=True)
        run(["truncate", "-s", str(int(size * 1.3) + 64 * 2**20), str(disk)],
            what="making the seed disk")
        run(["mkfs.ext4", "-q", "-F", "-L", "hwseed", "-d", str(seed), str(disk)],
            what="making the seed disk's file system")
        shutil.rmtree(seed)
        self.known_hosts.write_text(f"[127.0.0.1]:{self.record.port} {host_key}\n")

    def ssh_args(self) -> list[str]:
        return ["-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]

    def ssh(self, command: str, timeout: float = 120, sudo: bool = True,
            check: bool = True, what: str = "") -> CompletedProcess[str]:
        """The command's result in the VM, as its user, through sudo unless told not to."""
        if sudo:
            command = f"sudo -n sh -c {shlex.quote(command)}"
        return run(["ssh", *self.ssh_args(), "-p", str(self.record.port),
                    f"{image.USER}@127.0.0.1", command], what=what or f"ssh to VM {self.name}",
                   check=check, timeout=timeout, fix=f"its console log is {self.console}")

    def wait_ssh(self, deadline: float = BOOT_DEADLINE) -> str:
        """Until the VM's systemd has finished booting and SSH answers; its boot id."""
        end = time.monotonic() + deadline
        seen = "no answer"
        while time.monotonic() < end:
            if not self.running:
                tail = "\n".join(self.console.read_text(errors="replace").splitlines()[-10:]) \
                    if self.console.exists() else ""
                raise HardwayError(f"VM {self.name} stopped while booting; its console said:\n{tail}")
            result = self.ssh("systemctl is-system-running --wait; cat /proc/sys/kernel/random/boot_id",
                              sudo=False, check=False, timeout=60)
            lines = result.stdout.split()
            if result.returncode in (0, 1) and len(lines) == 2:
                if lines[0] != "running":
                    failed = self.ssh("systemctl --failed --no-legend --plain", check=False).stdout
                    raise HardwayError(f"VM {self.name} booted {lines[0]}: {failed.strip()}")
                return lines[1]
            seen = last_line(result.stdout + result.stderr) or seen
            time.sleep(2)
        raise HardwayError(f"VM {self.name} did not answer SSH after {deadline:.0f} s (last seen: "
                           f"{seen}); console: {self.console}")

    def reboot(self) -> float:
        """Reboot the VM and wait for it; the seconds it took."""
        before = self.ssh("cat /proc/sys/kernel/random/boot_id", sudo=False).stdout.strip()
        began = time.monotonic()
        self.ssh("systemctl reboot", check=False, timeout=30)
        end = began + BOOT_DEADLINE
        while time.monotonic() < end:
            time.sleep(3)
            if self.wait_ssh(end - time.monotonic()) != before:
                return time.monotonic() - began
        raise HardwayError(f"VM {self.name} did not come back from its reboot")

    # --- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Power the VM off (killing QEMU if it does not go) and remove its disks."""
        if self.running:
            self.log(f"VM {self.name}: powering off")
            self.ssh("systemctl poweroff", check=False, timeout=30)
            end = time.monotonic() + STOP_DEADLINE
            while self.running and time.monotonic() < end:
                time.sleep(0.5)
            if self.running and self.record.pid is not None:
                os.kill(self.record.pid, signal.SIGKILL)
                while self.running:
                    time.sleep(0.1)
        for name in ("overlay.qcow2", "seed.img"):
            (self.dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.dir / "seed", ignore_errors=True)
        self.record.pid = None
        if self.dir.exists():
            self._save()


def _alive(pid: int) -> bool:
    """Is pid a running process (a zombie is not)?"""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
