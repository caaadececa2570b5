"""Bring local lab nodes up, list them, restart them and take them down.

A node is a systemd-nspawn machine container booted from the shared base image through
an overlay (a few MB per node), with a plain directory for containerd's data (its
overlayfs snapshotter cannot work on an overlay root). Everything about a node is under
`<state>/nodes/<name>/`; `node.json` is written before anything is started, so a `down`
after a crash at any point finds what to clean.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shlex
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from subprocess import CompletedProcess

import yaml

from hardway.children import last_line, run
from hardway.children import start as start_child
from hardway.files import atomic_write
from hardway.nodes import cgroups, host, image
from hardway.settings import LOCAL_POD_RANGE, HardwayError, Settings, UsageError

MAX_NODES = 8
# How a node lets its admin in: as root, or like a cloud VM, as this user with
# passwordless sudo and root's SSH login off.
LOGINS = ("root", "sudo")
SUDO_USER = "debian"
SUDO_UID = 1000
STOP_DEADLINE = 15.0
NSPAWN_RUN = Path("/run/systemd/nspawn")
# Written by `hardway up` into the local inventory: the roles fetch from this host's mirror.
MIRROR_VARS = Path("group_vars/all/mirror.yml")

Log = Callable[[str], None]


@dataclass
class Node:
    name: str
    index: int
    machine: str
    address: str
    base: str
    cgroups: list[str] = field(default_factory=list)
    pid: int | None = None
    host_key: str = ""
    system: str = image.DEFAULT_SYSTEM
    user: str = "root"

    @property
    def running(self) -> bool:
        return self.pid is not None and _alive(self.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "systemd-nspawn"
    except OSError:
        return False


def check_count(count: int | None) -> None:
    if count is not None and not 1 <= count <= MAX_NODES:
        raise UsageError(f"--count must be from 1 to {MAX_NODES}")


class LocalLab:
    """The set of local nodes that one bridge and state directory describe."""

    def __init__(self, settings: Settings, log: Log):
        self.s = settings
        self.log = log
        self.nodes_dir = settings.state / "nodes"
        self.ssh_dir = settings.state / "ssh"

    # --- bookkeeping -------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One hardway at a time per lab; the kernel drops the lock if we are killed."""
        self.s.state.mkdir(parents=True, exist_ok=True)
        with (self.s.state / "lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HardwayError(f"another hardway command is working on {self.s.state}; "
                                   "wait for it to finish") from None
            yield

    def node_dir(self, name: str) -> Path:
        return self.nodes_dir / name

    def load(self) -> list[Node]:
        nodes = []
        for path in sorted(self.nodes_dir.glob("*/node.json")):
            try:
                nodes.append(Node(**json.loads(path.read_text())))
            except (ValueError, TypeError) as exc:  # not JSON, or not a node's fields
                raise HardwayError(
                    f"{path} is damaged ({type(exc).__name__}: {exc}): stop that node's "
                    f"systemd-nspawn if it runs, then delete {path.parent}") from None
        return sorted(nodes, key=lambda n: n.index)

    def save(self, node: Node) -> None:
        atomic_write(self.node_dir(node.name) / "node.json",
                     (json.dumps(asdict(node), indent=2) + "\n").encode())

    def machine_name(self, name: str) -> str:
        return f"{self.s.bridge}-{name}"

    @property
    def key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    def ensure_key(self) -> None:
        if not self.key.exists():
            self.ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hardway-lab", "-f",
                 str(self.key)], what="making the lab's SSH key",
                fix=f"check that {self.ssh_dir} is writable")

    def ssh_args(self) -> list[str]:
        return ["-i", str(self.key), "-o", f"UserKnownHostsFile={self.ssh_dir / 'known_hosts'}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR",
                # A node removed under a running play must fail it, not hang it.
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]

    def ssh(self, node: Node, command: str, timeout: float = 30) -> CompletedProcess[str]:
        """The command's result on the node, run as its login user (with sudo's rights when
        not root); one that does not answer in time is a failed result too (the caller
        decides whether to ask again)."""
        if node.user != "root":
            command = f"sudo -n sh -c {shlex.quote(command)}"
        return run(["ssh", *self.ssh_args(), f"{node.user}@{node.address}", command],
                   what=f"ssh to {node.name}", check=False, timeout=timeout)

    # --- up ------------------------------------------------------------------------------

    def up(self, count: int | None, system: str = image.DEFAULT_SYSTEM,
           login: str = "root") -> list[Node]:
        """Boot `count` nodes (default: those that exist, or 1); nodes made now run `system`
        and let their admin in by `login`, nodes that exist keep theirs."""
        if system not in image.SYSTEMS:
            raise UsageError(f"--os {system!r} is not one we build: use {' or '.join(image.SYSTEMS)}")
        if login not in LOGINS:
            raise UsageError(f"--login {login!r}: use {' or '.join(LOGINS)}")
        check_count(count)
        problems = host.blocking_problems(self.s)
        if problems:
            raise HardwayError("the host is not ready for lab nodes:\n" + "\n".join(
                f"  {p.name}: {p.detail} -> {p.fix}" for p in problems))
        with self.locked():
            existing = self.load()
            if count is None:
                count = max(len(existing), 1)
            if len(existing) > count:
                raise UsageError(f"{len(existing)} nodes exist already; run `hardway nodes down` "
                                 f"first to start over with {count}")
            names = [f"node{i}" for i in range(1, count + 1)]
            nodes = {n.name: n for n in existing}
            starting = [n for n in names if n not in nodes or not nodes[n].running]
            room = host.inotify_room(len(starting))
            if starting and not room.ok:
                raise HardwayError(f"cannot start {', '.join(starting)}: {room.detail}: {room.fix}")
            self.ensure_key()
            host.bridge_up(self.s)
            for index, name in enumerate(names, start=1):
                node = nodes.get(name) or self.create(
                    name, index, image.base_image(self.s, self.log, system), system, login)
                nodes[name] = node
                if not node.running:
                    self.start(node)
            self.write_known_hosts(list(nodes.values()))
            for node in nodes.values():
                self.wait_ready(node)
            result = [nodes[n] for n in names]
            self.write_inventory(result)
            return result

    def create(self, name: str, index: int, base: Path, system: str, login: str) -> Node:
        directory = self.node_dir(name)
        upper = directory / "upper"
        address = self.s.node_address(index)
        node = Node(name=name, index=index, machine=self.machine_name(name),
                    address=str(address), base=str(base), system=system,
                    user="root" if login == "root" else SUDO_USER)
        self.save(node)  # first, so a crash from here on leaves something `down` can find
        for sub in ("etc/ssh", "etc/hardway", "var/lib/containerd"):
            (upper / sub).mkdir(parents=True, exist_ok=True)
        (directory / "containerd").mkdir(exist_ok=True)
        (upper / "etc/hostname").write_text(f"{name}\n")
        (upper / "etc/hosts").write_text(f"127.0.0.1 localhost\n{address} {name}\n"
                                         "::1 localhost ip6-localhost ip6-loopback\n")
        (upper / "etc/machine-id").write_text(secrets.token_hex(16) + "\n")
        (upper / "etc/hardway/node.env").write_text(
            f"NODE_ADDRESS={address}/{self.s.subnet.prefixlen}\nNODE_NAME={name}\n")
        key = upper / "etc/ssh/ssh_host_ed25519_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
            what=f"making {name}'s host key", fix=f"check that {upper} is writable")
        if login == "root":
            self.authorize(upper / "root", 0, 0)
        else:
            self.add_sudo_user(base, upper)
        node.host_key = " ".join(Path(f"{key}.pub").read_text().split()[:2])
        self.save(node)
        return node

    def authorize(self, home: Path, uid: int, gid: int) -> None:
        """Our key in home/.ssh/authorized_keys, owned by the login and private to it."""
        ssh = home / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        authorized = ssh / "authorized_keys"
        authorized.write_text(Path(f"{self.key}.pub").read_text())
        for path, mode in ((home, 0o755 if uid else 0o700), (ssh, 0o700), (authorized, 0o600)):
            os.chown(path, uid, gid)
            os.chmod(path, mode)

    def add_sudo_user(self, base: Path, upper: Path) -> None:
        """Make the node's login a cloud image's: SUDO_USER with passwordless sudo, root's
        SSH login refused. Written into the node's own layer, the base image stays shared."""
        uid = SUDO_UID
        entries = {"passwd": f"{SUDO_USER}:x:{uid}:{uid}:{SUDO_USER}:/home/{SUDO_USER}:/bin/bash",
                   "shadow": f"{SUDO_USER}:*:20000:0:99999:7:::",
                   "group": f"{SUDO_USER}:x:{uid}:", "gshadow": f"{SUDO_USER}:!::"}
        for name, entry in entries.items():
            lines = (base / "etc" / name).read_text().splitlines()
            lines = [f"{line}{',' if not line.endswith(':') else ''}{SUDO_USER}"
                     if line.startswith("sudo:") else line for line in lines]
            target = upper / "etc" / name
            target.write_text("\n".join([*lines, entry]) + "\n")
            shutil.copymode(base / "etc" / name, target)
            os.chown(target, 0, (base / "etc" / name).stat().st_gid)
        (upper / "etc/sudoers.d").mkdir(parents=True, exist_ok=True)
        sudoers = upper / "etc/sudoers.d/90-hardway-login"
        sudoers.write_text(f"{SUDO_USER} ALL=(ALL) NOPASSWD:ALL\n")
        os.chmod(sudoers, 0o440)
        (upper / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
        (upper / "etc/ssh/sshd_config.d/no-root-login.conf").write_text("PermitRootLogin no\n")
        self.authorize(upper / "home" / SUDO_USER, uid, uid)

    def nspawn_command(self, node: Node) -> list[str]:
        directory = self.node_dir(node.name)
        command = [
            "systemd-nspawn", "--quiet", "--directory", node.base,
            f"--overlay={node.base}:{directory / 'upper'}:/",
            f"--machine={node.machine}", f"--hostname={node.name}", "--boot",
            "--keep-unit", "--capability=all", f"--network-bridge={self.s.bridge}",
            "--resolv-conf=off", "--link-journal=no", "--timezone=off",
            # runc needs its own session keyring, and on cgroup v2 bpf() for the devices
            # controller (a BPF program per container), which nspawn's allow list refused
            # until 2025 (systemd PR 37966); /dev/kmsg is fatal for the kubelet if absent.
            "--system-call-filter=@keyring bpf", "--bind=/dev/kmsg",
            f"--bind={directory / 'containerd'}:/var/lib/containerd",
            "--console=read-only",
        ]
        if cgroups.systemd_is_pid1():
            registered = "yes" if Path("/run/systemd/machines").is_dir() else "no"
            command.insert(-1, f"--register={registered}")
            return [
                "systemd-run", f"--unit=hardway-{node.machine}", "--collect",
                "--property=Delegate=yes", f"--property=MemoryMax={self.s.node_memory}",
                f"--property=TasksMax={self.s.node_pids}", "--property=KillMode=mixed",
                # The node's console goes where the errors say it is, not only to the journal.
                f"--property=StandardOutput=append:{directory / 'console.log'}",
                "--property=StandardError=inherit",
                "--service-type=notify", "--quiet", "--", *command,
            ]
        command.insert(-1, "--register=no")
        return command

    def start(self, node: Node) -> None:
        self.cleanup_processes(node)
        command = self.nspawn_command(node)
        self.log(f"{node.name}: booting {node.address} ({node.machine})")
        console = self.node_dir(node.name) / "console.log"
        what, fix = f"booting {node.name}", f"its console log is {console}"
        if command[0] == "systemd-run":
            run(command, what=what, fix=fix, log=console)
            unit = f"hardway-{node.machine}.service"
            out = run(["systemctl", "show", "-P", "MainPID", unit], what=f"finding {unit}",
                      fix=fix)
            node.pid = int(out.stdout.strip() or 0) or None
        else:
            node.cgroups = cgroups.create(f"hardway-{node.machine}", self.s.node_memory,
                                          self.s.node_pids)
            self.save(node)  # before the start, so `down` finds the cgroups after a crash
            dirs = node.cgroups
            node.pid = start_child(command, what=what, log=console, session=True,
                                   preexec=lambda: cgroups.join(dirs)).pid
        self.save(node)

    def wait_ready(self, node: Node) -> None:
        """Until the node's systemd reports `running`, with what was seen on failure."""
        deadline = time.monotonic() + self.s.node_boot_seconds
        seen = "no answer"
        while time.monotonic() < deadline:
            if not node.running:
                tail = self._console_tail(node)
                raise HardwayError(f"{node.name} stopped while booting; its console said:\n{tail}")
            # Answers in 0.3 s on a laptop; in a VM under software emulation, 23 s.
            result = self.ssh(node, "systemctl is-system-running", timeout=30)
            state = result.stdout.strip()
            if state == "running":
                return
            if state == "degraded":
                failed = self.ssh(node, "systemctl --failed --no-legend --plain").stdout
                raise HardwayError(f"{node.name} booted with failed units:\n{failed}")
            seen = state or last_line(result.stderr) or seen
            time.sleep(0.3)
        raise HardwayError(f"{node.name} was not running after {self.s.node_boot_seconds} s (last seen: "
                           f"{seen}); console: {self.node_dir(node.name) / 'console.log'}")

    def _console_tail(self, node: Node) -> str:
        path = self.node_dir(node.name) / "console.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-10:]) if path.exists() else ""

    def write_known_hosts(self, nodes: list[Node]) -> None:
        lines = [f"{n.address} {n.host_key}\n" for n in sorted(nodes, key=lambda n: n.index)]
        (self.ssh_dir / "known_hosts").write_text("".join(lines))

    def control_plane_nodes(self, nodes: list[Node]) -> list[Node]:
        """One control plane per student; a local lab is one student's, on its first node."""
        return [min(nodes, key=lambda n: n.index)] if self.s.control_plane and nodes else []

    def write_inventory(self, nodes: list[Node]) -> Path:
        inventory = self.s.inventory
        inventory.mkdir(parents=True, exist_ok=True)
        pod_networks = list(LOCAL_POD_RANGE.subnets(new_prefix=24))
        hosts = {n.name: {"ansible_host": n.address, "ansible_user": n.user,
                          "lab_pod_cidr": str(pod_networks[n.index])} for n in nodes}
        children: dict = {"lab_nodes": {"hosts": hosts}}
        planes = self.control_plane_nodes(nodes)
        if planes:
            children["control_plane"] = {"hosts": {n.name: {} for n in planes}}
        data = {"all": {
            "children": children,
            "vars": {
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": " ".join(self.ssh_args()[2:]),
                "ansible_python_interpreter": "/usr/bin/python3",
                # Local nodes share the host's kernel, swap and (no) archive access.
                "node_prereqs_update_cache": False,
                "node_prereqs_disable_swap": False,
                "kubelet_protect_kernel_defaults": True,
            },
        }}
        path = inventory / "hosts.yml"
        header = "# Written by `hardway nodes up`; it is rewritten on every run.\n"
        path.write_text(header + yaml.safe_dump(data, sort_keys=False))
        return path

    # --- down and restart -----------------------------------------------------------------

    def stop(self, node: Node) -> None:
        """Stop a node in an orderly way, then make sure nothing of it is left running."""
        if node.running and node.pid is not None:
            self.log(f"{node.name}: stopping")
            if cgroups.systemd_is_pid1() and not node.cgroups:
                # Whatever systemctl says, the wait and the cleanup below make sure.
                run(["systemctl", "stop", f"hardway-{node.machine}.service"],
                    what=f"stopping {node.name}", check=False)
            else:
                # nspawn turns SIGTERM into an orderly shutdown of the node's systemd.
                os.kill(node.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_DEADLINE
            while node.running and time.monotonic() < deadline:
                time.sleep(0.1)
        self.cleanup_processes(node)
        node.pid = None
        self.save(node)

    def cleanup_processes(self, node: Node) -> None:
        if node.pid and _alive(node.pid):
            os.kill(node.pid, signal.SIGKILL)
        left = cgroups.kill_all(node.cgroups)
        if left:
            raise HardwayError(f"{node.name}: processes {sorted(left)} would not die")
        stuck = cgroups.remove(node.cgroups)
        if stuck:
            raise HardwayError(f"{node.name}: could not remove cgroups {stuck}")
        node.cgroups = []
        # The veth normally goes with the node's network namespace; remove it if it did not.
        veth = f"vb-{node.machine}"
        if host.ip_json("link", "show", "dev", veth):
            run(["ip", "link", "delete", veth], what=f"removing {veth}", check=False)
        propagate = NSPAWN_RUN / "propagate" / node.machine
        shutil.rmtree(propagate, ignore_errors=True)

    def restart(self, name: str) -> Node:
        if name not in {n.name for n in self.load()}:
            raise UsageError(f"no node called {name}; `hardway nodes list` shows the nodes")
        with self.locked():
            node = next((n for n in self.load() if n.name == name), None)
            if node is None:  # taken down while we waited for the lock
                raise UsageError(f"no node called {name}; `hardway nodes list` shows the nodes")
            self.stop(node)
            self.start(node)
            self.wait_ready(node)
            return node

    def down(self) -> list[str]:
        """Remove every node and the bridge; returns what could not be cleaned."""
        with self.locked():
            for node in self.load():
                self.stop(node)
                shutil.rmtree(self.node_dir(node.name), ignore_errors=True)
            # Whatever a crash left without a node.json: cgroups named for this lab.
            stray = cgroups.leftovers(f"hardway-{self.s.bridge}-")
            cgroups.kill_all(stray)
            cgroups.remove(stray)
            from hardway.mirror import serve

            serve.stop_background(self.s)
            host.bridge_down(self.s)
            remove_generated_inventory(self.s.inventory)
            (self.ssh_dir / "known_hosts").unlink(missing_ok=True)
            # nspawn's runtime directories, when no other container uses them.
            for name in ("propagate", "locks", ""):
                _rmdir_if_empty(NSPAWN_RUN / name)
            shutil.rmtree(self.nodes_dir, ignore_errors=True)
            return self.leftovers()

    def leftovers(self) -> list[str]:
        """Anything of this lab still on the host: processes, cgroups, links, state."""
        found = []
        found += [f"cgroup {c}" for c in cgroups.leftovers(f"hardway-{self.s.bridge}-")]
        if host.ip_json("link", "show", "dev", self.s.bridge):
            found.append(f"link {self.s.bridge}")
        for link in host.ip_json("link", "show"):
            if link.get("ifname", "").startswith(f"vb-{self.s.bridge}"):
                found.append(f"link {link['ifname']}")
        for proc in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                args = proc.read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"systemd-nspawn") and \
                    any(a.startswith(f"--machine={self.s.bridge}-".encode()) for a in args):
                found.append(f"process {proc.parent.name} (systemd-nspawn)")
        for path in [self.nodes_dir, *NSPAWN_RUN.glob(f"propagate/{self.s.bridge}-*")]:
            if path.exists():
                found.append(f"directory {path}")
        return found


def remove_generated_inventory(inventory: Path) -> None:
    """What `up` wrote into the local inventory (hosts.yml, the mirror's variables), and
    its folders once empty. A user's own files beside them, such as role inputs for a slow
    machine in group_vars/all/, stay."""
    for path in (inventory / "hosts.yml", inventory / MIRROR_VARS):
        path.unlink(missing_ok=True)
    for folder in (inventory / MIRROR_VARS.parent, inventory / MIRROR_VARS.parent.parent):
        _rmdir_if_empty(folder)


def _rmdir_if_empty(path: Path) -> None:
    with suppress(OSError):
        path.rmdir()
